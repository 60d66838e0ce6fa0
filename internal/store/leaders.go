package store

import "time"

// Roles a master leads (Store.Lead). One master at a time holds each,
// whichever it is: a lease row, taken when free or expired and renewed by
// its holder, so that a holder that dies is replaced within a lease.
const (
	// RoleSweeper gives back expired leases and fails the jobs no worker
	// can run (the placement timeout): each is a compare-and-set and safe
	// twice, but one sweeper costs the database one set of scans.
	RoleSweeper = "sweeper"
	// RoleAutoscaler starts and stops workers: two would each start
	// workers for the same queue.
	RoleAutoscaler = "autoscaler"
)

// Autoscaled is a worker the autoscaler started and has not stopped.
type Autoscaled struct {
	Name string
	// Provisioner is the kind that started it ("local", "exec"), and
	// Master the master whose autoscaler did: a local worker is a child
	// process of that master and dies with it.
	Provisioner string
	Master      string
	Reason      string // why it was started, as the decision said
	StartedAt   time.Time
}

// Changes are the callbacks of a store that tells of every master's
// commits as they happen (PostgreSQL's LISTEN/NOTIFY); each may be nil.
// Notifications can be lost (a dropped connection): the masters poll
// too, and these only make them quicker.
type Changes struct {
	// Queued: a job entered the queue.
	Queued func()
	// Ended: the job id ended (done, failed or cancelled).
	Ended func(id string)
	// Worker: the named worker was drained or undrained, or its identity
	// revoked.
	Worker func(name string)
	// Access: users, tokens or the cluster's secrets changed (a token
	// revoked, a password or role changed, the join token rotated).
	Access func()
	// Resumed: the notifications (re)started; whatever changed before
	// was not told, so anything may have.
	Resumed func()
}
