// Package jobs is grappe's job core: submit, claim and place, renew,
// finish, cancel, release, requeue and sweep, written over small
// interfaces (the store, a clock, the links to the workers this master
// holds, a publisher of events) and free of any transport: it imports
// neither net/http nor gRPC (a test checks it). The REST adapter
// (httpapi) and the worker-stream adapter call it; it calls them back
// only through Links and Publisher.
//
// The database is the truth. The core keeps no queue and no table of
// running attempts: it claims queued jobs for the workers it holds
// (store.ClaimJobs), holds their attempts under leases renewed by the
// workers' heartbeats, and rescues the attempts whose lease expired,
// whichever master held them. Every transition is a compare-and-set in
// the store, so several cores (several masters) may share one database.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// Store is what the core needs of the durable store.
type Store interface {
	CreateJob(ctx context.Context, j *store.Job, maxQueued int) error
	CreateJobs(ctx context.Context, n *store.NewJobs, maxQueued int) error
	GetBatch(ctx context.Context, id string) (*store.Batch, []*store.Job, error)
	JobByIdempotencyKey(ctx context.Context, owner, key string) (*store.Job, error)
	GetJob(ctx context.Context, id string) (*store.Job, error)
	ClaimJobs(ctx context.Context, r store.ClaimRequest) ([]store.Claim, error)
	ClaimJob(ctx context.Context, id, master string, w store.WorkerRef, at, leaseUntil time.Time) (*store.Job, error)
	RenewLeases(ctx context.Context, master string, workers []store.WorkerRef, until time.Time) (int, error)
	RescueExpired(ctx context.Context, now time.Time, reason string, limit int) ([]*store.Job, error)
	QueuedBefore(ctx context.Context, before time.Time, afterSeq int64, limit int) ([]*store.Job, error)
	RequeueAttempt(ctx context.Context, id string, attempt int, w store.WorkerRef, r store.Requeue) error
	FinishAttempt(ctx context.Context, id string, attempt int, w store.WorkerRef, f store.Finish) (*store.Job, error)
	FinishQueued(ctx context.Context, id string, f store.Finish) error
	UpsertWorkers(ctx context.Context, ws []*store.Worker) error
	ListWorkers(ctx context.Context) ([]*store.Worker, error)
}

var _ Store = store.Store(nil)

// Clock tells the time; tests use a fake one.
type Clock interface {
	Now() time.Time
}

// Links are the workers this master holds a link to (the worker-stream
// adapter). The core asks them for capacity and sends them work; they tell
// the core what their workers report by calling its methods.
type Links interface {
	// Placer returns the workers held here that take new work (up and
	// healthy), for one claim to place its jobs on: the slots it takes
	// stay held until Assign records the attempt, or until Done.
	Placer() Placer
	// Assign sends attempt j.Attempts of j to worker w. An error means the
	// link is gone: the core gives the attempt back.
	Assign(ctx context.Context, w store.WorkerRef, j *store.Job) error
	// Cancel tells worker w to stop attempt n of job id; false when w's
	// link is not held here (another master holds it, or nobody).
	Cancel(w store.WorkerRef, id string, n int, reason string) bool
}

// Placer is the workers a claim places its jobs on (store.Placer); Done
// ends the claim: the slots taken for jobs that were not assigned are
// free again.
type Placer interface {
	store.Placer
	Done()
}

// Event is a change of a job, for subscribers (SSE, ?wait, callbacks).
type Event struct {
	Job *store.Job // as stored after the change
}

// Publisher delivers events; it must not block.
type Publisher interface {
	Publish(Event)
}

// Defaults of Config.
const (
	DefaultLeaseTTL         = 5 * time.Second
	DefaultPlacementTimeout = 60 * time.Second
	DefaultMaxAttempts      = 3
	DefaultMaxQueuedPerUser = 10000
	DefaultClaimBatch       = 128
	DefaultTick             = time.Second
	// MaxReleasedAttempts bounds the attempts of one job given back unrun
	// that do not count against its attempts (issue 11): past it, a
	// release counts like a failure, so that a worker taking and giving
	// back everything cannot hold a job forever.
	MaxReleasedAttempts = 5
)

// Config configures New.
type Config struct {
	// MasterID names this master in the store (Job.Master, Worker.Master);
	// required, unique among the masters sharing the database.
	MasterID string
	Store    Store
	Links    Links
	Events   Publisher // nil: none
	Clock    Clock     // nil: the system clock
	Log      *slog.Logger
	// LeaseTTL is how long an attempt stays held after its worker's last
	// heartbeat: the worker timeout (DefaultLeaseTTL).
	LeaseTTL time.Duration
	// PlacementTimeout: a queued job no live worker of the cluster can run
	// fails after waiting this long (DefaultPlacementTimeout).
	PlacementTimeout time.Duration
	MaxAttempts      int // attempts of a job that does not say (DefaultMaxAttempts)
	MaxQueuedPerUser int // queued jobs per owner (DefaultMaxQueuedPerUser)
	ClaimBatch       int // jobs claimed per store transaction (DefaultClaimBatch)
	// Tick is Run's period: it flushes heartbeats and dispatches at least
	// this often, and sweeps every fourth tick (DefaultTick).
	Tick time.Duration
	// NewID makes job ids (nil: NewJobID).
	NewID func() string
}

// Validate checks cfg and fills in its defaults.
func (c *Config) Validate() error {
	switch {
	case c.MasterID == "":
		return errors.New("jobs: Config.MasterID is required")
	case c.Store == nil:
		return errors.New("jobs: Config.Store is required")
	case c.Links == nil:
		return errors.New("jobs: Config.Links is required")
	case c.LeaseTTL < 0 || c.PlacementTimeout < 0 || c.Tick < 0 || c.MaxAttempts < 0 || c.MaxQueuedPerUser < 0 || c.ClaimBatch < 0:
		return errors.New("jobs: Config: negative durations or counts")
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Events == nil {
		c.Events = discard{}
	}
	if c.NewID == nil {
		c.NewID = NewJobID
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.LeaseTTL, DefaultLeaseTTL)
	def(&c.PlacementTimeout, DefaultPlacementTimeout)
	def(&c.Tick, DefaultTick)
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	defInt(&c.MaxAttempts, DefaultMaxAttempts)
	defInt(&c.MaxQueuedPerUser, DefaultMaxQueuedPerUser)
	defInt(&c.ClaimBatch, DefaultClaimBatch)
	return nil
}

// Core is the job core of one master. Its methods are safe for concurrent
// use; Run drives its periodic work.
type Core struct {
	cfg   Config
	store Store
	links Links
	clock Clock
	log   *slog.Logger

	kickc chan struct{}
	// dispatchMu makes one Dispatch at a time: the offers it reads must
	// not be spent twice.
	dispatchMu sync.Mutex

	// beats are the workers heard from since the last Flush, whose leases
	// and rows it writes in one batch each.
	mu    sync.Mutex
	beats map[string]*store.Worker

	// sweepMu makes one Sweep at a time; sweepAfter is the Seq its next
	// page of waiting jobs starts after.
	sweepMu    sync.Mutex
	sweepAfter int64
}

// New returns a core; cfg is validated (and its defaults set) first.
func New(cfg Config) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Core{
		cfg: cfg, store: cfg.Store, links: cfg.Links, clock: cfg.Clock, log: cfg.Log,
		kickc: make(chan struct{}, 1),
		beats: map[string]*store.Worker{},
	}, nil
}

// Config returns the core's configuration, defaults filled in.
func (c *Core) Config() Config { return c.cfg }

// Kick asks Run for a Dispatch soon; it never blocks.
func (c *Core) Kick() {
	select {
	case c.kickc <- struct{}{}:
	default:
	}
}

// Run dispatches whenever kicked and at least every Config.Tick, flushes
// the heartbeats every tick and sweeps every fourth, until ctx ends.
func (c *Core) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Tick)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.kickc:
			c.logErr("dispatch", c.dispatch(ctx))
			continue
		case <-t.C:
		}
		c.logErr("flush", c.Flush(ctx))
		if n%4 == 0 {
			c.logErr("sweep", c.Sweep(ctx))
		}
		c.logErr("dispatch", c.dispatch(ctx))
	}
}

func (c *Core) dispatch(ctx context.Context) error {
	_, err := c.Dispatch(ctx)
	return err
}

func (c *Core) logErr(what string, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		c.log.Error(what, "err", err)
	}
}

func (c *Core) now() time.Time { return c.clock.Now().UTC() }

func (c *Core) publish(j *store.Job) {
	if j != nil {
		c.cfg.Events.Publish(Event{Job: j})
	}
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

type discard struct{}

func (discard) Publish(Event) {}

// NewJobID returns a 32-hex-digit id that sorts by creation time: 48 bits
// of milliseconds, then 80 random bits.
func NewJobID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
