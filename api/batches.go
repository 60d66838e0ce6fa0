package api

import "time"

// BatchRequest is the body of POST /api/v1/batches: jobs accepted all or
// none (a refusal names the index of the first bad job, "jobs[3]: …").
type BatchRequest struct {
	Jobs []JobRequest `json:"jobs"`
	// CallbackURL, if set, receives the batch (POST, signed) once every
	// job of it is finished. Each job may have its own too.
	CallbackURL string `json:"callback_url,omitempty"`
}

// Batch states.
const (
	BatchRunning = "running" // some job is queued or running
	BatchDone    = "done"    // every job is finished, whatever its outcome
)

// Batch is a batch as POST and GET /api/v1/batches[/{id}] answer it.
type Batch struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// JobIDs are the batch's jobs in the order of the request.
	JobIDs   []string    `json:"job_ids"`
	Jobs     []BatchJob  `json:"jobs"`
	Totals   BatchTotals `json:"totals"`
	Callback *Callback   `json:"callback,omitempty"`
}

// BatchJob is one job of a batch, in short.
type BatchJob struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Verdict    string     `json:"verdict,omitempty"`
	Error      string     `json:"error,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// BatchTotals count a batch's jobs by status and, of the done ones, by
// verdict. Every status is present, zeros included.
type BatchTotals struct {
	Jobs      int            `json:"jobs"`
	ByStatus  map[string]int `json:"by_status"`
	ByVerdict map[string]int `json:"by_verdict"`
}

// Callback states.
const (
	CallbackPending   = "pending"   // not yet due, or being retried
	CallbackDelivered = "delivered" // the receiver answered 2xx
	CallbackFailed    = "failed"    // given up after the retries
)

// Callback is the delivery of a job's or a batch's callback_url. The
// master POSTs the finished job (or batch) JSON there with the header
// Grappe-Signature: t=UNIX,v1=HEX, HEX being the hex HMAC-SHA256 of
// "UNIX." + body keyed with the owner's callback secret
// (client.VerifyCallback checks it).
type Callback struct {
	URL           string     `json:"url"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
	// LastStatus is the receiver's HTTP status at the last attempt (0:
	// no answer, see LastError).
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
}

// CallbackSecret is the body of GET /api/v1/callback-secret and of POST
// /api/v1/callback-secret/rotate: the key of the caller's callback
// signatures.
type CallbackSecret struct {
	Secret string `json:"secret"`
}
