package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/callback"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/judge0"
	"github.com/grappe/grappe/internal/store"
)

// CallbackConfig configures the delivery of callbacks.
type CallbackConfig struct {
	// Allow are the ranges callbacks may reach even though they are
	// forbidden by default (loopback, private, link-local, unspecified,
	// the host's own networks): --callback-allow.
	Allow []netip.Prefix
	// Timeout bounds one attempt (default 10s); RetryFor bounds the
	// retries of a failing delivery (default 24h); RetryBase is the
	// first wait between attempts, doubled each time (default 2s).
	Timeout, RetryFor, RetryBase time.Duration
}

// setupCallbacks makes the deliverer of the callbacks' outbox, and the
// policy submissions are checked with.
func (m *Master) setupCallbacks() error {
	local, err := callback.LocalNetworks()
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	m.callbackPolicy = &callback.Policy{
		Forbidden: slices.Concat(callback.DefaultForbidden(), local),
		Allowed:   m.cfg.Callbacks.Allow,
	}
	m.callbackSecrets = callback.Secrets{Store: m.store}
	m.callbacks, err = callback.New(callback.Config{
		MasterID: m.cfg.MasterID, Store: m.store, Secrets: m.callbackSecrets, Render: renderer{m},
		Policy: m.callbackPolicy, Log: m.log.With("component", "callbacks"),
		Timeout: m.cfg.Callbacks.Timeout, RetryFor: m.cfg.Callbacks.RetryFor, RetryBase: m.cfg.Callbacks.RetryBase,
	})
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	return nil
}

// checkCallback refuses a callback URL the policy forbids (422, field
// field).
func (m *Master) checkCallback(ctx context.Context, field, url string) error {
	if url == "" {
		return nil
	}
	if err := m.callbackPolicy.CheckURL(ctx, url); err != nil {
		return &jobs.Error{Code: jobs.CodeInvalid, Field: field, Message: err.Error()}
	}
	return nil
}

// CallbackSecret returns the caller's callback secret.
func (m *Master) CallbackSecret(ctx context.Context, p *auth.Principal) (*api.CallbackSecret, error) {
	s, err := m.callbackSecrets.Get(ctx, p.User)
	if err != nil {
		return nil, err
	}
	return &api.CallbackSecret{Secret: s}, nil
}

// RotateCallbackSecret replaces the caller's callback secret.
func (m *Master) RotateCallbackSecret(ctx context.Context, p *auth.Principal) (*api.CallbackSecret, error) {
	s, err := m.callbackSecrets.Rotate(ctx, p.User)
	if err != nil {
		return nil, err
	}
	m.audit.Info("callback secret rotated", "user", p.User)
	return &api.CallbackSecret{Secret: s}, nil
}

// callbackOf is the API's view of a job's or batch's callback; nil when
// it has none.
func (m *Master) callbackOf(ctx context.Context, kind, target string) (*api.Callback, error) {
	c, err := m.store.GetCallback(ctx, kind, target)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := &api.Callback{URL: c.URL, Status: api.CallbackPending, Attempts: c.Attempts, LastStatus: c.LastStatus, LastError: c.LastError}
	out.LastAttemptAt, out.DeliveredAt = toTime(c.LastAt), toTime(c.DeliveredAt)
	switch {
	case !c.DeliveredAt.IsZero():
		out.Status = api.CallbackDelivered
	case !c.FailedAt.IsZero():
		out.Status = api.CallbackFailed
	default:
		out.NextAttemptAt = toTime(c.NextAt)
	}
	return out, nil
}

// renderer renders the callbacks' bodies for the deliverer.
type renderer struct{ m *Master }

var _ callback.Renderer = renderer{}

// Render implements callback.Renderer: the job or batch as the API shows
// it (without its callback, which is being delivered), or a job as
// Judge0's submission.
func (r renderer) Render(ctx context.Context, c *store.Callback) (callback.Request, error) {
	m := r.m
	switch c.Kind {
	case store.CallbackBatch:
		b, sjs, err := m.store.GetBatch(ctx, c.Target)
		if err != nil {
			return callback.Request{}, err
		}
		body, err := json.Marshal(batchToAPI(b, sjs))
		return callback.Request{Method: "POST", Body: body}, err
	case store.CallbackJob:
		sj, err := m.store.GetJob(ctx, c.Target)
		if err != nil {
			return callback.Request{}, err
		}
		j, err := toAPI(sj, true)
		if err != nil {
			return callback.Request{}, err
		}
		switch c.Format {
		case callback.FormatJudge0, callback.FormatJudge0Redirect:
			body, err := judge0.CallbackBody(j, c.Format == callback.FormatJudge0Redirect)
			return callback.Request{Method: "PUT", Body: body}, err
		case callback.FormatGrappe:
			body, err := json.Marshal(j)
			return callback.Request{Method: "POST", Body: body}, err
		}
	}
	return callback.Request{}, fmt.Errorf("callback %s %s: unknown kind or format %q", c.Kind, c.Target, c.Format)
}
