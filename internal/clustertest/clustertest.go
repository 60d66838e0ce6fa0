// Package clustertest starts a real master and real workers on 127.0.0.1:0
// for end-to-end tests: TLS, the SQLite store, the gRPC link and the real
// runner, all in the test process.
package clustertest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/sandbox"
	"github.com/grappe/grappe/internal/worker"
)

// WorkerOptions describe one worker.
type WorkerOptions struct {
	Name  string
	Slots int
	// Languages restricts the worker to these languages; nil means every
	// language this machine runs.
	Languages []string
	Labels    map[string]string
	// Runner replaces the real runner (a fake for scheduling tests).
	Runner worker.Runner
	// LanguageSource replaces the announced languages (with Runner).
	LanguageSource worker.LanguageSource
	// Proxied routes the worker's connection through a Proxy, so the test
	// can partition it (Partition) or make it vanish (KillWorker).
	Proxied bool
	// OtherMasters are more masters' cluster addresses (AddMaster), which
	// the worker moves to when its own goes away.
	OtherMasters []string
	// UnhealthyAfter, Repair and RepairBackoff are the worker's own
	// (worker.Config); zero values take its defaults. A worker on a
	// toolbox (no Runner) repairs itself with the toolbox's Repair unless
	// Repair is set, as grappe worker does.
	UnhealthyAfter int
	Repair         func(context.Context) error
	RepairBackoff  time.Duration
	// OwnSandbox gives the worker a Linux sandbox and a toolbox of its
	// own, with only Languages (default bash), instead of the process's
	// shared ones: a test can break them (Worker.Sandbox) without
	// touching the other workers. Root only; the test fails otherwise.
	OwnSandbox bool
}

// Options describe a cluster.
type Options struct {
	Workers []WorkerOptions
	// Master adjusts the master's configuration before it starts.
	Master func(*master.Config)
	// Verbose sends the cluster's logs to the test log.
	Verbose bool
}

// Cluster is a running master with its workers.
type Cluster struct {
	t       testing.TB
	cfg     master.Config
	Master  *master.Master
	Client  *client.Client
	Token   string
	DataDir string // the master's
	dir     string
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{} // closed when the master's Run returned

	mu      sync.Mutex
	workers map[string]*Worker
}

// Worker is a running worker of the cluster.
type Worker struct {
	Name    string
	proxy   *Proxy
	cancel  context.CancelFunc
	done    chan struct{}
	sandbox *sandbox.Linux
	// closeToolbox closes an OwnSandbox worker's toolbox and sandbox once
	// it has stopped.
	closeToolbox func()
}

// Sandbox is the worker's own sandbox (WorkerOptions.OwnSandbox), else nil.
func (w *Worker) Sandbox() *sandbox.Linux { return w.sandbox }

// Start starts a master and the workers and stops them when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.Verbose || os.Getenv("GRAPPE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := master.Config{
		DataDir: filepath.Join(dir, "master"), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0",
		HeartbeatInterval: 200 * time.Millisecond, WorkerTimeout: 2 * time.Second,
		PlacementTimeout: 3 * time.Second, Logger: log,
	}
	if opts.Master != nil {
		opts.Master(&cfg)
	}
	c := &Cluster{t: t, cfg: cfg, dir: dir, DataDir: cfg.DataDir, log: log, workers: map[string]*Worker{}}
	c.startMaster()
	var err error
	c.Token, err = auth.ReadSecretFile(filepath.Join(cfg.DataDir, master.AdminTokenFile))
	if err != nil {
		t.Fatalf("clustertest: admin token: %v", err)
	}
	c.Client = c.NewClient(c.Token)
	t.Cleanup(c.stop)
	for _, w := range opts.Workers {
		c.AddWorker(w)
	}
	return c
}

func (c *Cluster) startMaster() {
	c.t.Helper()
	m, err := master.New(c.cfg)
	if err != nil {
		c.t.Fatalf("clustertest: master: %v", err)
	}
	// A restarted master must come back on the same addresses.
	c.cfg.Listen, c.cfg.ClusterListen = m.Addr(), m.ClusterAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.Master, c.cancel, c.done = m, cancel, done
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			c.t.Errorf("clustertest: master: %v", err)
		}
	}()
}

// StopMaster stops the master abruptly: listeners and streams closed at
// once, no goodbye to the workers, which keep running their jobs.
func (c *Cluster) StopMaster() {
	c.cancel()
	c.Master.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("clustertest: master did not stop")
	}
}

// RestartMaster starts the master again on the same data directory and
// addresses, as after a crash and a restart.
func (c *Cluster) RestartMaster() {
	c.t.Helper()
	c.startMaster()
}

// AddMaster starts another master on this cluster's data directory (its
// database, CA and tokens) under its own id, as a second master sharing
// the database would run, and returns it as a Cluster of its own: its
// Client talks to it, its AddWorker connects workers to it. It stops when
// the test ends.
func (c *Cluster) AddMaster(id string) *Cluster {
	c.t.Helper()
	return c.AddMasterWith(id, nil)
}

// AddMasterWith is AddMaster with edit (when not nil) applied to the new
// master's configuration, a copy of this one's: masters that sweep at
// different rates, say.
func (c *Cluster) AddMasterWith(id string, edit func(*master.Config)) *Cluster {
	c.t.Helper()
	cfg := c.cfg
	if edit != nil {
		edit(&cfg)
	}
	cfg.MasterID = id
	cfg.Listen, cfg.ClusterListen = "127.0.0.1:0", "127.0.0.1:0"
	p := &Cluster{t: c.t, cfg: cfg, dir: c.dir, DataDir: c.DataDir, log: c.log, Token: c.Token, workers: map[string]*Worker{}}
	p.startMaster()
	p.Client = p.NewClient(p.Token)
	c.t.Cleanup(p.stop)
	return p
}

// AddMasterOwnData is AddMaster with a data directory of its own, as a
// master on another machine has: it shares the database (Options.Master
// must name one, PostgreSQL) and takes the cluster's CA and tokens from it.
func (c *Cluster) AddMasterOwnData(id string) *Cluster {
	c.t.Helper()
	cfg := c.cfg
	cfg.MasterID = id
	cfg.DataDir = filepath.Join(c.dir, "master-"+id)
	cfg.Listen, cfg.ClusterListen = "127.0.0.1:0", "127.0.0.1:0"
	p := &Cluster{t: c.t, cfg: cfg, dir: c.dir, DataDir: cfg.DataDir, log: c.log, workers: map[string]*Worker{}}
	p.startMaster()
	tok, err := auth.ReadSecretFile(filepath.Join(cfg.DataDir, master.AdminTokenFile))
	if err != nil {
		c.t.Fatalf("clustertest: admin token of %s: %v", id, err)
	}
	p.Token = tok
	p.Client = p.NewClient(p.Token)
	c.t.Cleanup(p.stop)
	return p
}

// NewClient returns an API client that trusts the cluster CA.
func (c *Cluster) NewClient(token string) *client.Client {
	cl, err := client.New(client.Config{Addr: c.Master.URL(), Token: token, CAPEM: c.Master.CAPEM()})
	if err != nil {
		c.t.Fatalf("clustertest: client: %v", err)
	}
	return cl
}

// AddWorker starts a worker and waits until the master lists it.
func (c *Cluster) AddWorker(o WorkerOptions) *Worker {
	c.t.Helper()
	if o.Slots == 0 {
		o.Slots = 2
	}
	target := c.Master.ClusterAddr()
	var proxy *Proxy
	if o.Proxied {
		var err error
		if proxy, err = NewProxy(target); err != nil {
			c.t.Fatalf("clustertest: proxy: %v", err)
		}
		target = proxy.Addr()
	}
	h := &Worker{Name: o.Name, proxy: proxy, done: make(chan struct{})}
	runner, langs, kind, repair := o.Runner, o.LanguageSource, "none", o.Repair
	if runner == nil {
		var tb *worker.Toolbox
		if o.OwnSandbox {
			tb = c.ownToolbox(h, o)
		} else {
			tb = SharedToolbox(c.t)
		}
		runner, langs, kind = tb.Runner, filtered{tb, o.Languages}, tb.Sandbox
		if repair == nil {
			repair = tb.Repair
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	if len(o.OtherMasters) > 0 {
		target += "," + strings.Join(o.OtherMasters, ",")
	}
	w, err := worker.New(worker.Config{
		Master: target, JoinToken: c.Master.JoinToken(), CAPEM: c.Master.CAPEM(),
		DataDir: filepath.Join(c.dir, "workers", o.Name),
		Name:    o.Name, Slots: o.Slots, Labels: o.Labels, Languages: langs, Sandbox: kind,
		Runner: runner, DrainTimeout: 2 * time.Second, Logger: c.log,
		UnhealthyAfter: o.UnhealthyAfter, Repair: repair, RepairBackoff: o.RepairBackoff,
	})
	if err != nil {
		cancel()
		if h.closeToolbox != nil {
			h.closeToolbox()
		}
		c.t.Fatalf("clustertest: worker %s: %v", o.Name, err)
	}
	go func() {
		defer close(h.done)
		_ = w.Run(ctx)
	}()
	c.mu.Lock()
	c.workers[o.Name] = h
	c.mu.Unlock()
	c.Eventually(10*time.Second, "worker "+o.Name+" up", func() bool {
		for _, w := range c.Master.Workers(context.Background()) {
			if w.Name == o.Name && w.Status == api.WorkerUp {
				return true
			}
		}
		return false
	})
	return h
}

// StopWorker stops a worker as SIGTERM would (drain, then leave).
func (c *Cluster) StopWorker(name string) {
	c.mu.Lock()
	h := c.workers[name]
	delete(c.workers, name)
	c.mu.Unlock()
	if h != nil {
		h.stop()
	}
}

// KillWorker makes a proxied worker vanish as kill -9 or a pulled cable
// would: its traffic is dropped first, so nothing it does afterwards (its
// drain, its results) reaches the master; then it stops, killing its jobs.
func (c *Cluster) KillWorker(name string) {
	c.mu.Lock()
	h := c.workers[name]
	delete(c.workers, name)
	c.mu.Unlock()
	if h == nil || h.proxy == nil {
		c.t.Fatalf("clustertest: KillWorker(%q) needs a Proxied worker", name)
	}
	h.proxy.Drop(true)
	h.stop()
}

// Redirect moves a proxied worker to another master of the same database
// (AddMaster): its link is cut and it reconnects there.
func (c *Cluster) Redirect(name string, to *Cluster) {
	c.mu.Lock()
	h := c.workers[name]
	c.mu.Unlock()
	if h == nil || h.proxy == nil {
		c.t.Fatalf("clustertest: Redirect(%q) needs a Proxied worker", name)
	}
	h.proxy.Retarget(to.Master.ClusterAddr())
}

// Partition drops (true) or restores (false) a proxied worker's traffic.
func (c *Cluster) Partition(name string, drop bool) {
	c.mu.Lock()
	h := c.workers[name]
	c.mu.Unlock()
	if h == nil || h.proxy == nil {
		c.t.Fatalf("clustertest: Partition(%q) needs a Proxied worker", name)
	}
	h.proxy.Drop(drop)
}

func (w *Worker) stop() {
	w.cancel()
	<-w.done
	if w.proxy != nil {
		w.proxy.Close()
	}
	if w.closeToolbox != nil {
		w.closeToolbox()
	}
}

// ownToolbox makes an OwnSandbox worker's sandbox and toolbox, in the
// cluster's directory, as grappe worker makes them in its data directory
// (the sandbox's id and lock beside it), and waits for the self-tests of
// its interpreters.
func (c *Cluster) ownToolbox(h *Worker, o WorkerOptions) *worker.Toolbox {
	c.t.Helper()
	if os.Geteuid() != 0 || runtime.GOOS != "linux" {
		c.t.Fatalf("clustertest: worker %s: OwnSandbox needs root on Linux", o.Name)
	}
	only := o.Languages
	if only == nil {
		only = []string{"bash"}
	}
	sbDir := filepath.Join(c.dir, "sandbox-"+o.Name)
	sb, err := sandbox.New(sandbox.Config{Root: sbDir, StateDir: sbDir, UIDCount: 100, PoolSize: 2, Logger: c.log})
	if err != nil {
		c.t.Fatalf("clustertest: worker %s: sandbox: %v", o.Name, err)
	}
	tb, err := worker.PrepareToolbox(context.Background(), worker.ToolboxConfig{
		DataDir: filepath.Join(c.dir, "toolbox-"+o.Name), Sandbox: sb, Logger: c.log, Only: only,
	})
	if err != nil {
		sb.Close()
		c.t.Fatalf("clustertest: worker %s: toolbox: %v", o.Name, err)
	}
	h.sandbox = sb
	h.closeToolbox = func() {
		// The self-tests use the sandbox: they end before it closes.
		<-tb.Tested()
		tb.Close()
		sb.Close()
	}
	select {
	case <-tb.Quick():
	case <-time.After(time.Minute):
	}
	return tb
}

// WaitLanguage waits until some worker announces lang, and skips the test
// when this machine has no working toolchain for it.
func (c *Cluster) WaitLanguage(lang string) {
	c.t.Helper()
	tb := SharedToolbox(c.t)
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		for _, l := range c.Master.Languages(context.Background()) {
			if l.Name == lang {
				return
			}
		}
		select {
		case <-tb.Tested():
			if !hasLanguage(tb, lang) {
				c.t.Skipf("no working %s toolchain on this machine", lang)
			}
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("clustertest: no worker announced %s in time", lang)
}

// Eventually polls cond until it holds or the timeout passes.
func (c *Cluster) Eventually(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("clustertest: timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) stop() {
	c.mu.Lock()
	ws := make([]*Worker, 0, len(c.workers))
	for _, w := range c.workers {
		ws = append(ws, w)
	}
	c.workers = map[string]*Worker{}
	c.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		w.stop()
	}
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Errorf("clustertest: master did not stop")
	}
	c.Client.Close()
}

// filtered announces only some of a toolbox's languages.
type filtered struct {
	tb    *worker.Toolbox
	names []string
}

func (f filtered) Languages() ([]*clusterpb.Language, uint64) {
	langs, gen := f.tb.Languages()
	if f.names == nil {
		return langs, gen
	}
	var out []*clusterpb.Language
	for _, l := range langs {
		if slices.Contains(f.names, l.Name) {
			out = append(out, l)
		}
	}
	return out, gen
}

func (f filtered) Changed() <-chan struct{} { return f.tb.Changed() }

func (f filtered) Testing() []*clusterpb.Language {
	var out []*clusterpb.Language
	for _, l := range f.tb.Testing() {
		if f.names == nil || slices.Contains(f.names, l.Name) {
			out = append(out, l)
		}
	}
	return out
}

func hasLanguage(tb *worker.Toolbox, lang string) bool {
	langs, _ := tb.Languages()
	for _, l := range langs {
		if l.Name == lang {
			return true
		}
	}
	return false
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
