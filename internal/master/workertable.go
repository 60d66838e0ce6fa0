package master

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/store"
)

// The workers table. Each master writes the rows of the workers it holds
// (store.Worker: status, load, slots, counters, the master holding the
// link), in one batch per flush, and the cluster views (GET
// /api/v1/workers, /cluster) show every row: the workers of the other
// masters sharing the database as well as its own. A master's own workers
// come from its memory, which is fresher than its last flush by at most a
// flush interval; the others' from the table, a row whose holder has not
// written it for WorkerTimeout being shown lost (its master died).

// defaultMasterID names a master in the store: its host and data
// directory, stable across restarts and different for two masters.
func defaultMasterID(dataDir string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	return host + ":" + dataDir
}

// markRow asks the next flush to write worker name's row. Called with
// m.mu held.
func (m *Master) markRow(name string) {
	m.dirtyRows[name] = struct{}{}
}

// workerRowsLoop writes the rows marked since the last flush, twice per
// heartbeat interval, and once more when ctx ends.
func (m *Master) workerRowsLoop(ctx context.Context) {
	t := time.NewTicker(max(m.cfg.HeartbeatInterval/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// The store is still open: Close runs after Run's goroutines.
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			m.flushWorkerRows(fctx)
			cancel()
			return
		case <-t.C:
		}
		m.flushWorkerRows(ctx)
	}
}

// flushWorkerRows renews the leases of the attempts its workers hold,
// writes the marked rows in one batch, and deletes those of the workers
// the master forgot.
func (m *Master) flushWorkerRows(ctx context.Context) {
	m.mu.Lock()
	var rows []*store.Worker
	var gone []string
	for name := range m.dirtyRows {
		if w := m.workers[name]; w != nil {
			rows = append(rows, m.rowOf(w))
		} else {
			gone = append(gone, name)
		}
	}
	clear(m.dirtyRows)
	m.mu.Unlock()
	m.renewLeases(ctx)
	switch err := m.store.UpsertWorkers(ctx, rows); {
	case err == nil:
		if len(rows) > 0 { // none written, nothing learnt
			m.storeAnswered()
		}
	case ctx.Err() == nil:
		m.logStoreErr("write workers table", err)
	}
	if len(gone) > 0 {
		if _, err := m.store.DeleteWorkers(ctx, gone); err != nil && ctx.Err() == nil {
			m.logStoreErr("delete forgotten workers", err)
		}
	}
}

// rowOf is w's row. Called with m.mu held.
func (m *Master) rowOf(w *workerEntry) *store.Worker {
	return &store.Worker{
		Name: w.name, Identity: w.identity, Master: m.cfg.MasterID, Address: w.address, Status: w.status,
		Languages: maps.Clone(w.sched.Languages), Labels: maps.Clone(w.labels),
		Slots: w.sched.Slots, Running: len(w.attempts),
		CPUPercent: w.sched.CPUPercent, MemoryPercent: w.sched.MemoryPercent,
		JobsDone: w.jobsDone, InfraFailures: w.infraFailures, HealthReason: w.healthReason,
		Sandbox: w.sandbox, Version: w.version,
		ConnectedAt: w.connectedAt, LastHeartbeat: w.lastBeat, LostAt: w.lostAt,
		JobsFailed: w.failures.total(), FailureRate: w.failures.rate(w.jobsDone),
		LastError: w.failures.lastError, LastErrorAt: w.failures.lastErrorAt,
	}
}

// otherWorkers lists the workers held by other masters, from the table,
// minus any this master holds itself (a worker that moved here). A
// failure to read is logged and shows none: the view degrades to this
// master's own workers rather than fail.
func (m *Master) otherWorkers(ctx context.Context, mine func(name string) bool) []api.Worker {
	rows, err := m.store.ListWorkers(ctx)
	if err != nil {
		m.logStoreErr("read workers table", err)
		return nil
	}
	now := time.Now()
	var out []api.Worker
	for _, r := range rows {
		if r.Master == m.cfg.MasterID || mine(r.Name) {
			continue
		}
		status := r.Status
		if status != api.WorkerLost && now.Sub(r.LastHeartbeat) > m.cfg.WorkerTimeout {
			status = api.WorkerLost // its master stopped writing it
		}
		if status == api.WorkerLost && now.Sub(r.LastHeartbeat) > m.cfg.ForgetLostAfter {
			continue
		}
		labels := r.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, api.Worker{
			Name: r.Name, Address: r.Address, Status: status,
			Languages: rowLanguages(r.Languages), Labels: labels,
			Slots: r.Slots, Running: r.Running, CPUPercent: r.CPUPercent, MemoryPercent: r.MemoryPercent,
			JobsDone: r.JobsDone, LastHeartbeat: r.LastHeartbeat, ConnectedAt: r.ConnectedAt,
			Sandbox: r.Sandbox, Version: r.Version, InfraFailures: r.InfraFailures, Health: r.HealthReason,
			JobsFailed: r.JobsFailed, FailureRate: r.FailureRate, LastError: r.LastError, LastErrorAt: timeOrNil(r.LastErrorAt),
		})
	}
	return out
}

// rowLanguages lists a row's languages as the API does, by name.
func rowLanguages(byName map[string][]string) []api.WorkerLanguage {
	out := []api.WorkerLanguage{}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		for _, v := range byName[name] {
			out = append(out, api.WorkerLanguage{Name: name, Version: v})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// holds reports whether this master knows worker name (connected, or lost
// here and not forgotten yet): its own view of it wins over the table's.
func (m *Master) holds(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.workers[name]
	return w != nil && (w.session != nil || w.status != api.WorkerLost)
}

// markOldRowsLost marks lost, at start, the rows this master wrote before
// it stopped for workers still shown live: their links died with the old
// process, and a worker that reconnects writes its row again. Without it
// the other masters would show them live for up to WorkerTimeout, and a
// worker that never comes back would keep a live row under this id.
func (m *Master) markOldRowsLost(ctx context.Context, now time.Time) error {
	rows, err := m.store.ListWorkers(ctx)
	if err != nil {
		return err
	}
	var lost []*store.Worker
	for _, r := range rows {
		if r.Master == m.cfg.MasterID && r.Status != api.WorkerLost {
			r.Status, r.LostAt, r.Running = api.WorkerLost, now, 0
			lost = append(lost, r)
		}
	}
	if len(lost) == 0 {
		return nil
	}
	return m.store.UpsertWorkers(ctx, lost)
}
