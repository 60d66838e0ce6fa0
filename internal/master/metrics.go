package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
)

// metrics are the master's Prometheus series. They live in a registry of
// their own (no global default registry), so several masters can run in
// one test process.
//
// Events (a job submitted, started, finished) are counted as they happen;
// state (queue depth, workers and their load) is read from the master at
// scrape time by clusterCollector, so a heartbeat costs no metric update
// and a forgotten worker's series disappear with it.
type metrics struct {
	registry        *prometheus.Registry
	jobsSubmitted   *prometheus.CounterVec
	attemptsStarted *prometheus.CounterVec
	jobsFinished    *prometheus.CounterVec
	queueWait       *prometheus.HistogramVec
	runTime         *prometheus.HistogramVec
	refusedSubmits  *prometheus.CounterVec
}

// Buckets span what a judge sees (a few milliseconds) to what a batch
// cluster sees (minutes in the queue, long runs); the default buckets stop
// at 10s, below a busy queue's waits.
var (
	queueWaitBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	runTimeBuckets   = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
)

func newMetrics(m *Master) *metrics {
	reg := prometheus.NewRegistry()
	mt := &metrics{
		registry: reg,
		jobsSubmitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grappe_jobs_submitted_total", Help: "Jobs accepted, by language.",
		}, []string{"language"}),
		attemptsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grappe_attempts_started_total", Help: "Job attempts placed on a worker, by language.",
		}, []string{"language"}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grappe_jobs_finished_total", Help: "Jobs that reached a terminal status, by language, status and verdict.",
		}, []string{"language", "status", "verdict"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grappe_job_queue_wait_seconds",
			Help:    "Time from a job's (re)queueing to its placement on a worker, by language.",
			Buckets: queueWaitBuckets,
		}, []string{"language"}),
		runTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grappe_job_run_seconds",
			Help:    "Wall time of a job's program as its worker measured it (all test cases together; compilation excluded), by language.",
			Buckets: runTimeBuckets,
		}, []string{"language"}),
		refusedSubmits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grappe_submissions_refused_total",
			Help: "Submissions refused because the master was behind, by reason (dispatch_lag, queue_depth).",
		}, []string{"reason"}),
	}
	reg.MustRegister(mt.jobsSubmitted, mt.attemptsStarted, mt.jobsFinished, mt.queueWait, mt.runTime, mt.refusedSubmits,
		newClusterCollector(m), newAutoscaleCollector(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return mt
}

func (mt *metrics) handler() http.Handler {
	return promhttp.HandlerFor(mt.registry, promhttp.HandlerOpts{})
}

func (mt *metrics) submitted(lang string) { mt.jobsSubmitted.WithLabelValues(lang).Inc() }

func (mt *metrics) refused(reason string) { mt.refusedSubmits.WithLabelValues(reason).Inc() }

func (mt *metrics) started(lang string, wait time.Duration) {
	mt.attemptsStarted.WithLabelValues(lang).Inc()
	mt.queueWait.WithLabelValues(lang).Observe(wait.Seconds())
}

func (mt *metrics) finished(lang, status, verdict string) {
	mt.jobsFinished.WithLabelValues(lang, status, verdict).Inc()
}

func (mt *metrics) ran(lang string, wall time.Duration) {
	mt.runTime.WithLabelValues(lang).Observe(wall.Seconds())
}

// clusterCollector reports the master's live state when Prometheus
// scrapes: one short hold of m.mu per scrape, instead of gauge updates on
// every heartbeat and placement.
type clusterCollector struct {
	m *Master

	queueDepth, jobsRunning, workers                    *prometheus.Desc
	workerInfo, cpu, memory, slots, slotsUsed, jobsDone *prometheus.Desc
	lastHeartbeat, infraFailures                        *prometheus.Desc
}

func newClusterCollector(m *Master) *clusterCollector {
	perWorker := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"worker"}, extra...), nil)
	}
	return &clusterCollector{
		m:           m,
		queueDepth:  prometheus.NewDesc("grappe_queue_depth", "Jobs waiting for a worker.", nil, nil),
		jobsRunning: prometheus.NewDesc("grappe_jobs_running", "Jobs placed on a worker and not finished.", nil, nil),
		workers:     prometheus.NewDesc("grappe_workers", "Workers the master knows, by status (up, draining, unhealthy, lost).", []string{"status"}, nil),
		workerInfo: perWorker("grappe_worker_info",
			"Always 1; the worker's status, sandbox kind and grappe version as labels.", "status", "sandbox", "version"),
		cpu:    perWorker("grappe_worker_cpu_percent", "CPU use of the worker's machine, as last reported (0-100)."),
		memory: perWorker("grappe_worker_memory_percent", "Memory use of the worker's machine, as last reported (0-100)."),
		slots:  perWorker("grappe_worker_slots", "Jobs the worker runs at once (--max-jobs)."),
		slotsUsed: perWorker("grappe_worker_slots_used",
			"Jobs running on the worker now."),
		// A counter, not a gauge: it only grows while the master knows the
		// worker, so rate() gives each worker's throughput.
		jobsDone: perWorker("grappe_worker_jobs_done_total",
			"Results the worker delivered since this master process started."),
		lastHeartbeat: perWorker("grappe_worker_last_heartbeat_timestamp_seconds",
			"Unix time of the worker's last heartbeat."),
		// As the worker counts it: it restarts from 0 with the worker,
		// which rate() takes as a counter reset.
		infraFailures: perWorker("grappe_worker_infra_failures_total",
			"Attempts the worker gave back because its own machinery (sandbox, cgroups) failed, since it started."),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queueDepth, c.jobsRunning, c.workers, c.workerInfo,
		c.cpu, c.memory, c.slots, c.slotsUsed, c.jobsDone, c.lastHeartbeat, c.infraFailures} {
		ch <- d
	}
}

// workerRow is what Collect copies out of a workerEntry under the lock.
type workerRow struct {
	name, status, sandbox, version string
	cpu, memory                    float64
	slots, used                    int
	done, infraFailures            int64
	lastBeat                       time.Time
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	// The workers other masters hold, from the workers table: the
	// metrics of one master describe the whole cluster's workers.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	others := m.otherWorkers(ctx, m.holds)
	elsewhere := make(map[string]bool, len(others))
	rows := make([]workerRow, 0, len(others))
	for _, w := range others {
		elsewhere[w.Name] = true
		rows = append(rows, workerRow{
			name: w.Name, status: w.Status, sandbox: w.Sandbox, version: w.Version,
			cpu: w.CPUPercent, memory: w.MemoryPercent, slots: w.Slots, used: w.Running,
			done: w.JobsDone, lastBeat: w.LastHeartbeat, infraFailures: w.InfraFailures,
		})
	}
	// The whole cluster's, from the store; on a failure to read, the
	// gauges are left out rather than reported as 0.
	queued, running, countErr := m.store.CountActive(ctx)
	m.mu.Lock()
	for _, w := range m.workers {
		if elsewhere[w.name] {
			continue // lost here, held by another master now
		}
		rows = append(rows, workerRow{
			name: w.name, status: w.status, sandbox: w.sandbox, version: w.version,
			cpu: w.sched.CPUPercent, memory: w.sched.MemoryPercent,
			slots: w.sched.Slots, used: len(w.attempts), done: w.jobsDone, lastBeat: w.lastBeat,
			infraFailures: w.infraFailures,
		})
	}
	m.mu.Unlock()

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if countErr == nil {
		gauge(c.queueDepth, float64(queued))
		gauge(c.jobsRunning, float64(running))
	}
	// Every status is always present, so "no lost workers" is a 0 that
	// alerts can compare, not a missing series.
	byStatus := map[string]int{api.WorkerUp: 0, api.WorkerDraining: 0, api.WorkerUnhealthy: 0, api.WorkerLost: 0}
	for _, r := range rows {
		byStatus[r.status]++
	}
	for s, n := range byStatus {
		gauge(c.workers, float64(n), s)
	}
	for _, r := range rows {
		gauge(c.workerInfo, 1, r.name, r.status, r.sandbox, r.version)
		gauge(c.cpu, r.cpu, r.name)
		gauge(c.memory, r.memory, r.name)
		gauge(c.slots, float64(r.slots), r.name)
		gauge(c.slotsUsed, float64(r.used), r.name)
		ch <- prometheus.MustNewConstMetric(c.jobsDone, prometheus.CounterValue, float64(r.done), r.name)
		ch <- prometheus.MustNewConstMetric(c.infraFailures, prometheus.CounterValue, float64(r.infraFailures), r.name)
		if !r.lastBeat.IsZero() {
			gauge(c.lastHeartbeat, float64(r.lastBeat.UnixNano())/1e9, r.name)
		}
	}
}

// loadMetricsToken reads the scrape token, creating it (mode 0600) on
// first start.
func loadMetricsToken(path string) (string, error) {
	tok, err := auth.ReadSecretFile(path)
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("master: metrics token: %w", err)
	}
	if tok, err = auth.NewToken(); err != nil {
		return "", fmt.Errorf("master: metrics token: %w", err)
	}
	if err := auth.WriteSecretFile(path, tok); err != nil {
		return "", fmt.Errorf("master: metrics token: %w", err)
	}
	return tok, nil
}

// listenMetrics binds Config.MetricsListen, if set: /metrics and /healthz
// over plain HTTP, no token, as Prometheus scrapes by default.
func (m *Master) listenMetrics() error {
	if m.cfg.MetricsListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("master: metrics listen %s: %w", m.cfg.MetricsListen, err)
	}
	m.metricsLn = m.limitConns(ln, "metrics")
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	if m.cfg.Pprof {
		// The Go runtime's profiles, for the operator's own tools (go tool
		// pprof http://ADDR/debug/pprof/profile): opt-in, since a CPU
		// profile costs the master while it runs.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	m.metricsSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	if host, _, err := net.SplitHostPort(m.cfg.MetricsListen); err == nil {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			m.log.Warn("metrics served WITHOUT a token on a non-loopback address: keep it to the monitoring network", "metrics_listen", ln.Addr().String())
		}
	}
	return nil
}

// MetricsAddr is where Config.MetricsListen serves, or "" without it.
func (m *Master) MetricsAddr() string {
	if m.metricsLn == nil {
		return ""
	}
	return m.metricsLn.Addr().String()
}
