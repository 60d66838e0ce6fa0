// Package simfleet runs a fleet of simulated workers in one process for
// scale tests of a master. Each simulated worker speaks the real protocol
// over real mutual TLS: it joins with the join token and a CSR for its own
// key, connects with the certificate it got, says hello, heartbeats at the
// interval the welcome gives (listing the attempts it holds, as the real
// worker does), and answers each Assign with Accepted and, after a fake run
// time, a successful Result, which it sends again on every reconnection
// until the master acknowledges it.
//
// Nothing is run: the fleet measures the master, not the workers. It is
// built to stand thousands of workers on a small machine: one goroutine per
// worker (its receive loop; heartbeats and fake runs are timers), one gRPC
// connection per worker (its certificate names it) with small buffers, and
// the joins share a few connections.
package simfleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/grappe/grappe/internal/clusterpb"
)

// Config configures a Fleet.
type Config struct {
	// Master is the master's cluster address, host:port.
	Master string
	// JoinToken lets the workers join; it also pins the cluster CA.
	JoinToken string
	// CAPEM, if set, is trusted instead of the token's fingerprint.
	CAPEM []byte
	// Workers is how many simulated workers to run.
	Workers int
	// NamePrefix starts every worker's name, followed by its number. The
	// default is "sim-" and a random tag: a master refuses a join under a
	// name that already has a live identity, so a second fleet against
	// the same master must not reuse the first one's names.
	NamePrefix string
	// Slots is how many attempts each worker takes at once (default 4).
	Slots int
	// Languages are what the workers announce (default bash 5.2).
	Languages []*clusterpb.Language
	// Labels are announced by every worker.
	Labels map[string]string
	// RunTime is how long a fake run lasts before its result is sent;
	// 0 answers at once.
	RunTime time.Duration
	// Stdout is every result's standard output (default "ok\n").
	Stdout []byte
	// StartConcurrency bounds the workers joining and connecting at once
	// while the fleet starts (default 64): the TLS handshakes and the
	// signatures cost the master CPU, and a burst of thousands only
	// queues in its listen backlog.
	StartConcurrency int
	// PerSourceAddr, when the master is on a loopback address, is how
	// many workers share one local source address: they are spread over
	// 127.1.0.1, 127.1.0.2, … so that the master's per-address cap on
	// connections (256 by default) does not refuse them. Default 200;
	// -1 dials from the default address. Ignored for a remote master,
	// whose --max-conns-per-ip must then allow the fleet.
	PerSourceAddr int
	// Logger receives the fleet's own events (default slog.Default()).
	Logger *slog.Logger
}

// Stats are the fleet's counters, readable while it runs.
type Stats struct {
	Workers    int   // configured
	Joined     int64 // workers holding a certificate
	Connected  int64 // workers whose session is up now
	Assigned   int64 // Assign messages taken (duplicates excluded)
	Results    int64 // results sent (resends after a reconnection included)
	Acked      int64 // results the master acknowledged
	Heartbeats int64 // heartbeats sent
	Cancelled  int64 // attempts the master cancelled or told to abandon
	Reconnects int64 // sessions started after a worker's first
	Errors     int64 // joins, dials and sessions that failed
	// LastError is the last of those errors, to say why.
	LastError string
	// MaxBeatGap is the longest time between two heartbeats of one
	// worker's session: when it approaches the master's worker timeout,
	// this process, not the master, was too slow to count its workers
	// as healthy.
	MaxBeatGap time.Duration
	// MaxBeatLate is the longest delay of a heartbeat timer (this
	// process starved), MaxBeatSend the longest Send of a heartbeat
	// (blocked by flow control: the master not reading its links).
	MaxBeatLate, MaxBeatSend time.Duration
	// EndedBeating counts the sessions the master ended while their
	// worker had sent a heartbeat within the last two intervals: healthy
	// workers it dropped (declared lost, most likely), whatever this
	// process's own delays at other times.
	EndedBeating int64
	// GaveUp counts the workers the master refused for good (a name
	// taken by a live identity, say): they stopped trying.
	GaveUp int64
	// AllConnected is how long after Run started every worker had
	// connected at least once (or given up); zero until then.
	AllConnected time.Duration
}

// Fleet is a running set of simulated workers. Create it with New, start
// it with Run, stop it with Close (or by cancelling Run's context).
type Fleet struct {
	cfg     Config
	log     *slog.Logger
	tls     *tlsSetup
	joiners []*grpc.ClientConn // shared by the joins: no client certificate
	workers []*simWorker

	started   atomic.Int64 // UnixNano when Run started
	allConn   atomic.Int64 // nanoseconds from start to all connected
	firstConn atomic.Int64 // workers connected at least once
	gaveUp    atomic.Int64 // workers refused for good
	// allConnected is closed when every worker has connected once, or
	// given up.
	allConnected chan struct{}

	joined, connected, assigned, results, acked atomic.Int64
	cancelled, reconnects, errs, heartbeats     atomic.Int64
	maxBeatGap, maxBeatLate, maxBeatSend        atomic.Int64
	endedBeating                                atomic.Int64
	lastErr                                     atomic.Pointer[string]

	mu      sync.Mutex
	running bool
	cancel  context.CancelFunc // stops Run; nil when Run is not running
	done    chan struct{}      // closed when Run returns
	closed  bool
}

// New checks the configuration and prepares the workers' keys and TLS
// settings; nothing is dialled until Run.
func New(cfg Config) (*Fleet, error) {
	if cfg.Master == "" || cfg.JoinToken == "" {
		return nil, errors.New("simfleet: Master and JoinToken are required")
	}
	if cfg.Workers < 1 {
		return nil, errors.New("simfleet: Workers must be at least 1")
	}
	if cfg.Slots == 0 {
		cfg.Slots = 4
	}
	if cfg.Slots < 0 || cfg.RunTime < 0 {
		return nil, errors.New("simfleet: Slots and RunTime must not be negative")
	}
	if len(cfg.Languages) == 0 {
		cfg.Languages = []*clusterpb.Language{{Name: "bash", Version: "5.2"}}
	}
	if cfg.Stdout == nil {
		cfg.Stdout = []byte("ok\n")
	}
	if cfg.StartConcurrency <= 0 {
		cfg.StartConcurrency = 64
	}
	if cfg.PerSourceAddr == 0 {
		cfg.PerSourceAddr = 200
	}
	if cfg.NamePrefix == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		cfg.NamePrefix = "sim-" + hex.EncodeToString(b[:]) + "-"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ts, err := newTLSSetup(cfg)
	if err != nil {
		return nil, err
	}
	f := &Fleet{cfg: cfg, log: cfg.Logger, tls: ts, allConnected: make(chan struct{})}
	f.workers = make([]*simWorker, cfg.Workers)
	width := len(fmt.Sprint(cfg.Workers))
	for i := range f.workers {
		f.workers[i] = newSimWorker(f, i, fmt.Sprintf("%s%0*d", cfg.NamePrefix, width, i+1))
	}
	return f, nil
}

// Names returns the workers' names, in order.
func (f *Fleet) Names() []string {
	out := make([]string, len(f.workers))
	for i, w := range f.workers {
		out[i] = w.name
	}
	return out
}

// Stats returns the counters now.
func (f *Fleet) Stats() Stats {
	lastErr := ""
	if p := f.lastErr.Load(); p != nil {
		lastErr = *p
	}
	return Stats{
		Workers: f.cfg.Workers, Joined: f.joined.Load(), Connected: f.connected.Load(),
		Assigned: f.assigned.Load(), Results: f.results.Load(), Acked: f.acked.Load(), Heartbeats: f.heartbeats.Load(),
		Cancelled: f.cancelled.Load(), Reconnects: f.reconnects.Load(), Errors: f.errs.Load(),
		EndedBeating: f.endedBeating.Load(), GaveUp: f.gaveUp.Load(), AllConnected: time.Duration(f.allConn.Load()), MaxBeatGap: time.Duration(f.maxBeatGap.Load()),
		MaxBeatLate: time.Duration(f.maxBeatLate.Load()), MaxBeatSend: time.Duration(f.maxBeatSend.Load()),
		LastError: lastErr,
	}
}

// noteError counts a failed join, dial or session.
func (f *Fleet) noteError(err error) {
	f.errs.Add(1)
	msg := err.Error()
	f.lastErr.Store(&msg)
}

// noteMax raises *m to d if d is longer.
func noteMax(m *atomic.Int64, d time.Duration) {
	for {
		cur := m.Load()
		if int64(d) <= cur || m.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// AllConnected is closed once every worker has connected at least once
// or given up (Stats.GaveUp).
func (f *Fleet) AllConnected() <-chan struct{} { return f.allConnected }

// Run joins and connects the workers, StartConcurrency at a time, and
// keeps them connected (reconnecting with backoff) until ctx ends or
// Close is called. It returns once every worker's goroutine has ended.
func (f *Fleet) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f.mu.Lock()
	if f.running || f.closed {
		f.mu.Unlock()
		return errors.New("simfleet: Run called twice, or after Close")
	}
	f.running, f.cancel, f.done = true, cancel, make(chan struct{})
	f.mu.Unlock()
	defer close(f.done)
	defer f.closeConns()

	f.started.Store(time.Now().UnixNano())
	if err := f.dialJoiners(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	// Each worker holds a start token until its first session is up (or
	// Run ends): the fleet ramps up at the pace the master admits it.
	tokens := make(chan struct{}, f.cfg.StartConcurrency)
start:
	for _, w := range f.workers {
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			break start
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, func() { <-tokens })
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// Close stops Run, if it runs, and waits for it to return.
func (f *Fleet) Close() error {
	f.mu.Lock()
	f.closed = true
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// noteFirstConnect counts a worker's first session, noteGaveUp a worker
// refused for good; the last of either closes AllConnected.
func (f *Fleet) noteFirstConnect() { f.settled(f.firstConn.Add(1) + f.gaveUp.Load()) }
func (f *Fleet) noteGaveUp()       { f.settled(f.gaveUp.Add(1) + f.firstConn.Load()) }

// settled closes AllConnected when n, the workers connected or given up,
// reaches the fleet (both counters only grow: exactly one call sees it).
func (f *Fleet) settled(n int64) {
	if n != int64(len(f.workers)) {
		return
	}
	f.allConn.Store(time.Now().UnixNano() - f.started.Load())
	close(f.allConnected)
	f.log.Info("simulated fleet connected", "workers", f.firstConn.Load(), "gave_up", f.gaveUp.Load(),
		"in", time.Duration(f.allConn.Load()).Round(time.Millisecond))
}

// closeConns closes every connection the fleet opened.
func (f *Fleet) closeConns() {
	for _, c := range f.joiners {
		c.Close()
	}
	for _, w := range f.workers {
		w.closeConn()
	}
}
