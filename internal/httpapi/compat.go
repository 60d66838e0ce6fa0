package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/attach"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/callback"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/judge0"
	"github.com/grappe/grappe/internal/piston"
	"github.com/grappe/grappe/internal/store"
)

// Compat configures the Piston and Judge0 APIs that grappe serves for
// those projects' clients.
type Compat struct {
	// Aliases returns a catalogue language's other names (Piston lists
	// them and accepts them).
	Aliases func(language string) []string
	// DefaultLimits and MaxLimits are the operator's, which Judge0's
	// /config_info shows.
	DefaultLimits, MaxLimits api.Limits
	// AnonymousUser, if set, is who a request without a token runs as
	// (with role user). A wrong token is still refused.
	AnonymousUser string
}

// compatBackend is what the piston and judge0 packages need, over the
// same Service, Authenticator and rate limits as the rest of the API.
type compatBackend struct{ s *server }

var (
	_ piston.Backend = compatBackend{}
	_ judge0.Backend = compatBackend{}
)

// mountCompat serves /api/v2/ (Piston) and /judge0/ (Judge0).
func (s *server) mountCompat(mux *routeMux) {
	b := compatBackend{s}
	mux.Handle("/api/v2/", piston.New(piston.Config{
		Backend: b, Aliases: s.Compat.Aliases, MaxWait: s.MaxWait, MaxBodyBytes: s.MaxBodyBytes, Logger: s.Logger,
	}))
	mux.Handle("/judge0/", http.StripPrefix("/judge0", judge0.New(judge0.Config{
		Backend: b, DefaultLimits: s.Compat.DefaultLimits, MaxLimits: s.Compat.MaxLimits, MaxBatch: s.MaxBatch,
		MaxWait: s.MaxWait, MaxBodyBytes: s.MaxBodyBytes, Logger: s.Logger,
	})))
}

// compatError is an API error as those packages show it: the status, and
// the message alone (they have their own error shapes).
type compatError struct {
	status int
	msg    string
}

func (e *compatError) Error() string   { return e.msg }
func (e *compatError) HTTPStatus() int { return e.status }

// convert turns the service's errors into compatErrors; anything that is
// not the caller's fault stays as it is (a 500, logged).
func convert(err error) error {
	if err == nil {
		return nil
	}
	e, ok := fromDomain(err)
	if !ok && !errors.As(err, &e) {
		return err
	}
	return &compatError{status: e.Status, msg: e.Message}
}

// Authenticate takes the token from Authorization (with or without
// "Bearer ", as Piston's public API takes keys) or from Judge0's
// X-Auth-Token, or runs a request without one as the anonymous user if
// there is one; then it applies the caller's rate limit. Cookies are not
// read: these APIs are for programs, not for the web UI.
func (b compatBackend) Authenticate(r *http.Request) (*auth.Principal, error) {
	token := strings.TrimSpace(r.Header.Get("Authorization"))
	token = strings.TrimSpace(strings.TrimPrefix(token, "Bearer "))
	if token == "" {
		token = strings.TrimSpace(r.Header.Get("X-Auth-Token"))
	}
	var p *auth.Principal
	var err error
	switch {
	case token != "":
		p, err = b.s.Auth.Authenticate(r.Context(), token)
	case b.s.Compat.AnonymousUser != "":
		p = &auth.Principal{User: b.s.Compat.AnonymousUser, Role: auth.RoleUser}
	default:
		return nil, convert(ErrNoAuth)
	}
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return nil, convert(ErrExpired)
	case errors.Is(err, auth.ErrUnauthenticated):
		return nil, convert(ErrNoAuth)
	case err != nil:
		return nil, convert(err)
	}
	if ok, wait := b.s.perUser.allow(p.User); !ok {
		return nil, convert(tooMany("requests", wait))
	}
	b.s.Clients.Seen(p.User, r.RemoteAddr)
	return p, nil
}

func (b compatBackend) Submit(ctx context.Context, p *auth.Principal, req *api.JobRequest) (*api.Job, error) {
	job, err := b.s.Service.Submit(ctx, p, req, "")
	return job, convert(err)
}

// SubmitBatch makes Judge0's submissions one grappe batch; their
// callbacks are Judge0's (a PUT of the submission).
func (b compatBackend) SubmitBatch(ctx context.Context, p *auth.Principal, subs []judge0.Submission) ([]string, error) {
	in := make([]Submission, len(subs))
	for i, s := range subs {
		in[i] = Submission{Request: s.Request}
		switch {
		case s.Request.CallbackURL == "":
		case s.Redirect:
			in[i].CallbackFormat = callback.FormatJudge0Redirect
		default:
			in[i].CallbackFormat = callback.FormatJudge0
		}
	}
	batch, err := b.s.Service.SubmitBatch(ctx, p, in, "", "")
	var be *jobs.BatchError
	if errors.As(err, &be) {
		return nil, &batchError{index: be.Index, err: convert(be.Err)}
	}
	if err != nil {
		return nil, convert(err)
	}
	return batch.JobIDs, nil
}

// batchError is a batch refused for its job at index.
type batchError struct {
	index int
	err   error
}

func (e *batchError) Error() string   { return e.err.Error() }
func (e *batchError) Unwrap() error   { return e.err }
func (e *batchError) BatchIndex() int { return e.index }

func (b compatBackend) Job(ctx context.Context, p *auth.Principal, id string) (*api.Job, error) {
	job, err := b.s.Service.Job(ctx, p, id)
	return job, convert(err)
}

func (b compatBackend) Attach(ctx context.Context, p *auth.Principal, id string) (*attach.Session, error) {
	s, err := b.s.Service.Attach(ctx, p, id)
	return s, convert(err)
}

func (b compatBackend) Languages(ctx context.Context) []api.Language {
	return b.s.Service.Languages(ctx)
}

func (b compatBackend) OwnJobs(ctx context.Context, p *auth.Principal, offset, limit int) ([]api.Job, int, error) {
	jobs, total, err := b.s.Service.OwnJobs(ctx, p, offset, limit)
	return jobs, total, convert(err)
}

func (b compatBackend) Workers(ctx context.Context) []api.Worker { return b.s.Service.Workers(ctx) }

func (b compatBackend) QueuedByLanguage(ctx context.Context) (map[string]int, error) {
	n, err := b.s.Service.QueuedByLanguage(ctx)
	return n, convert(err)
}

func (b compatBackend) TallyJobs(ctx context.Context, since time.Time) (*store.Tally, error) {
	t, err := b.s.Service.TallyJobs(ctx, since)
	return t, convert(err)
}

// Wait follows the job until it ends or timeout passes, then reads it.
func (b compatBackend) Wait(ctx context.Context, p *auth.Principal, id string, timeout time.Duration) (*api.Job, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	events, unsubscribe, err := b.s.Service.Subscribe(wctx, p, id, false)
	if err != nil {
		return nil, convert(err)
	}
	func() {
		defer unsubscribe()
		for {
			select {
			case _, ok := <-events:
				if !ok {
					return
				}
			case <-wctx.Done():
				return
			}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err // the client went away
	}
	// Read back rather than take the end event's job: Judge0 needs the
	// stored request (expected output, limits).
	return b.Job(ctx, p, id)
}
