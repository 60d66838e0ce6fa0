// Package store defines grappe's durable state: jobs, their attempts and
// results, users and API tokens. Implementations live in sub-packages
// (sqlite today, postgres later) and must pass the storetest conformance
// suite, which is the real specification of the semantics below.
//
// Every state transition is a compare-and-set on (job id, status, attempt),
// and those of a running attempt also on the worker that holds it (its name
// and the lineage of its identity, see WorkerRef): that is what makes a
// result recorded exactly once per job, whatever a worker sends twice or
// late, and only from the worker the attempt was given to.
//
// Times are stored to at least the microsecond and come back in UTC; the
// zero time.Time means "unset" and comes back zero. Callers stamp the
// times: the store records what it is given.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// NewStatus is the status a new job is stored with (CreateJob): queued,
// Status empty or not; any other is an error, which would let a job skip
// the transitions that make a result exactly-once.
func (j *Job) NewStatus() (string, error) {
	switch {
	case j.ID == "":
		return "", errors.New("empty id")
	case j.Status == "" || j.Status == StatusQueued:
		return StatusQueued, nil
	}
	return "", fmt.Errorf("%q: status %q, a new job must be queued", j.ID, j.Status)
}

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no such job, user or token.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the record is not in the state the transition expects
	// (already finished, another attempt, already exists).
	ErrConflict = errors.New("store: conflict")
	// ErrQuota: CreateJob refused a job because its owner already has
	// the maximum number of queued jobs.
	ErrQuota = errors.New("store: queued-job quota reached")
	// ErrUnavailable: the database cannot be reached now (down,
	// restarting, out of connections). Nothing was written; the caller
	// may try again later. Only a networked backend returns it.
	ErrUnavailable = errors.New("store: the database is unavailable")
)

// Job statuses as stored; they equal the API's.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusDone      = "done"
	StatusCancelled = "cancelled"
	StatusFailed    = "failed"
)

// Job is one job row. Request and Result are opaque JSON documents owned by
// the master (the submission and the outcome); the store never parses them.
type Job struct {
	// Seq is the store's creation order, assigned by CreateJob: a later
	// job has a greater Seq. It is read-only.
	Seq         int64
	ID          string
	Owner       string
	Language    string
	Version     string // requested version constraint until it runs, then the toolchain version
	Status      string
	Verdict     string
	Error       string
	Attempts    int // attempts started so far; the running attempt's number
	MaxAttempts int
	Worker      string // worker of the current or last attempt
	// WorkerIdentity is the lineage id (WorkerIdentity.ID) of the
	// identity Worker ran the current or last attempt under.
	WorkerIdentity string
	// Released counts the attempts given back by their worker without
	// being run (a worker shutting down): they do not count against
	// MaxAttempts. The attempts that count are Attempts - Released.
	Released   int
	Priority   int
	Labels     map[string]string
	CreatedAt  time.Time
	StartedAt  time.Time // zero until the first attempt starts
	FinishedAt time.Time // zero until terminal
	Request    []byte
	Result     []byte
	// IdempotencyKey, when set, is unique among the owner's jobs: a
	// submission retried with the same key finds the job instead of
	// creating a second one.
	IdempotencyKey string
	// Master is the id of the master holding the link to the worker of
	// the running attempt (ClaimJobs, RenewLeases); empty for an attempt
	// started by StartAttempt. It stays after the attempt ends, like
	// Worker.
	Master string
	// LeaseUntil is when the running attempt's lease expires, if it has
	// one (ClaimJobs, RenewLeases): past it RescueExpired gives the
	// attempt back. Zero: no lease, the attempt never expires by itself.
	LeaseUntil time.Time
	// QueuedAt is when the job last entered the queue: its creation, or
	// the requeue or rescue of its last attempt. Its placement timeout
	// counts from then. Set by the store.
	QueuedAt time.Time
}

// Finish is the terminal outcome written by FinishAttempt and FinishQueued.
type Finish struct {
	Status  string // done, failed or cancelled
	Verdict string
	Error   string
	Version string // toolchain version, if known
	Result  []byte
	At      time.Time
}

// WorkerRef names the worker an attempt was given to: its name and the
// lineage id of the identity (certificate) it held the attempt under. A
// worker that renews its certificate keeps its lineage; one that joins
// again after a revocation has a new one, and with it none of the old
// identity's attempts. Both fields are required.
type WorkerRef struct {
	Name     string
	Identity string
}

// Requeue is how RequeueAttempt puts an attempt back in the queue.
type Requeue struct {
	Reason string // recorded in Job.Error
	// Released marks an attempt its worker gave back unrun (it was
	// shutting down): Job.Released is incremented, so the attempt does not
	// count against MaxAttempts.
	Released bool
	// At is when the job goes back to the queue (Job.QueuedAt).
	At time.Time
}

// ListFilter selects jobs for ListJobs. Zero fields do not filter.
type ListFilter struct {
	Owner  string
	Status string
	Limit  int // default 100, at most 1000
	// Before returns only jobs created strictly before this job id's
	// creation (cursor paging, newest first: pass the last id of a page to
	// get the next). An unknown id is ErrNotFound.
	Before string
	// Offset skips that many jobs of the selection first (page numbers,
	// for APIs that page so: Judge0's). Negative is 0.
	Offset int
	// Language and Verdict keep the jobs of that catalogue name and
	// verdict.
	Language string
	Verdict  string
	// Since and Until keep the jobs created in [Since, Until); a zero
	// time does not bound.
	Since, Until time.Time
	// Search keeps the jobs whose id, or stored submission (source,
	// stdin, arguments as JSON text), contains it, byte for byte.
	Search string
}

// Tally is the counts of a statistics page (Store.TallyJobs).
type Tally struct {
	// Kinds counts the jobs by language, status and verdict.
	Kinds []KindCount
	// Days counts the jobs created each UTC day, by its midnight; a day
	// without jobs is absent.
	Days map[time.Time]int
	// Bytes is the size of the database, 0 when the store cannot tell.
	Bytes int64
}

// KindCount is how many jobs have one language, status and verdict.
type KindCount struct {
	Language, Status, Verdict string
	N                         int
}

// Share is a read-only link to one job, made by its owner: whoever holds
// the link's secret may read the job, nothing else. Only the secret's hash
// is stored, so a copy of the database gives no working link.
type Share struct {
	JobID     string
	Hash      string // hex SHA-256 of the secret
	CreatedBy string
	CreatedAt time.Time
}

// User is an account.
type User struct {
	Name         string
	Role         string // "user" or "admin"
	PasswordHash string // argon2id encoded hash; empty for token-only users
	CreatedAt    time.Time
}

// Token kinds.
const (
	// TokenAPI is a token made on purpose (grappe token create, the
	// admin-token file): valid until revoked or until its ExpiresAt.
	TokenAPI = "api"
	// TokenLogin is a token a password login made (grappe login, the web
	// UI): it expires, and a password change revokes it.
	TokenLogin = "login"
)

// Token is an API token; only its hash is stored.
type Token struct {
	ID        string
	Hash      string // hex SHA-256 of the secret
	User      string
	Name      string
	Kind      string // TokenAPI or TokenLogin; empty is taken as TokenAPI
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never expires
	// Parent is the id of the API token a login token was exchanged
	// for (a web session opened with a token), empty otherwise:
	// DeleteToken of the parent deletes it too.
	Parent string
}

// Expired reports whether the token is past its expiry at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// Store is what the master needs from durable storage. All methods are safe
// for concurrent use. A method returns only after its write is committed.
type Store interface {
	// CreateJob inserts a queued job: j.Status must be StatusQueued or
	// empty (taken as queued); the other fields are stored as given.
	// ErrConflict if the id exists (or the owner's idempotency key). On
	// success it sets the store's own fields of j (Seq, QueuedAt).
	// With maxQueued > 0 it is also the owner's queued-job quota,
	// checked and taken in the same write: ErrQuota if the owner already
	// has maxQueued queued jobs, however many masters submit at once.
	CreateJob(ctx context.Context, j *Job, maxQueued int) error
	// QueuedByOwner returns how many queued jobs owner has (0 for an
	// unknown owner); it is the count CreateJob's quota checks.
	QueuedByOwner(ctx context.Context, owner string) (int, error)
	// JobByIdempotencyKey returns the owner's job created with key, or
	// ErrNotFound.
	JobByIdempotencyKey(ctx context.Context, owner, key string) (*Job, error)
	// GetJob returns one job or ErrNotFound.
	GetJob(ctx context.Context, id string) (*Job, error)
	// ListJobs returns jobs newest first (in creation order, not by
	// CreatedAt), whole, Request and Result included.
	ListJobs(ctx context.Context, f ListFilter) ([]*Job, error)
	// Unfinished returns every queued or running job, oldest first: the
	// master rebuilds its queue from it on start.
	Unfinished(ctx context.Context) ([]*Job, error)
	// QueuedBefore returns at most limit queued jobs whose QueuedAt is
	// before before and whose Seq is after afterSeq, in creation order:
	// the candidates of the placement timeout, read a page at a time
	// (afterSeq is the last Seq of the page before, 0 for the first).
	QueuedBefore(ctx context.Context, before time.Time, afterSeq int64, limit int) ([]*Job, error)
	// QueuePosition returns a queued job's place in its owner's queue (1
	// runs next among that owner's jobs: higher priority, then older), or
	// 0 when the job is not queued.
	QueuePosition(ctx context.Context, id string) (int, error)
	// CountActive returns how many jobs are queued and running, cheaply
	// (without counting the finished ones): the gauges sampled often.
	CountActive(ctx context.Context) (queued, running int, err error)
	// HeldBy returns the running attempts whose lease master holds: job
	// id → attempt. A master compares it with the attempts its workers
	// run, to learn of the ones another master cancelled or rescued.
	HeldBy(ctx context.Context, master string) (map[string]int, error)
	// RunningOn returns the attempts worker w (name and identity) runs:
	// job id → attempt. A master reads it when the worker connects, to
	// adopt what the worker re-announces and requeue what it lost,
	// whichever master gave them.
	RunningOn(ctx context.Context, w WorkerRef) (map[string]int, error)
	// CountActiveByOwner is CountActive per owner; an owner with neither
	// is absent.
	CountActiveByOwner(ctx context.Context) (queued, running map[string]int, err error)
	// CountJobs returns the number of jobs per status; every status above
	// is present, zero included, so a gauge built on it drops back to 0.
	CountJobs(ctx context.Context) (map[string]int, error)
	// CountJobsByOwner returns the number of jobs of each owner.
	CountJobsByOwner(ctx context.Context) (map[string]int, error)
	// CountOwnerJobs returns the number of jobs of one owner (0 for an
	// unknown one), reading that owner's alone.
	CountOwnerJobs(ctx context.Context, owner string) (int, error)
	// CountQueuedByLanguage returns the number of queued jobs of each
	// language; a language with none is absent.
	CountQueuedByLanguage(ctx context.Context) (map[string]int, error)
	// TallyJobs counts every job by kind, those created from since on
	// by day, and the database's size. It reads the whole jobs table:
	// callers cache it.
	TallyJobs(ctx context.Context, since time.Time) (*Tally, error)

	// StartAttempt moves a queued job whose Attempts equals attempt-1 to
	// running with Attempts=attempt on worker w (Worker and
	// WorkerIdentity); StartedAt is set the first time. ErrConflict
	// otherwise, ErrNotFound if absent.
	StartAttempt(ctx context.Context, id string, attempt int, w WorkerRef, at time.Time) error
	// RequeueAttempt moves a running job whose Attempts equals attempt and
	// whose attempt is held by w back to queued (the worker was lost or
	// handed it back), recording r.Reason in Error and counting a released
	// attempt. ErrConflict otherwise: another attempt, another worker, or
	// another identity of the same worker name.
	RequeueAttempt(ctx context.Context, id string, attempt int, w WorkerRef, r Requeue) error
	// FinishAttempt records the terminal outcome of a running job whose
	// Attempts equals attempt and whose attempt is held by w. ErrConflict
	// if the job is not running that attempt (already finished, or
	// re-queued) or runs it on another worker or identity: the caller
	// drops the result. A cancel or a give-up by the master passes the
	// worker the attempt was started on. f.Status must be terminal (done,
	// failed, cancelled); an empty f.Version keeps the job's Version. It
	// returns the job as stored, so that whoever waits for the result need
	// not read it back.
	FinishAttempt(ctx context.Context, id string, attempt int, w WorkerRef, f Finish) (*Job, error)
	// FinishQueued records a terminal outcome for a job still queued (a
	// cancel, a placement timeout). ErrConflict if it is not queued.
	FinishQueued(ctx context.Context, id string, f Finish) error

	// Claims and leases: what lets several masters share one database
	// (claims.go).

	// ClaimJobs claims queued jobs for the workers a master holds and
	// starts them, in one transaction: see ClaimRequest for the order
	// and the placement. Each returned job is running (Attempts one
	// more than before, Worker and WorkerIdentity the offer's worker,
	// Master and LeaseUntil from the request). A job is never claimed
	// twice, whatever other handles on the same database claim at once.
	ClaimJobs(ctx context.Context, r ClaimRequest) ([]Claim, error)
	// ClaimJob claims one named queued job for worker w, as ClaimJobs
	// claims (Attempts one more, Master and LeaseUntil from the
	// arguments, StartedAt set the first time), in one statement: the
	// job a master starts itself (an interactive job, on the master its
	// client attached to). It returns the job as stored after;
	// ErrConflict if it is not queued, ErrNotFound if absent.
	ClaimJob(ctx context.Context, id, master string, w WorkerRef, at, leaseUntil time.Time) (*Job, error)
	// RenewLeases extends to until the lease of every running attempt
	// held by one of workers (name and identity), and records master as
	// the master holding their links: a worker that reconnected to
	// another master keeps its attempts. It returns how many attempts
	// it renewed.
	RenewLeases(ctx context.Context, master string, workers []WorkerRef, until time.Time) (int, error)
	// RescueExpired gives back at most limit running attempts whose lease
	// expired before now: each goes back to the queue with reason in
	// Error, or fails ("reason; gave up after N attempts") when it has
	// used all its counted attempts (Attempts - Released >= MaxAttempts).
	// Each expired attempt is rescued exactly once, whatever other
	// handles rescue at once. It returns the jobs as stored after.
	RescueExpired(ctx context.Context, now time.Time, reason string, limit int) ([]*Job, error)

	// Workers: the cluster's view of its workers, written by the masters
	// that hold their links (workers.go).

	// UpsertWorkers inserts or replaces each worker's row by name, in one
	// write. A row held by another master is replaced only by a live
	// status: a master may mark lost only a worker it holds.
	UpsertWorkers(ctx context.Context, ws []*Worker) error
	// ListWorkers returns every worker row, by name.
	ListWorkers(ctx context.Context) ([]*Worker, error)
	// The cluster's secrets (its CA, join token, admin token), shared by
	// every master on the database. PutSecret stores value under name
	// unless a value is stored already, and returns the value stored:
	// of masters starting together, the first one's. SetSecret replaces
	// it (a rotation). GetSecret returns it, or ErrNotFound.
	PutSecret(ctx context.Context, name string, value []byte) ([]byte, error)
	SetSecret(ctx context.Context, name string, value []byte) error
	GetSecret(ctx context.Context, name string) ([]byte, error)

	// Leadership (leaders.go): what must run once in the cluster runs on
	// the master that holds a lease row of its role.

	// Lead takes the lease of role for holder until until, or renews
	// it, when it is free, expired at now, or holder's already; it
	// reports whether holder holds it.
	Lead(ctx context.Context, role, holder string, now, until time.Time) (bool, error)
	// Resign gives up holder's lease of role at once, if it holds it.
	Resign(ctx context.Context, role, holder string) error
	// Shares (shares.go): read-only links to jobs, one per job at most.

	// PutShare records a job's share, replacing the job's earlier one
	// (whose link stops working). ErrNotFound if the job does not exist;
	// ErrConflict if another job's share has the same hash.
	PutShare(ctx context.Context, sh Share) error
	// ShareByHash returns the share whose secret hashes to hash, or
	// ErrNotFound.
	ShareByHash(ctx context.Context, hash string) (*Share, error)
	// JobShare returns a job's share, or ErrNotFound when it has none.
	JobShare(ctx context.Context, jobID string) (*Share, error)
	// DeleteShare revokes a job's share; ErrNotFound when it has none.
	DeleteShare(ctx context.Context, jobID string) error

	// The autoscaler's workers, remembered across restarts and by the
	// master that takes over its role. PutAutoscaled inserts or replaces
	// a row by name; ListAutoscaled returns them by name;
	// DeleteAutoscaled of a missing name is not an error.
	PutAutoscaled(ctx context.Context, a *Autoscaled) error
	ListAutoscaled(ctx context.Context) ([]*Autoscaled, error)
	DeleteAutoscaled(ctx context.Context, name string) error

	// SetWorkerDrain records an admin's drain (true) or undrain of the
	// named worker, whichever master holds it; ErrNotFound without a row.
	SetWorkerDrain(ctx context.Context, name string, drain bool) error
	// DeleteWorkers deletes the rows of the named workers that are lost
	// (status "lost"): a worker that came back meanwhile stays. It
	// returns how many it deleted.
	DeleteWorkers(ctx context.Context, names []string) (int, error)

	// Batches and callbacks (callbacks.go).

	// CreateJobs creates n's jobs (as CreateJob does each), its batch and
	// its callbacks in one transaction: all of them or, on any error,
	// none. With maxQueued > 0, ErrQuota if the owner would have more
	// than maxQueued queued jobs after it. ErrConflict if an id exists.
	CreateJobs(ctx context.Context, n *NewJobs, maxQueued int) error
	// GetBatch returns a batch and its jobs in submission order, or
	// ErrNotFound.
	GetBatch(ctx context.Context, id string) (*Batch, []*Job, error)
	// GetCallback returns the callback of a job or a batch, or
	// ErrNotFound.
	GetCallback(ctx context.Context, kind, target string) (*Callback, error)
	// ClaimCallbacks leases to master until until at most limit pending
	// callbacks that are due at now: their job is finished (every job of
	// their batch, for a batch), their NextAt is not after now and no
	// other lease on them runs past now. Oldest due first. A callback is
	// never leased to two masters at once.
	ClaimCallbacks(ctx context.Context, master string, now, until time.Time, limit int) ([]*Callback, error)
	// RecordCallback records an attempt of a callback leased to master:
	// delivered, to retry at a.Retry, or given up; the lease ends.
	// ErrConflict if master does not hold it (its lease was taken over)
	// or it is not pending; ErrNotFound if there is no such callback.
	RecordCallback(ctx context.Context, kind, target, master string, a CallbackAttempt) error

	// Users and tokens. Lookups and deletes of a missing user or token are
	// ErrNotFound.

	// PutUser inserts a user or replaces its fields; replacing keeps the
	// user's tokens.
	PutUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, name string) (*User, error)
	// ListUsers returns every user, by name.
	ListUsers(ctx context.Context) ([]*User, error)
	DeleteUser(ctx context.Context, name string) error // also deletes the user's tokens
	// CreateToken stores a token: ErrConflict if its id or hash exists,
	// ErrNotFound if its user does not.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash returns the token with that hash or ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// ListTokens returns a user's tokens, oldest first (none for an
	// unknown user).
	ListTokens(ctx context.Context, user string) ([]*Token, error)
	DeleteToken(ctx context.Context, id string) error
	// SetPasswordHash replaces a user's password hash and deletes every
	// login token (Kind TokenLogin) of the user, in one transaction, so
	// that no session opened with the old password outlives it. It
	// returns how many tokens it deleted; the user's API tokens stay.
	// ErrNotFound if the user does not exist.
	SetPasswordHash(ctx context.Context, name, hash string) (revoked int, err error)
	// DeleteExpiredTokens deletes every token whose ExpiresAt is set and
	// not after now, and returns how many.
	DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error)

	// Worker identities (mutual TLS). A name has at most one live
	// identity: a join with the join token cannot take a name over.

	// CreateWorkerIdentity records the identity of a name joining with the
	// join token. It replaces a revoked or expired identity (at
	// w.CreatedAt) and is ErrConflict if the name has a live one.
	CreateWorkerIdentity(ctx context.Context, w *WorkerIdentity) error
	// RenewWorkerIdentity replaces the certificate of the live identity of
	// name whose serial is oldSerial by the one with serial and expires,
	// keeping its ID. ErrConflict if that is not the name's current,
	// unrevoked certificate; ErrNotFound if the name has no identity.
	RenewWorkerIdentity(ctx context.Context, name, oldSerial, serial string, expires time.Time) (*WorkerIdentity, error)
	GetWorkerIdentity(ctx context.Context, name string) (*WorkerIdentity, error)
	ListWorkerIdentities(ctx context.Context) ([]*WorkerIdentity, error)
	// RevokeWorkerIdentity marks a name's identity revoked. ErrNotFound if
	// there is none.
	RevokeWorkerIdentity(ctx context.Context, name string, at time.Time) error

	// The audit log and the activity samples (history.go).
	History

	Close() error
}

// WorkerIdentity is the certificate a worker name may connect with.
type WorkerIdentity struct {
	Name string
	// ID is the identity's lineage: random, made when the name joins with
	// the join token, kept across renewals (which prove possession of the
	// previous certificate), new after a revocation and a new join.
	// Attempts are held by a lineage, not a name (WorkerRef).
	ID        string
	Serial    string // hex serial number of the current certificate
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero unless revoked
}

// Live reports whether the identity still holds its name at now: not
// revoked, and its certificate not expired (a zero ExpiresAt never
// expires). A name whose identity is not live may be joined again.
func (w *WorkerIdentity) Live(now time.Time) bool {
	return w.RevokedAt.IsZero() && (w.ExpiresAt.IsZero() || now.Before(w.ExpiresAt))
}
