package master

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the master's Prometheus series. They live in a registry of
// their own (no global default registry), so several masters can run in
// one test process.
type metrics struct {
	registry        *prometheus.Registry
	jobsSubmitted   *prometheus.CounterVec
	attemptsStarted *prometheus.CounterVec
	jobsFinished    *prometheus.CounterVec
}

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
	}
	reg.MustRegister(mt.jobsSubmitted, mt.attemptsStarted, mt.jobsFinished,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "grappe_queue_depth", Help: "Jobs waiting for a worker."},
			func() float64 { m.mu.Lock(); defer m.mu.Unlock(); return float64(m.queue.Len()) }),
	)
	return mt
}

func (mt *metrics) handler() http.Handler {
	return promhttp.HandlerFor(mt.registry, promhttp.HandlerOpts{})
}

func (mt *metrics) submitted(lang string) { mt.jobsSubmitted.WithLabelValues(lang).Inc() }
func (mt *metrics) started(lang string)   { mt.attemptsStarted.WithLabelValues(lang).Inc() }
func (mt *metrics) finished(lang, status, verdict string) {
	mt.jobsFinished.WithLabelValues(lang, status, verdict).Inc()
}
