// Package connlimit caps the connections a server holds open: per client
// address, so that one host (or one process on it) cannot take them all,
// and in total, below the process's open-file limit, so that the server
// always keeps descriptors for its database, its logs and new clients.
//
// Without it, idle connections are only bounded by the kernel: about
// 40,000 of them from two processes once filled the master's file table,
// and /healthz stopped answering.
//
// A connection over a cap is closed as soon as it is accepted, before any
// byte is read or written: nothing is spent on a TLS handshake for it, and
// the client sees the connection reset at once instead of a hang.
package connlimit

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Budget is a number of connections that several listeners draw from (the
// REST API and the workers' link share the process's descriptors).
type Budget struct {
	max int64
	n   atomic.Int64
}

// NewBudget returns a budget of max connections; max <= 0 means no cap.
func NewBudget(max int) *Budget { return &Budget{max: int64(max)} }

// Max is the budget's size (0: no cap).
func (b *Budget) Max() int {
	if b == nil || b.max <= 0 {
		return 0
	}
	return int(b.max)
}

// InUse is how many connections hold a share of the budget.
func (b *Budget) InUse() int {
	if b == nil {
		return 0
	}
	return int(b.n.Load())
}

func (b *Budget) take() bool {
	if b == nil {
		return true
	}
	if n := b.n.Add(1); b.max > 0 && n > b.max {
		b.n.Add(-1)
		return false
	}
	return true
}

func (b *Budget) give() {
	if b != nil {
		b.n.Add(-1)
	}
}

// Config configures a Listener.
type Config struct {
	// PerAddr is how many connections one client IP address may hold at
	// once; 0 means no cap. Clients behind one NAT share an address, so
	// it should be generous.
	PerAddr int
	// Total, if set, is shared with the server's other listeners.
	Total *Budget
	// Name says which listener, in log lines ("api", "cluster").
	Name   string
	Logger *slog.Logger
}

// logEvery bounds the refusal log lines: under a flood, one line per
// interval with the count, not one per connection.
const logEvery = 10 * time.Second

// Listener is a net.Listener that enforces Config's caps.
type Listener struct {
	net.Listener
	cfg Config

	mu     sync.Mutex
	byAddr map[netip.Addr]int

	refused   atomic.Int64
	lastLog   atomic.Int64 // unix nanoseconds of the last refusal line
	unlogged  atomic.Int64 // refusals since that line
	closeOnce sync.Once
}

// NewListener wraps inner.
func NewListener(inner net.Listener, cfg Config) *Listener {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Listener{Listener: inner, cfg: cfg, byAddr: map[netip.Addr]int{}}
}

// Accept returns the next connection within the caps, closing at once
// those over them.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		if why := l.admit(addr); why != "" {
			// Counted before the close, which the client sees: whoever
			// reads Refused after that finds the refusal in it.
			l.noteRefusal(addr, why)
			c.Close()
			continue
		}
		return &conn{Conn: c, l: l, addr: addr}, nil
	}
}

// Refused is how many connections the caps closed so far.
func (l *Listener) Refused() int64 { return l.refused.Load() }

// Open is how many connections addr holds now.
func (l *Listener) Open(addr netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byAddr[addr.Unmap()]
}

// admit takes a share of both caps for addr, or says which one is full.
func (l *Listener) admit(addr netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.PerAddr > 0 && l.byAddr[addr] >= l.cfg.PerAddr {
		return "per-address"
	}
	if !l.cfg.Total.take() {
		return "total"
	}
	l.byAddr[addr]++
	return ""
}

func (l *Listener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
	l.cfg.Total.give()
}

func (l *Listener) noteRefusal(addr netip.Addr, why string) {
	l.refused.Add(1)
	n := l.unlogged.Add(1)
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(logEvery) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.unlogged.Add(-n)
	l.cfg.Logger.Warn("connections refused: over the cap", "listener", l.cfg.Name, "cap", why,
		"addr", addr.String(), "refused", n, "per_addr_cap", l.cfg.PerAddr, "total_cap", l.cfg.Total.Max())
}

// remoteAddr is the connection's client IP (IPv4-mapped IPv6 as IPv4);
// the zero Addr for a connection without an IP (a Unix socket), which
// then shares one count.
func remoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// conn gives its share back once, on the first Close.
type conn struct {
	net.Conn
	l    *Listener
	addr netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}

// reserve is the descriptors DefaultTotal leaves for everything but
// client connections: the database and its WAL, log files, certificates,
// the autoscaler's children, a burst of short-lived connections.
const reserve = 256

// DefaultTotal is a total cap below an open-file limit: a quarter of it
// (at least reserve) stays for the rest of the process. 0 (no cap) when
// the limit is unknown.
func DefaultTotal(fileLimit uint64) int {
	if fileLimit == 0 {
		return 0
	}
	keep := max(fileLimit/4, reserve)
	if fileLimit <= keep+64 {
		return 64 // a tiny limit: still serve a few clients
	}
	return int(min(fileLimit-keep, 1<<30))
}

// CloseWrite half-closes a TCP connection, as net/http does before it
// closes one after an error answer without TLS.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
