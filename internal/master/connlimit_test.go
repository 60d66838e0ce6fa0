package master_test

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// flood opens n idle TCP connections to addr from src (no TLS handshake,
// no request: what filled the master's file table once) and returns them
// with how many the server closed at once.
func flood(t *testing.T, src, addr string, n int) (conns []net.Conn, refused int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s from %s: %v", addr, src, err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			// A refused connection is closed at once; a held one stays
			// silent (the TLS server waits for the client's hello).
			c.SetReadDeadline(time.Now().Add(time.Second))
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return conns, refused
}

// Many idle connections from one address cannot take the master's
// descriptors: past the per-address cap they are closed at once, on the
// API and on the workers' port, and /healthz still answers at once.
func TestHealthzUnderConnectionFlood(t *testing.T) {
	const perAddr, flooders = 8, 40
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.MaxConnsPerAddr = perAddr }})
	for _, tc := range []struct{ name, addr string }{
		{"api", c.Master.Addr()},
		{"cluster", c.Master.ClusterAddr()},
	} {
		_, refused := flood(t, "127.0.0.1", tc.addr, flooders)
		if want := flooders - perAddr; refused != want {
			t.Errorf("%s: %d of %d idle connections from one address refused, want %d (cap %d)", tc.name, refused, flooders, want, perAddr)
		}
	}

	// A client elsewhere (another loopback address) is served at once.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsConfig(t, c.Master.CAPEM()),
		DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	defer hc.CloseIdleConnections()
	start := time.Now()
	resp, err := hc.Get(c.Master.URL() + "/healthz")
	if err != nil {
		t.Fatalf("/healthz during the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz during the flood: %s", resp.Status)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("/healthz took %v during the flood", took)
	}
}
