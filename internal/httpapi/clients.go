package httpapi

import (
	"sync"
	"time"
)

// clientWindow is how recently a caller must have made a request to count
// as connected.
const clientWindow = 2 * time.Minute

// Clients remembers who called the API recently, for the cluster view.
type Clients struct {
	mu   sync.Mutex
	seen map[clientKey]*ClientInfo
}

type clientKey struct{ user, host string }

// ClientInfo is one connected client.
type ClientInfo struct {
	User     string
	Address  string
	Since    time.Time
	LastSeen time.Time
	Requests int64
}

// NewClients returns an empty tracker.
func NewClients() *Clients { return &Clients{seen: make(map[clientKey]*ClientInfo)} }

// Seen records a request from user at addr (host:port; the port is dropped
// so one client's many connections count once).
func (c *Clients) Seen(user, addr string) {
	host := addr
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			host = addr[:i]
			break
		}
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	k := clientKey{user, host}
	ci := c.seen[k]
	if ci == nil || now.Sub(ci.LastSeen) > clientWindow {
		ci = &ClientInfo{User: user, Address: host, Since: now}
		c.seen[k] = ci
	}
	ci.LastSeen = now
	ci.Requests++
	if len(c.seen) > 1024 {
		c.expire(now)
	}
}

func (c *Clients) expire(now time.Time) {
	for k, ci := range c.seen {
		if now.Sub(ci.LastSeen) > clientWindow {
			delete(c.seen, k)
		}
	}
}

// List returns the clients seen within the window.
func (c *Clients) List() []ClientInfo {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	out := make([]ClientInfo, 0, len(c.seen))
	for _, ci := range c.seen {
		out = append(out, *ci)
	}
	return out
}

// Count is the number of clients seen within the window.
func (c *Clients) Count() int { return len(c.List()) }
