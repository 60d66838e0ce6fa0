package jobs_test

import (
	"cmp"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/sqlite"
)

// The harness drives the core the way Nomad's scheduler harness drives a
// scheduler: a real store on a temporary SQLite file, a fake clock that
// moves only when told, and fake worker links that record what the core
// sends. Nothing runs in the background: each test calls Dispatch, Flush
// and Sweep itself, so every step is deterministic and takes microseconds
// to milliseconds.

// fakeClock is a clock that moves only with advance.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeWorker is a worker link as the master's stream adapter keeps it.
type fakeWorker struct {
	ref       store.WorkerRef
	languages map[string][]string
	labels    map[string]string
	slots     int
	status    string // store.WorkerUp, WorkerDraining, …
	connected bool
	running   map[string]int // job → attempt, as assigned
	cancelled []string       // jobs the core told it to stop
}

// fakeLinks are the workers one master holds.
type fakeLinks struct {
	mu      sync.Mutex
	workers map[string]*fakeWorker
	// assigned counts every Assign, across all workers, by job: a job
	// sent twice is a double run.
	assigned map[string]int
}

var _ jobs.Links = (*fakeLinks)(nil)

func newLinks() *fakeLinks {
	return &fakeLinks{workers: map[string]*fakeWorker{}, assigned: map[string]int{}}
}

// Placer offers the workers' free slots as a list (the scan of
// store.OfferList is fine for a handful of workers).
func (l *fakeLinks) Placer() jobs.Placer { return offerList{store.NewOfferList(l.offers()...)} }

type offerList struct{ *store.OfferList }

func (offerList) Done() {}

func (l *fakeLinks) offers() []store.Offer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ws []*fakeWorker
	for _, w := range l.workers {
		if w.connected && w.status == store.WorkerUp && len(w.running) < w.slots {
			ws = append(ws, w)
		}
	}
	// Best first: the most free slots, then by name (deterministic).
	slices.SortFunc(ws, func(a, b *fakeWorker) int {
		return cmp.Or(cmp.Compare(len(a.running)-a.slots, len(b.running)-b.slots), cmp.Compare(a.ref.Name, b.ref.Name))
	})
	out := make([]store.Offer, len(ws))
	for i, w := range ws {
		out[i] = store.Offer{Worker: w.ref, Languages: w.languages, Labels: w.labels, Free: w.slots - len(w.running)}
	}
	return out
}

func (l *fakeLinks) Assign(_ context.Context, ref store.WorkerRef, j *store.Job) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.workers[ref.Name]
	if w == nil || !w.connected || w.ref != ref {
		return errors.New("link gone")
	}
	w.running[j.ID] = j.Attempts
	l.assigned[j.ID]++
	return nil
}

func (l *fakeLinks) Cancel(ref store.WorkerRef, id string, n int, _ string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.workers[ref.Name]
	if w == nil || !w.connected || w.ref != ref || w.running[id] != n {
		return false
	}
	delete(w.running, id)
	w.cancelled = append(w.cancelled, id)
	return true
}

// recorder keeps the events published.
type recorder struct {
	mu     sync.Mutex
	events []jobs.Event
}

func (r *recorder) Publish(e jobs.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// statuses lists the statuses published for job id, in order.
func (r *recorder) statuses(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Job.ID == id {
			out = append(out, e.Job.Status)
		}
	}
	return out
}

// harness is one master: a core, its links and events, over a store
// handle.
type harness struct {
	t      *testing.T
	path   string
	store  *sqlite.Store
	clock  *fakeClock
	links  *fakeLinks
	events *recorder
	core   *jobs.Core
}

const leaseTTL = 5 * time.Second

// newHarness starts a master "m1" on a new database.
func newHarness(t *testing.T, opts ...func(*jobs.Config)) *harness {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)}
	return startMaster(t, filepath.Join(t.TempDir(), "grappe.db"), "m1", clock, opts...)
}

// another starts a second master on the same database and clock.
func (h *harness) another(id string, opts ...func(*jobs.Config)) *harness {
	h.t.Helper()
	return startMaster(h.t, h.path, id, h.clock, opts...)
}

func startMaster(t *testing.T, path, id string, clock *fakeClock, opts ...func(*jobs.Config)) *harness {
	t.Helper()
	s, err := sqlite.New(sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := &harness{t: t, path: path, store: s, clock: clock, links: newLinks(), events: &recorder{}}
	cfg := jobs.Config{
		MasterID: id, Store: s, Links: h.links, Events: h.events, Clock: clock,
		LeaseTTL: leaseTTL, PlacementTimeout: time.Minute, MaxAttempts: 3,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if h.core, err = jobs.New(cfg); err != nil {
		t.Fatal(err)
	}
	return h
}

// submit queues a job of owner in language (python unless said).
func (h *harness) submit(owner string, mods ...func(*jobs.Submission)) *store.Job {
	h.t.Helper()
	s := jobs.Submission{Owner: owner, Language: "python", Request: []byte(`{"language":"python","source":"print(1)"}`)}
	for _, m := range mods {
		m(&s)
	}
	j, err := h.core.Submit(h.t.Context(), s)
	if err != nil {
		h.t.Fatalf("Submit: %v", err)
	}
	return j
}

// connect links a worker running python 3.11.2 and c 12.2.0 to this
// master, and sends its first heartbeat.
func (h *harness) connect(name string, slots int) *fakeWorker {
	h.t.Helper()
	h.links.mu.Lock()
	w := h.links.workers[name]
	if w == nil {
		w = &fakeWorker{
			ref:       store.WorkerRef{Name: name, Identity: "lineage-" + name},
			languages: map[string][]string{"python": {"3.11.2"}, "c": {"12.2.0"}},
			slots:     slots, status: store.WorkerUp, running: map[string]int{},
		}
		h.links.workers[name] = w
	}
	w.connected = true
	h.links.mu.Unlock()
	h.beat(name)
	return w
}

// adopt gives this master a worker that another master held (the same
// worker, reconnected here, still running what it ran).
func (h *harness) adopt(w *fakeWorker) {
	h.links.mu.Lock()
	cp := *w
	cp.running = map[string]int{}
	for id, n := range w.running {
		cp.running[id] = n
	}
	cp.connected = true
	h.links.workers[w.ref.Name] = &cp
	h.links.mu.Unlock()
}

// disconnect drops a worker's link; it sends no more heartbeats.
func (h *harness) disconnect(name string) {
	h.links.mu.Lock()
	h.links.workers[name].connected = false
	h.links.mu.Unlock()
}

// beat sends a heartbeat from each named worker (all connected ones if
// none is named) and flushes them.
func (h *harness) beat(names ...string) {
	h.t.Helper()
	h.links.mu.Lock()
	if len(names) == 0 {
		for name, w := range h.links.workers {
			if w.connected {
				names = append(names, name)
			}
		}
	}
	var rows []*store.Worker
	for _, name := range names {
		w := h.links.workers[name]
		rows = append(rows, &store.Worker{
			Name: name, Identity: w.ref.Identity, Status: w.status, Languages: w.languages, Labels: w.labels,
			Slots: w.slots, Running: len(w.running), LastHeartbeat: h.clock.Now(),
		})
	}
	h.links.mu.Unlock()
	for _, r := range rows {
		h.core.Heartbeat(r)
	}
	if err := h.core.Flush(h.t.Context()); err != nil {
		h.t.Fatalf("Flush: %v", err)
	}
}

// dispatch runs one Dispatch and returns how many jobs it started.
func (h *harness) dispatch() int {
	h.t.Helper()
	n, err := h.core.Dispatch(h.t.Context())
	if err != nil {
		h.t.Fatalf("Dispatch: %v", err)
	}
	return n
}

func (h *harness) sweep() {
	h.t.Helper()
	if err := h.core.Sweep(h.t.Context()); err != nil {
		h.t.Fatalf("Sweep: %v", err)
	}
}

// live advances the clock by d in heartbeat steps of one second, every
// connected worker beating at each.
func (h *harness) live(d time.Duration) {
	h.t.Helper()
	for range int(d / time.Second) {
		h.clock.advance(time.Second)
		h.beat()
		h.sweep()
	}
}

// finish reports attempt n of job id done by worker w, as w's stream
// would, and frees its slot.
func (h *harness) finish(w *fakeWorker, id string, n int) (*store.Job, error) {
	h.links.mu.Lock()
	delete(h.links.workers[w.ref.Name].running, id)
	h.links.mu.Unlock()
	return h.core.Finish(h.t.Context(), w.ref, id, n, jobs.Outcome{
		Status: store.StatusDone, Verdict: "ok", Version: "3.11.2", Result: []byte(`{"run":{"stdout":"1\n"}}`),
	})
}

func (h *harness) job(id string) *store.Job {
	h.t.Helper()
	j, err := h.store.GetJob(h.t.Context(), id)
	if err != nil {
		h.t.Fatalf("GetJob(%s): %v", id, err)
	}
	return j
}

// want checks a job's status, attempts and worker.
func (h *harness) want(id, status string, attempts int, worker string) *store.Job {
	h.t.Helper()
	j := h.job(id)
	if j.Status != status || j.Attempts != attempts || j.Worker != worker {
		h.t.Errorf("job %s: %s attempt %d on %q (error %q); want %s attempt %d on %q",
			id, j.Status, j.Attempts, j.Worker, j.Error, status, attempts, worker)
	}
	return j
}

// runningOn lists the jobs a fake worker was assigned and still runs.
func runningOn(w *fakeWorker) []string {
	var out []string
	for id := range w.running {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func withOwner(owner string) func(*jobs.Submission) {
	return func(s *jobs.Submission) { s.Owner = owner }
}

func withLanguage(lang string) func(*jobs.Submission) {
	return func(s *jobs.Submission) { s.Language = lang }
}

func withMaxAttempts(n int) func(*jobs.Submission) {
	return func(s *jobs.Submission) { s.MaxAttempts = n }
}
