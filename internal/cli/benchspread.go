package cli

import (
	"strings"
	"sync/atomic"

	"github.com/grappe/grappe/client"
)

// spreader hands grappe bench's jobs to its masters in turn: job i to
// client i mod n. Without --spread it holds one client for the whole
// address list, which fails over but sends everything to the first master
// that answers.
type spreader struct {
	clients []*client.Client
	calls   atomic.Uint64
}

// newSpreader opens one client per address of the resolved connection
// when spread is set, else one client for the whole list.
func newSpreader(cf *connFlags, spread bool) (*spreader, error) {
	cfg, err := cf.config()
	if err != nil {
		return nil, err
	}
	addrs := []string{cfg.Addr}
	if spread {
		addrs = splitAddrs(cfg.Addr)
	}
	sp := &spreader{}
	for _, a := range addrs {
		one := cfg
		one.Addr = a
		c, err := client.New(one)
		if err != nil {
			sp.Close()
			return nil, err
		}
		sp.clients = append(sp.clients, c)
	}
	return sp, nil
}

// splitAddrs returns the non-empty entries of a comma-separated address
// list, trimmed.
func splitAddrs(list string) []string {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// next returns the client for the next job. Jobs are numbered in the order
// they start, so at any concurrency each master gets every n-th.
func (sp *spreader) next() *client.Client {
	i := sp.calls.Add(1) - 1
	return sp.clients[i%uint64(len(sp.clients))]
}

func (sp *spreader) len() int { return len(sp.clients) }

// describe ends grappe bench's header line: where the jobs go.
func (sp *spreader) describe() string {
	if len(sp.clients) == 1 {
		return "against " + sp.clients[0].Addr()
	}
	names := make([]string, len(sp.clients))
	for i, c := range sp.clients {
		names[i] = c.Addr()
	}
	return "spread over " + strings.Join(names, ", ")
}

// Close closes every client.
func (sp *spreader) Close() {
	for _, c := range sp.clients {
		c.Close()
	}
}
