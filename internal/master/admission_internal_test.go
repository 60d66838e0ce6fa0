package master

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/simfleet"
)

func TestDispatchLag(t *testing.T) {
	var a admission
	t0 := time.Unix(1000, 0)
	if lag := a.lag(t0); lag != 0 {
		t.Fatalf("lag with nothing asked = %s", lag)
	}
	a.wake(t0)
	a.wake(t0.Add(time.Second)) // the oldest request counts
	if lag := a.lag(t0.Add(3 * time.Second)); lag != 3*time.Second {
		t.Fatalf("lag of a request waiting 3s = %s", lag)
	}
	a.batchStarts(t0.Add(3 * time.Second))
	a.wake(t0.Add(4 * time.Second)) // for the next batch
	if lag := a.lag(t0.Add(5 * time.Second)); lag != 5*time.Second {
		t.Fatalf("lag while the batch serving a 5s old request runs = %s", lag)
	}
	a.batchEnds()
	if lag := a.lag(t0.Add(5 * time.Second)); lag != time.Second {
		t.Fatalf("lag of the request the next batch serves = %s, want 1s", lag)
	}
	a.batchStarts(t0.Add(5 * time.Second))
	a.batchEnds()
	if lag := a.lag(t0.Add(6 * time.Second)); lag != 0 {
		t.Fatalf("lag with every request served = %s", lag)
	}
}

// A master whose dispatch lags (here held on purpose, as a store too slow
// or a CPU too short would hold it) refuses submissions with 503 and
// Retry-After; what it accepted before runs once when dispatch resumes,
// and submissions are accepted again.
func TestSubmissionsRefusedWhileDispatchLags(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0",
		MaxDispatchLag: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone })

	f, err := simfleet.New(simfleet.Config{Master: m.ClusterAddr(), JoinToken: m.JoinToken(), CAPEM: m.CAPEM(),
		Workers: 4, Slots: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	fleetDone := make(chan error, 1)
	go func() { fleetDone <- f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-fleetDone })
	select {
	case <-f.AllConnected():
	case <-time.After(30 * time.Second):
		t.Fatalf("the fleet did not connect: %+v", f.Stats())
	}

	token, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(m.CAPEM())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	post := func(path string, v any) *http.Response {
		t.Helper()
		body, _ := json.Marshal(v)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.URL()+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	submit := func() (status int, retryAfter string, job api.Job) {
		t.Helper()
		body, _ := json.Marshal(api.JobRequest{Language: "bash", Source: "true"})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.URL()+"/api/v1/jobs", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode < 300 {
			if err := json.NewDecoder(resp.Body).Decode(&job); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, resp.Header.Get("Retry-After"), job
	}

	// Dispatch held: the first submission is accepted (nothing waited
	// yet) and waits in the queue.
	hold, held := make(chan struct{}), make(chan struct{})
	go m.core.WithoutDispatch(func() { close(held); <-hold })
	<-held
	st, _, first := submit()
	if st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("first submission: %d", st)
	}
	time.Sleep(500 * time.Millisecond) // past MaxDispatchLag
	st, retry, _ := submit()
	if n, err := strconv.Atoi(retry); st != http.StatusServiceUnavailable || err != nil || n < 1 {
		t.Fatalf("submission with the dispatch 500ms behind: %d, Retry-After %q; want 503 and a delay", st, retry)
	}
	// A batch is refused the same way, whole.
	resp := post("/api/v1/batches", api.BatchRequest{Jobs: []api.JobRequest{{Language: "bash", Source: "true"}}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a batch with the dispatch behind: %d, Retry-After %q; want 503 and a delay", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	close(hold)
	var again api.Job
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _, again = submit(); st < 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("submissions still refused (%d) 10s after dispatch resumed", st)
		}
		time.Sleep(100 * time.Millisecond)
	}

	c, err := client.New(client.Config{Addr: m.URL(), Token: string(bytes.TrimSpace(token)), CAPEM: m.CAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{first.ID, again.ID} {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		j, err := c.Wait(wctx, id)
		wcancel()
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != api.StatusDone || j.Attempts != 1 {
			t.Errorf("job %s: %s after %d attempts (%s); want done in one", id, j.Status, j.Attempts, j.Error)
		}
	}
	if s := f.Stats(); s.Assigned != 2 {
		t.Errorf("the fleet was assigned %d attempts, want 2: %+v", s.Assigned, s)
	}
}
