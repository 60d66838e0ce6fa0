package store

import "time"

// Batches and callbacks. A batch is jobs submitted together, all or none;
// a callback is a row of the outbox: what to send where once its job (or
// every job of its batch) is finished. The outbox row is written in the
// transaction that creates the jobs, so a job accepted with a callback
// is never finished without one to deliver, whatever restarts between.
// Delivery is claimed under a lease (ClaimCallbacks), as attempts are, so
// that of several masters on one database one delivers at a time.

// Callback kinds: what Callback.Target names.
const (
	CallbackJob   = "job"
	CallbackBatch = "batch"
)

// Batch is jobs submitted in one request.
type Batch struct {
	ID        string
	Owner     string
	CreatedAt time.Time
	// JobIDs are the batch's jobs in the order they were submitted.
	JobIDs []string
}

// Callback is one delivery of the outbox. The store never parses its
// fields: the master renders the body (Format) when it delivers.
type Callback struct {
	Kind   string // CallbackJob or CallbackBatch
	Target string // the job's or the batch's id
	Owner  string // whose secret signs it
	URL    string
	// Format says how the master renders and sends the body (the
	// callback package's formats); "" is grappe's own.
	Format    string
	CreatedAt time.Time

	// Set by the store as attempts are recorded.
	Attempts    int
	FirstAt     time.Time // the first attempt; retries are bounded from it
	NextAt      time.Time // no attempt before this
	LastAt      time.Time
	LastStatus  int // the receiver's HTTP status, 0 if none came
	LastError   string
	DeliveredAt time.Time // zero until a 2xx answer
	FailedAt    time.Time // zero unless delivery was given up

	// The lease of the master delivering it (ClaimCallbacks).
	Master     string
	LeaseUntil time.Time
}

// Pending reports whether the callback is still to be delivered.
func (c *Callback) Pending() bool { return c.DeliveredAt.IsZero() && c.FailedAt.IsZero() }

// NewJobs is what CreateJobs writes in one transaction.
type NewJobs struct {
	Jobs []*Job
	// Batch, if set, records the jobs as one batch (its JobIDs are
	// those of Jobs, in order; the store sets them).
	Batch     *Batch
	Callbacks []*Callback
}

// CallbackAttempt is the outcome of one delivery, for RecordCallback.
type CallbackAttempt struct {
	At        time.Time
	Status    int    // the receiver's HTTP status, 0 if none
	Error     string // why it failed, "" when delivered
	Delivered bool
	// Retry is when to try again; zero (and not Delivered) gives up.
	Retry time.Time
}

// JobIDs returns the ids of jobs, in order.
func JobIDs(jobs []*Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}
