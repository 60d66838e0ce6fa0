package client

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/grappe/grappe/api"
)

// Submit submits a job and returns it as accepted (status queued). The
// submission carries a fresh Idempotency-Key, so it is retried through
// connection errors and 5xx answers (a master restarting) until ctx ends
// without ever creating the job twice.
func (c *Client) Submit(ctx context.Context, req *api.JobRequest) (*api.Job, error) {
	return c.submit(ctx, req, nil)
}

// SubmitWait submits a job and lets the master hold the answer until the
// job is finished or timeout has passed (0: the master's default, 30s), in
// one round trip. A job still unfinished at the timeout is returned as it is
// then; continue with Wait. Retries are as for Submit.
func (c *Client) SubmitWait(ctx context.Context, req *api.JobRequest, timeout time.Duration) (*api.Job, error) {
	q := url.Values{"wait": {"true"}}
	if timeout > 0 {
		q.Set("timeout", timeout.String())
	}
	return c.submit(ctx, req, q)
}

func (c *Client) submit(ctx context.Context, req *api.JobRequest, q url.Values) (*api.Job, error) {
	hdr := http.Header{"Idempotency-Key": {newIdempotencyKey()}}
	for n := 1; ; n++ {
		var job api.Job
		err := c.doWith(ctx, http.MethodPost, "/api/v1/jobs", q, hdr, req, &job)
		if err == nil {
			return &job, nil
		}
		if !retryable(err) || ctx.Err() != nil || n >= submitTries {
			return nil, err
		}
		if serr := sleep(ctx, retryPause(err, n)); serr != nil {
			return nil, err
		}
	}
}

// submitTries bounds the retries of one submission (about a minute of
// backoff): long enough to ride through a master restart.
const submitTries = 20

func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string) (*api.Job, error) {
	var job api.Job
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, nil, &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// Jobs lists the caller's jobs (every job for an admin), newest first.
// status filters when not empty; limit bounds the list when positive.
func (c *Client) Jobs(ctx context.Context, status string, limit int) ([]api.Job, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var list api.JobList
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs", q, nil, &list); err != nil {
		return nil, err
	}
	return list.Jobs, nil
}

// Cancel cancels a queued or running job. It returns the job as the master
// answered it, or nil when the master's answer carried no job.
func (c *Client) Cancel(ctx context.Context, id string) (*api.Job, error) {
	var job api.Job
	opt := &optional{v: &job}
	if err := c.do(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, opt); err != nil {
		return nil, err
	}
	if !opt.present {
		return nil, nil
	}
	return &job, nil
}

// Wait blocks until job id is finished (done, cancelled or failed) and
// returns it. See WaitFunc.
func (c *Client) Wait(ctx context.Context, id string) (*api.Job, error) {
	return c.WaitFunc(ctx, id, nil)
}

// Delays of WaitFunc.
const (
	// pollMin is the first polling interval, and the pause before an event
	// stream that ended early is reopened.
	pollMin = 200 * time.Millisecond
	// pollMax caps the polling interval for a job that is slow to finish.
	pollMax = 2 * time.Second
	// retryMax caps the backoff while the master cannot be reached: long
	// enough not to hammer a master that restarts, short enough to notice
	// it is back quickly.
	retryMax = 5 * time.Second
	// streamRecheck bounds one event stream: Wait then reads the job and
	// reopens the stream, so that an event lost on the master's side costs
	// at most this much delay instead of a wait without end.
	streamRecheck = time.Minute
)

// WaitFunc is Wait that also calls onState (when not nil) with each state
// of the job it sees, for progress display; it may see a state more than once.
//
// It follows the job's event stream and falls back to polling GET
// /api/v1/jobs/{id} (every 200 ms, slowing down to 2 s) when the master has
// no event stream. Connection errors, 5xx answers and master restarts are
// retried with capped, jittered backoff until ctx ends; an answer that will
// not change by retrying (404, 401, 403) ends the wait with that error.
func (c *Client) WaitFunc(ctx context.Context, id string, onState func(*api.Job)) (*api.Job, error) {
	if onState == nil {
		onState = func(*api.Job) {}
	}
	useStream := true
	var delay, poll time.Duration
	failures := 0
	for {
		if delay > 0 {
			if err := sleep(ctx, delay); err != nil {
				return nil, err
			}
		}
		streamMissing := false
		if useStream {
			job, err := c.waitStream(ctx, id, onState)
			if job != nil {
				return job, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			switch {
			case err == nil:
				// The stream ended before the job did (master shutting down,
				// a proxy's timeout): check the job, then reconnect.
			case errors.Is(err, ErrNotEventStream) || streamUnsupported(err):
				useStream = false
			case IsNotFound(err):
				// No such job, or a master without event streams: the GET
				// below tells them apart.
				streamMissing = true
			case !retryable(err):
				return nil, err
			}
		}
		job, err := c.Job(ctx, id)
		switch {
		case err == nil:
			failures = 0
			onState(job)
			if job.Terminal() {
				return job, nil
			}
			if streamMissing {
				useStream = false
			}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !retryable(err):
			return nil, err
		default:
			failures++
		}
		switch {
		case failures > 0:
			delay = backoff(failures)
		case useStream:
			delay = pollMin
		default:
			poll = min(max(pollMin, poll*3/2), pollMax)
			delay = poll
		}
	}
}

// errStopStream ends Events from inside waitStream's callback.
var errStopStream = errors.New("stop")

// waitStream follows the event stream until the job is finished (it returns
// the job) or the stream ends or fails (it returns nil and why).
func (c *Client) waitStream(ctx context.Context, id string, onState func(*api.Job)) (*api.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, streamRecheck)
	defer cancel()
	var final *api.Job
	err := c.Events(ctx, id, func(ev api.Event) error {
		if ev.Job == nil {
			return nil
		}
		switch ev.Type {
		case "state":
			onState(ev.Job)
			if ev.Job.Terminal() {
				final = ev.Job
				return errStopStream
			}
		case "end":
			if ev.Job.Terminal() {
				final = ev.Job
			}
			return errStopStream
		}
		return nil
	})
	if errors.Is(err, errStopStream) {
		err = nil
	}
	return final, err
}

// streamUnsupported reports whether the master answered the event stream
// request in a way that says it has none.
func streamUnsupported(err error) bool {
	switch StatusCode(err) {
	case http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusNotAcceptable:
		return true
	}
	return false
}

// retryable reports whether a request that failed with err may succeed if
// sent again: a transport error (connection refused or reset while the
// master restarts, a truncated answer) or an answer saying "later".
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Our own context is checked by the callers; a deadline here comes
		// from the transport (a stalled stream) and is worth retrying.
		return errors.Is(err, context.DeadlineExceeded)
	}
	st := StatusCode(err)
	if st == 0 {
		return true
	}
	return st >= 500 || st == http.StatusTooManyRequests || st == http.StatusRequestTimeout
}

// backoff returns the pause after n consecutive failures: doubling from
// pollMin, capped at retryMax, with ±20% jitter so that the clients of a
// restarted master do not come back in lockstep.
func backoff(n int) time.Duration {
	d := pollMin
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	d = min(d, retryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// maxRetryAfter caps how long a Retry-After may hold a submission back,
// so that a wrong header does not stall a client for good.
const maxRetryAfter = time.Minute

// retryPause returns the pause before trying a submission again after its
// n-th failure, err: what the master asked for (Retry-After, on a 429 or
// 503 when it sheds load), spread by up to a fifth more so that the
// clients it refused together do not return together; else backoff(n).
func retryPause(err error, n int) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		d := min(e.RetryAfter, maxRetryAfter)
		return d + time.Duration(0.2*rand.Float64()*float64(d))
	}
	return backoff(n)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
