package store

import "time"

// Worker statuses as stored; they equal the API's.
const (
	WorkerUp        = "up"
	WorkerDraining  = "draining"
	WorkerUnhealthy = "unhealthy"
	WorkerLost      = "lost"
)

// Worker is one row of the workers table: what the master holding a
// worker's link last knew of it. Every master writes the workers it holds
// (UpsertWorkers, in batches) and reads them all (ListWorkers), so the
// cluster's views (GET /api/v1/workers, /cluster, the dashboard, the
// metrics) describe every worker, not one master's.
type Worker struct {
	Name     string
	Identity string // lineage of the identity of its current connection
	// Master is the id of the master holding its link.
	Master  string
	Address string
	Status  string // WorkerUp, WorkerDraining, WorkerUnhealthy or WorkerLost
	// Languages maps a language name to the versions the worker runs.
	Languages     map[string][]string
	Labels        map[string]string
	Slots         int
	Running       int
	CPUPercent    float64
	MemoryPercent float64
	JobsDone      int64
	InfraFailures int64
	HealthReason  string
	// The jobs that failed there as its master saw them (api.Worker's
	// jobs_failed, failure_rate, last_error and last_error_at).
	JobsFailed  int64
	FailureRate float64
	LastError   string
	LastErrorAt time.Time
	Sandbox     string
	Version     string
	ConnectedAt time.Time
	// LastHeartbeat is when the holding master received its last
	// heartbeat, by that master's clock.
	LastHeartbeat time.Time
	LostAt        time.Time // zero unless lost
	// AdminDrain is an admin's drain (or the master's, for a worker that
	// gives back too much), asked through any master: SetWorkerDrain
	// writes it, the master holding the link applies it. UpsertWorkers
	// leaves it as it is.
	AdminDrain bool
}
