// Package top is the model of `grappe top`, a live terminal view of the
// cluster: header counters, the workers table, the connected clients.
//
// The model is pure: it changes only on messages (a fetched Result, a key,
// a window size) and renders only from its state, so tests drive it with
// fake snapshots and read View. Fetching is kept apart, in Fetcher, which
// reads the master through the client SDK.
package top

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
)

// Snapshot is the cluster as the master described it at Time.
type Snapshot struct {
	Time    time.Time
	Cluster api.Cluster
	Workers []api.Worker
	Clients []api.Client
	Stats   api.Stats
}

// Result is what one fetch delivers to the model: a snapshot, or Err and
// no snapshot. Time is when the fetch ended either way.
type Result struct {
	Time     time.Time
	Snapshot *Snapshot
	Err      error
}

// Source is what the fetcher reads; *client.Client implements it.
type Source interface {
	Cluster(ctx context.Context) (*api.Cluster, error)
	Workers(ctx context.Context) ([]api.Worker, error)
	Clients(ctx context.Context) ([]api.Client, error)
	Stats(ctx context.Context) (*api.Stats, error)
}

var _ Source = (*client.Client)(nil)

// DefaultTimeout bounds one fetch: a master that does not answer within it
// is shown unreachable rather than freezing the screen.
const DefaultTimeout = 3 * time.Second

// Fetcher reads a Snapshot from the master.
type Fetcher struct {
	Source  Source
	Timeout time.Duration    // per fetch; DefaultTimeout when zero
	Now     func() time.Time // time.Now when nil
}

// Fetch asks for the four parts of a snapshot at once (one round trip of
// latency, not four) and returns them together, or the most telling error.
func (f *Fetcher) Fetch(ctx context.Context) Result {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var (
		s       Snapshot
		wg      sync.WaitGroup
		errs    [4]error
		cluster *api.Cluster
		stats   *api.Stats
	)
	wg.Add(4)
	go func() { defer wg.Done(); cluster, errs[0] = f.Source.Cluster(ctx) }()
	go func() { defer wg.Done(); s.Workers, errs[1] = f.Source.Workers(ctx) }()
	go func() { defer wg.Done(); s.Clients, errs[2] = f.Source.Clients(ctx) }()
	go func() { defer wg.Done(); stats, errs[3] = f.Source.Stats(ctx) }()
	wg.Wait()

	r := Result{Time: f.now()}
	if err := pickError(errs[:]); err != nil {
		r.Err = err
		return r
	}
	s.Time = r.Time
	s.Cluster, s.Stats = *cluster, *stats
	r.Snapshot = &s
	return r
}

func (f *Fetcher) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// pickError returns the error that explains the most: a refused token or
// role says what to do, where "unreachable" or a 5xx may be passing.
func pickError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if p := Classify(err); p == Forbidden || p == Unauthorized {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// Problem is why a fetch failed, as the screen explains it.
type Problem int

const (
	// OK: no problem.
	OK Problem = iota
	// Unreachable: no answer from the master (refused, timed out, TLS).
	Unreachable
	// Forbidden: the token is not an admin's (403).
	Forbidden
	// Unauthorized: the token is missing, wrong or revoked (401).
	Unauthorized
	// Failing: the master answered with another error.
	Failing
)

// Classify tells why err happened.
func Classify(err error) Problem {
	var ce *client.Error
	switch {
	case err == nil:
		return OK
	case client.IsForbidden(err):
		return Forbidden
	case client.IsUnauthorized(err):
		return Unauthorized
	case errors.As(err, &ce):
		return Failing
	}
	return Unreachable
}

// Explain says in one line what a failed fetch means and what to do,
// for the banner and for the error of the one-shot text mode.
func Explain(err error, addr string) string {
	switch Classify(err) {
	case Forbidden:
		return "grappe top needs an admin token: the master answered 403 forbidden to this one; " +
			"use the master's DIR/admin-token or log in as an admin (grappe login)"
	case Unauthorized:
		return "the master refused the token (401 unauthorized); set GRAPPE_TOKEN or run grappe login"
	case Unreachable:
		return "master unreachable at " + addr + ": " + shortError(err)
	case Failing:
		return "the master answered with an error: " + err.Error()
	}
	return ""
}

// Wrap returns err with Explain's message, for a command's error exit;
// errors.Is and As still see err.
func Wrap(err error, addr string) error {
	if err == nil {
		return nil
	}
	return &explained{msg: Explain(err, addr), err: err}
}

type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// shortError drops the request line and URL the HTTP client puts before a
// network error: "dial tcp 127.0.0.1:7443: connect: connection refused"
// says it all.
func shortError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return err.Error()
}
