package clustertest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy is a TCP proxy a test controls, to cut a worker off from the
// master the way a network partition does: traffic is dropped, connections
// stay open, nobody is told.
type Proxy struct {
	ln      net.Listener
	network string // of the target: "tcp", or "unix" for a socket path
	target  atomic.Pointer[string]
	dropped atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// NewProxy listens on 127.0.0.1:0 and forwards to target.
func NewProxy(target string) (*Proxy, error) { return newProxy("tcp", target) }

// NewUnixProxy listens on 127.0.0.1:0 and forwards to the Unix socket at
// path (a test PostgreSQL's, for one).
func NewUnixProxy(path string) (*Proxy, error) { return newProxy("unix", path) }

func newProxy(network, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, network: network}
	p.target.Store(&target)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where to connect instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Drop starts (true) or stops (false) discarding all traffic. Bytes dropped
// mid-stream break the TLS sessions that cross it, as a real partition
// longer than TCP's patience would.
func (p *Proxy) Drop(drop bool) { p.dropped.Store(drop) }

// Retarget sends new connections to target and cuts the open ones, as a
// load balancer moving a worker to another master would.
func (p *Proxy) Retarget(target string) {
	p.target.Store(&target)
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial(p.network, *p.target.Load())
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.dropped.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}
