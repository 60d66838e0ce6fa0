// Package worker is the agent that runs jobs: it dials the master (outbound
// only, so it works behind NAT), announces what it can run, keeps one gRPC
// stream open for heartbeats, assignments, output and results, and
// reconnects with backoff without stopping the jobs it is running.
package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/datadir"
	"github.com/grappe/grappe/internal/pki"
	"github.com/grappe/grappe/internal/runner"
)

// Runner runs one job; *runner.Runner is the real one.
type Runner interface {
	Run(ctx context.Context, spec *runner.Spec, out runner.OutputFunc) (*runner.Result, error)
}

var _ Runner = (*runner.Runner)(nil)

// Config configures a worker.
type Config struct {
	// Master is the master's cluster address, host:port, or several
	// separated by commas (masters sharing one database): the worker uses
	// one, and moves to the next when its session ends (the master died
	// or went away), re-announcing its running attempts there.
	Master string
	// JoinToken lets the worker join (get its certificate) the first
	// time; it also carries the fingerprint of the cluster CA, so the
	// worker can verify the master with nothing else. Once joined, the
	// certificate in DataDir is enough.
	JoinToken string
	// DataDir keeps the worker's identity: its key, its certificate and
	// the cluster CA.
	DataDir string
	// CAPEM, if set, is trusted instead of the token's fingerprint.
	CAPEM  []byte
	Name   string
	Slots  int
	Labels map[string]string
	// Languages are the toolchains that passed their self-test; the set
	// may grow while the worker runs.
	Languages LanguageSource
	// Sandbox names the isolation in use: "cgroup-v1", "cgroup-v2", "none".
	Sandbox string
	Runner  Runner
	// DrainTimeout bounds how long Run waits for running jobs once its
	// context ends; jobs still running then are handed back to the master.
	DrainTimeout time.Duration
	Version      string
	Logger       *slog.Logger

	// UnhealthyAfter is how many failures of the worker's own machinery
	// in a row (a job whose sandbox, not its program, failed) make the
	// worker unhealthy: it takes no job until Repair succeeds. Default 1
	// (see defaultUnhealthyAfter).
	UnhealthyAfter int
	// Repair tries to fix an unhealthy worker's machinery (recreate the
	// sandbox's cgroups, rerun the self-tests); nil error means healthy
	// again. Nil Repair: the worker only waits its backoff, then tries
	// jobs again.
	Repair func(ctx context.Context) error
	// RepairBackoff is the wait before the first repair, doubled after
	// each failed one up to a minute. Default 1s.
	RepairBackoff time.Duration
}

// LanguageSource says which languages the worker can run. The generation
// changes whenever the set does, so the worker re-announces it.
type LanguageSource interface {
	Languages() (langs []*clusterpb.Language, generation uint64)
}

// TestingSource is a LanguageSource that also says which languages are
// still being self-tested; their jobs wait in the master's queue for them
// rather than failing at their placement timeout. *Toolbox is one. The
// generation changes when this set does too.
type TestingSource interface {
	LanguageSource
	Testing() []*clusterpb.Language
}

var _ TestingSource = (*Toolbox)(nil)

// ChangeNotifier is a LanguageSource that says when its set changes
// (*Toolbox): the worker then sends a heartbeat at once.
type ChangeNotifier interface {
	Changed() <-chan struct{}
}

var _ ChangeNotifier = (*Toolbox)(nil)

// languagesChanged returns the source's change channel, or nil (never
// ready) when it has none.
func languagesChanged(src LanguageSource) <-chan struct{} {
	if n, ok := src.(ChangeNotifier); ok {
		return n.Changed()
	}
	return nil
}

// stillTesting returns what the language source still tests, if it says.
func stillTesting(src LanguageSource) []*clusterpb.Language {
	if ts, ok := src.(TestingSource); ok {
		return ts.Testing()
	}
	return nil
}

// StaticLanguages is a fixed LanguageSource.
type StaticLanguages []*clusterpb.Language

// Languages implements LanguageSource.
func (s StaticLanguages) Languages() ([]*clusterpb.Language, uint64) { return s, 0 }

var _ LanguageSource = (*Toolbox)(nil)

type attemptKey struct {
	id string
	n  int32
}

func (k attemptKey) ref() *clusterpb.AttemptRef {
	return &clusterpb.AttemptRef{JobId: k.id, Attempt: k.n}
}

type runningJob struct {
	cancel context.CancelFunc
	// handedBack is set when the job was stopped to be given back, so its
	// result is not sent.
	handedBack bool
	// input is an interactive attempt's stdin (nil for the others).
	input *stdinFeed
}

// Worker is a worker agent.
type Worker struct {
	cfg      Config
	log      *slog.Logger
	conn     *grpc.ClientConn
	load     *loadSampler
	identity atomic.Pointer[tls.Certificate]
	// masters are Config.Master's addresses; cur picks the one in use.
	masters []string
	cur     atomic.Int32

	mu      sync.Mutex
	running map[attemptKey]*runningJob
	pending map[attemptKey]*clusterpb.Result // sent or not, not yet acknowledged
	// encoded holds the encoding of a pending result too big for one
	// message, made by its job's goroutine: the session's writer, which
	// also sends the heartbeats, must not spend seconds encoding.
	encoded map[attemptKey][]byte
	out     chan *clusterpb.WorkerMessage // the live session's outbox, nil between sessions
	// resultReady wakes the session's writer when a result joins pending.
	resultReady chan struct{}
	draining    bool
	health      health
	// repairWake starts the repair loop when the worker turns unhealthy.
	repairWake chan struct{}
	idle       *sync.Cond // signalled when a job ends
	// finishing is closed when Run is ending: the session flushes and
	// closes instead of reconnecting.
	finishing chan struct{}
	wg        sync.WaitGroup
}

// New checks the configuration and prepares the connection; nothing is
// dialled until Run.
func New(cfg Config) (*Worker, error) {
	if cfg.Master == "" || cfg.Name == "" || cfg.DataDir == "" || cfg.Runner == nil || cfg.Languages == nil {
		return nil, errors.New("worker: Master, Name, DataDir, Runner and Languages are required")
	}
	if cfg.Slots < 1 {
		return nil, errors.New("worker: Slots must be at least 1")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	// The worker's key goes in DataDir: private before anything is written.
	if err := datadir.Ensure(cfg.DataDir, cfg.Logger); err != nil {
		return nil, fmt.Errorf("worker: data dir: %w", err)
	}
	if cfg.UnhealthyAfter < 1 {
		cfg.UnhealthyAfter = defaultUnhealthyAfter
	}
	if cfg.RepairBackoff <= 0 {
		cfg.RepairBackoff = defaultRepairBackoff
	}
	masters := splitMasters(cfg.Master)
	if len(masters) == 0 {
		return nil, errors.New("worker: Master names no address")
	}
	if _, err := masterTLS(&cfg, masters[0]); err != nil {
		return nil, err
	}
	w := &Worker{
		cfg: cfg, log: cfg.Logger.With("worker", cfg.Name), load: newLoadSampler(),
		running: map[attemptKey]*runningJob{}, pending: map[attemptKey]*clusterpb.Result{},
		encoded: map[attemptKey][]byte{}, finishing: make(chan struct{}), resultReady: make(chan struct{}, 1),
		repairWake: make(chan struct{}, 1), masters: masters,
	}
	w.idle = sync.NewCond(&w.mu)
	var err error
	if w.conn, err = w.dial(); err != nil {
		return nil, err
	}
	return w, nil
}

// dial prepares a connection to the master in use (gRPC connects
// lazily). A new one is made after each join, so that its handshake
// carries the new certificate, and on a move to another master.
func (w *Worker) dial() (*grpc.ClientConn, error) {
	addr := w.master()
	tlsCfg, err := masterTLS(&w.cfg, addr)
	if err != nil {
		return nil, err
	}
	// The client certificate is looked up at each handshake: the current
	// identity, or none before the worker has joined.
	tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if c := w.identity.Load(); c != nil {
			return c, nil
		}
		return &tls.Certificate{}, nil
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		// Pings detect a master that vanished without closing the
		// connection (a partition) within seconds.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
		// Fixed windows, as the master's: no bandwidth-probing PINGs.
		grpc.WithInitialWindowSize(4<<20),
		grpc.WithInitialConnWindowSize(8<<20),
	)
	if err != nil {
		return nil, fmt.Errorf("worker: dial %s: %w", addr, err)
	}
	return conn, nil
}

// splitMasters lists the addresses of a comma-separated Config.Master.
func splitMasters(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// master is the address of the master in use.
func (w *Worker) master() string {
	return w.masters[int(w.cur.Load())%len(w.masters)]
}

// nextMaster moves to the next master of the list, if there are several,
// and prepares the connection to it. Called from the goroutine that owns
// w.conn (Run's, then connectLoop's).
func (w *Worker) nextMaster() {
	if len(w.masters) < 2 {
		return
	}
	w.cur.Add(1)
	conn, err := w.dial()
	if err != nil {
		w.log.Warn("cannot prepare a connection to the next master", "master", w.master(), "err", err)
		return
	}
	w.conn.Close()
	w.conn = conn
	w.log.Info("trying the next master", "master", w.master())
}

// masterTLS decides how the worker verifies the master: the CA given, else
// the fingerprint in the join token, else the CA saved when it joined.
func masterTLS(cfg *Config, addr string) (*tls.Config, error) {
	if len(cfg.CAPEM) > 0 {
		c, err := pki.ClientTLS(cfg.CAPEM)
		if err != nil {
			return nil, fmt.Errorf("worker: CA: %w", err)
		}
		return c, nil
	}
	if cfg.JoinToken != "" {
		tok, err := pki.ParseJoinToken(cfg.JoinToken)
		if err != nil {
			return nil, fmt.Errorf("worker: join token: %w", err)
		}
		return pki.PinnedClientTLSForHost(tok.Fingerprint, addr), nil
	}
	caPEM, err := os.ReadFile(filepath.Join(cfg.DataDir, joinedCAFile))
	if err != nil {
		return nil, errors.New("worker: a join token is needed to join the cluster the first time")
	}
	c, err := pki.ClientTLS(caPEM)
	if err != nil {
		return nil, fmt.Errorf("worker: saved CA: %w", err)
	}
	return c, nil
}

// Run connects and serves until ctx ends, reconnecting with backoff. When
// ctx ends it drains: it takes no new job, waits up to DrainTimeout for the
// running ones, hands the rest back, and returns.
func (w *Worker) Run(ctx context.Context) error {
	defer func() { w.conn.Close() }()
	if err := w.ensureIdentity(ctx); err != nil {
		return err
	}
	sessCtx, stopSessions := context.WithCancel(context.Background())
	defer stopSessions()
	sessionsDone := make(chan struct{})
	go func() {
		defer close(sessionsDone)
		w.connectLoop(sessCtx)
	}()
	repairDone := make(chan struct{})
	go func() {
		defer close(repairDone)
		w.repairLoop(sessCtx)
	}()
	<-ctx.Done()
	w.drain()
	// Say goodbye properly: the session flushes its outbox (results,
	// releases) and closes its side, so the master reads all of it.
	close(w.finishing)
	select {
	case <-sessionsDone:
	case <-time.After(3 * time.Second):
	}
	stopSessions()
	<-sessionsDone
	<-repairDone
	w.wg.Wait()
	return nil
}

func (w *Worker) connectLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		w.renewIfDue(ctx)
		err := w.session(ctx)
		if ctx.Err() != nil || w.isFinishing() {
			return
		}
		w.rejoinIfRefused(ctx, err)
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond // it was a working session
		}
		w.log.Warn("disconnected from master; reconnecting", "master", w.master(), "err", err, "in", backoff)
		w.nextMaster()
		// Jitter keeps a fleet of workers from reconnecting in lockstep.
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(sleep):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// drain stops taking jobs, waits for the running ones, then hands back
// what is left.
func (w *Worker) drain() {
	w.mu.Lock()
	w.draining = true
	out := w.out
	w.mu.Unlock()
	if out != nil {
		w.trySend(out, &clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Heartbeat{Heartbeat: w.heartbeat(nil)}})
	}
	deadline := time.Now().Add(w.cfg.DrainTimeout)
	timer := time.AfterFunc(w.cfg.DrainTimeout, func() {
		w.mu.Lock()
		w.idle.Broadcast()
		w.mu.Unlock()
	})
	defer timer.Stop()
	w.mu.Lock()
	for len(w.running) > 0 && time.Now().Before(deadline) {
		w.idle.Wait()
	}
	var back []attemptKey
	for k, j := range w.running {
		j.handedBack = true
		j.cancel()
		back = append(back, k)
	}
	out = w.out
	w.mu.Unlock()
	if len(back) > 0 {
		w.log.Warn("drain timeout: handing jobs back", "jobs", len(back))
	}
	for _, k := range back {
		if out != nil {
			w.trySend(out, &clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Release{Release: &clusterpb.Release{
				Attempt: k.ref(), Reason: "worker " + w.cfg.Name + " shut down",
			}}})
		}
	}
	// Give the outbox a moment to flush results and releases.
	flush := time.Now().Add(2 * time.Second)
	for time.Now().Before(flush) {
		w.mu.Lock()
		n := len(w.pending)
		w.mu.Unlock()
		if n == 0 || out == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *Worker) isFinishing() bool {
	select {
	case <-w.finishing:
		return true
	default:
		return false
	}
}

func (w *Worker) trySend(out chan *clusterpb.WorkerMessage, msg *clusterpb.WorkerMessage) {
	select {
	case out <- msg:
	case <-time.After(time.Second):
	}
}

// heartbeat builds the periodic report. When langGen is given, the
// language set is included if it changed since *langGen.
func (w *Worker) heartbeat(langGen *uint64) *clusterpb.Heartbeat {
	cpu, mem := w.load.sample()
	var langs []*clusterpb.Language
	changed := false
	if langGen != nil {
		var gen uint64
		if langs, gen = w.cfg.Languages.Languages(); gen != *langGen {
			*langGen, changed = gen, true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	hb := &clusterpb.Heartbeat{CpuPercent: cpu, MemoryPercent: mem, Draining: w.draining, Health: w.health.proto()}
	if changed {
		hb.LanguagesChanged, hb.Languages, hb.Testing = true, langs, stillTesting(w.cfg.Languages)
	}
	// Every attempt it holds: the master takes back one missing from
	// several heartbeats in a row (Hello.heartbeat_lists_held).
	for k := range w.running {
		hb.Running = append(hb.Running, k.ref())
	}
	for k := range w.pending {
		hb.Running = append(hb.Running, k.ref())
	}
	return hb
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
