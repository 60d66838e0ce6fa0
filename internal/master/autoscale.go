package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/autoscale"
	"github.com/grappe/grappe/internal/store"
)

// AutoscaleConfig lets the master start and stop workers with the load
// (internal/autoscale). Provisioner empty turns it off.
type AutoscaleConfig struct {
	// Provisioner is "local" (grappe worker processes on this machine) or
	// "exec" (the operator's StartCmd and StopCmd).
	Provisioner string
	Policy      autoscale.Policy
	// WorkerBinary (local) is the grappe binary to run; default the
	// running one.
	WorkerBinary string
	// WorkerArgs (local) are extra arguments of `grappe worker`.
	WorkerArgs []string
	// StartCmd and StopCmd (exec): see autoscale.ExecConfig.
	StartCmd, StopCmd string
	// MasterAddr is the cluster address started workers dial. Default the
	// cluster listener's, an unspecified host (":7701") replaced by
	// 127.0.0.1 for local workers and by this machine's name for exec.
	MasterAddr string
	// Interval between two rounds of the policy (default 1s).
	Interval time.Duration
	// StopTimeout (local) is how long a stopped worker may drain before
	// it is killed (default 45s).
	StopTimeout time.Duration
	// ShutdownTimeout bounds stopping the started workers when the master
	// stops (default 30s).
	ShutdownTimeout time.Duration
}

// setupAutoscaler creates the autoscaler once the cluster address is
// known. Called by New.
func (m *Master) setupAutoscaler() error {
	ac := m.cfg.Autoscale
	if ac.Provisioner == "" {
		return nil
	}
	addr := ac.MasterAddr
	if addr == "" {
		addr = dialableAddr(m.ClusterAddr(), ac.Provisioner == "local")
	}
	dir := filepath.Join(m.cfg.DataDir, "autoscale")
	slots := max(ac.Policy.SlotsPerWorker, 1)
	var prov autoscale.Provisioner
	var err error
	switch ac.Provisioner {
	case "local":
		prov, err = autoscale.NewLocal(autoscale.LocalConfig{
			Binary: ac.WorkerBinary, Dir: dir, MasterAddr: addr, JoinTokenFile: m.joinTokenPath(),
			Slots: slots, Args: ac.WorkerArgs, StopTimeout: ac.StopTimeout, Logger: m.log,
		})
	case "exec":
		prov, err = autoscale.NewExec(autoscale.ExecConfig{
			StartCmd: ac.StartCmd, StopCmd: ac.StopCmd, MasterAddr: addr, JoinTokenFile: m.joinTokenPath(),
			Slots: slots, Dir: dir, Logger: m.log,
		})
	default:
		return fmt.Errorf("master: autoscale: unknown provisioner %q (local or exec)", ac.Provisioner)
	}
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	m.autoscaler, err = autoscale.New(autoscale.Config{
		Policy: ac.Policy, Provisioner: prov, Cluster: autoscaleCluster{m},
		Interval: ac.Interval, ShutdownTimeout: ac.ShutdownTimeout, Logger: m.log,
		State: autoscaleState{m}, Leader: autoscaleLeader{m},
	})
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	return nil
}

// dialableAddr turns a listener's address into one a worker can dial.
func dialableAddr(addr string, local bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if !local {
			if hn, err := os.Hostname(); err == nil {
				host = hn
			}
		}
	}
	return net.JoinHostPort(host, port)
}

// Autoscaler is GET /api/v1/autoscaler.
func (m *Master) Autoscaler(ctx context.Context) *api.Autoscaler {
	if m.autoscaler == nil {
		return &api.Autoscaler{Workers: []api.AutoscaledWorker{}, Decisions: []api.AutoscaleDecision{}}
	}
	return m.autoscaler.Status()
}

// annotateOrigins marks the workers the autoscaler started. Called
// without m.mu: the autoscaler takes its own lock.
func (m *Master) annotateOrigins(ws []api.Worker) {
	if m.autoscaler == nil {
		return
	}
	origins := m.autoscaler.Origins()
	for i := range ws {
		if o, ok := origins[ws[i].Name]; ok {
			ws[i].StartedBy = &o
		}
	}
}

// autoscaleCluster is the master as the autoscaler sees it.
type autoscaleCluster struct{ m *Master }

var _ autoscale.Cluster = autoscaleCluster{}

// snapshotQueued bounds the queued jobs the autoscaler sees per
// decision: the oldest, which are the ones it must start workers for.
const snapshotQueued = 512

// Snapshot reads the queue and the other masters' workers from the store
// (the whole cluster's) and copies this master's workers under one hold
// of m.mu. The language and label maps
// are shared: the master replaces them, never changes them in place.
func (c autoscaleCluster) Snapshot() ([]autoscale.QueuedJob, []autoscale.WorkerState) {
	m := c.m
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waiting, err := m.store.QueuedBefore(ctx, time.Now().Add(time.Second).UTC(), 0, snapshotQueued)
	if err != nil {
		m.logStoreErr("autoscaler: read the queue", err)
	}
	queue := make([]autoscale.QueuedJob, 0, len(waiting))
	for _, j := range waiting {
		queue = append(queue, autoscale.QueuedJob{Language: j.Language, Version: j.Version, Labels: j.Labels, Since: j.QueuedAt})
	}
	var workers []autoscale.WorkerState
	// The other masters' workers, from the table: after a takeover the
	// workers this autoscaler remembers may be linked to any master.
	for _, w := range m.otherWorkers(ctx, m.holds) {
		langs := map[string][]string{}
		for _, l := range w.Languages {
			langs[l.Name] = append(langs[l.Name], l.Version)
		}
		workers = append(workers, autoscale.WorkerState{
			Name: w.Name, Connected: w.Status != api.WorkerLost, Status: w.Status,
			AdminDrain: w.Status == api.WorkerDraining, Slots: w.Slots, Running: w.Running,
			Languages: langs, Labels: w.Labels,
		})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.workers {
		workers = append(workers, autoscale.WorkerState{
			Name: w.name, Connected: w.session != nil && w.status != api.WorkerLost, Status: w.status,
			AdminDrain: w.adminDrain, Slots: w.sched.Slots, Running: len(w.attempts),
			Languages: w.sched.Languages, Labels: w.labels, Testing: w.sched.Testing,
		})
	}
	return queue, workers
}

func (c autoscaleCluster) Drain(ctx context.Context, name string, drain bool) error {
	_, err := c.m.Drain(ctx, name, drain)
	return err
}

// Forget drops a stopped worker from the list at once instead of keeping
// it listed as lost for ForgetLostAfter. One still connected, or still
// holding attempts (the sweep must re-queue those), is kept. A forgotten
// worker's identity is revoked: the autoscaler may reuse the name for a
// new machine, which joins with the join token, and a live identity would
// keep it out (nobody can take over a live name).
func (c autoscaleCluster) Forget(name string) bool {
	m := c.m
	m.mu.Lock()
	w := m.workers[name]
	if w != nil && (w.session != nil || len(w.attempts) > 0) {
		m.mu.Unlock()
		return false
	}
	delete(m.workers, name)
	m.mu.Unlock()
	err := m.store.RevokeWorkerIdentity(context.Background(), name, time.Now().UTC())
	switch {
	case err == nil:
		m.audit.Info("worker identity revoked", "worker", name, "by", "autoscaler")
	case !errors.Is(err, store.ErrNotFound):
		m.log.Warn("revoke the identity of a stopped worker", "worker", name, "err", err)
	}
	return true
}

// autoscaleCollector reports the autoscaler's desired and actual workers
// at scrape time; nothing when autoscaling is off.
type autoscaleCollector struct {
	m               *Master
	desired, actual *prometheus.Desc
}

func newAutoscaleCollector(m *Master) *autoscaleCollector {
	return &autoscaleCollector{
		m: m,
		desired: prometheus.NewDesc("grappe_autoscaler_desired_workers",
			"Workers the autoscaler wants started (within its minimum and maximum).", nil, nil),
		actual: prometheus.NewDesc("grappe_autoscaler_actual_workers",
			"Workers the autoscaler started that are connected and taking jobs.", nil, nil),
	}
}

func (c *autoscaleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desired
	ch <- c.actual
}

func (c *autoscaleCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m.autoscaler == nil {
		return
	}
	d, a := c.m.autoscaler.Counts()
	ch <- prometheus.MustNewConstMetric(c.desired, prometheus.GaugeValue, float64(d))
	ch <- prometheus.MustNewConstMetric(c.actual, prometheus.GaugeValue, float64(a))
}
