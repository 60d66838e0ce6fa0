// Package callback delivers the callbacks of finished jobs and batches:
// it claims due rows of the store's outbox under a lease (so that of
// several masters on one database one delivers each), renders the body
// through the master, signs it with the owner's secret (Sign), sends it
// to the receiver within bounds (a timeout, no redirect, no address the
// operator forbids, checked at connection time) and records the attempt;
// a failed one is retried with exponential backoff for a bounded time.
// The outbox is the store's, so a delivery outlives a master restart.
package callback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// Formats of store.Callback.Format: how the master renders a body.
const (
	// FormatGrappe POSTs the job or batch as grappe's API shows it.
	FormatGrappe = ""
	// FormatJudge0 PUTs a job as Judge0's submission (base64-encoded, as
	// Judge0 sends its callbacks); FormatJudge0Redirect for a submission
	// made with redirect_stderr_to_stdout.
	FormatJudge0         = "judge0"
	FormatJudge0Redirect = "judge0.r"
)

// Defaults of Config.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultRetryFor    = 24 * time.Hour
	DefaultRetryBase   = 2 * time.Second
	DefaultMaxInterval = 10 * time.Minute
	DefaultPoll        = time.Second
	DefaultConcurrency = 16
	// kickGap is the least time between two reads of the outbox that
	// kicks asked for: every job that ends kicks, and at hundreds of
	// jobs a second one read per job cost more than the callbacks
	// (a job's callback waits for the next read at most this long).
	kickGap = 25 * time.Millisecond
	// maxResponseBytes is how much of a receiver's answer is read (and
	// thrown away) so that the connection may be reused; no more.
	maxResponseBytes = 4 << 10
)

// Store is the outbox.
type Store interface {
	ClaimCallbacks(ctx context.Context, master string, now, until time.Time, limit int) ([]*store.Callback, error)
	RecordCallback(ctx context.Context, kind, target, master string, a store.CallbackAttempt) error
}

var _ Store = store.Store(nil)

// Request is what to send for a callback.
type Request struct {
	Method string
	Body   []byte
}

// Renderer renders a callback's body from its job or batch as stored now.
type Renderer interface {
	Render(ctx context.Context, c *store.Callback) (Request, error)
}

// Config configures New.
type Config struct {
	MasterID string // the lease holder's name (required)
	Store    Store
	Secrets  Secrets
	Render   Renderer
	Policy   *Policy
	Log      *slog.Logger
	// Timeout bounds one attempt, connection to answer (DefaultTimeout).
	Timeout time.Duration
	// RetryFor bounds the retries, counted from the first attempt
	// (DefaultRetryFor); RetryBase is the first wait, doubled at each
	// failure up to MaxInterval.
	RetryFor, RetryBase, MaxInterval time.Duration
	// Poll is how often the outbox is read when nothing kicks it
	// (DefaultPoll): callbacks another master's jobs made due, retries.
	Poll time.Duration
	// Concurrency bounds the deliveries in flight (DefaultConcurrency).
	Concurrency int
	// Transport, if set, replaces the HTTP transport (tests); its dials
	// must apply the policy themselves.
	Transport http.RoundTripper
}

// Deliverer runs the deliveries of one master.
type Deliverer struct {
	cfg    Config
	client *http.Client
	kickc  chan struct{}
}

// New returns a Deliverer; Run starts it.
func New(cfg Config) (*Deliverer, error) {
	switch {
	case cfg.MasterID == "" || cfg.Store == nil || cfg.Render == nil || cfg.Secrets.Store == nil || cfg.Policy == nil:
		return nil, errors.New("callback: Config needs MasterID, Store, Secrets, Render and Policy")
	case cfg.Timeout < 0 || cfg.RetryFor < 0 || cfg.RetryBase < 0 || cfg.MaxInterval < 0 || cfg.Poll < 0 || cfg.Concurrency < 0:
		return nil, errors.New("callback: Config: negative durations or counts")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.RetryFor, DefaultRetryFor)
	def(&cfg.RetryBase, DefaultRetryBase)
	def(&cfg.MaxInterval, DefaultMaxInterval)
	def(&cfg.Poll, DefaultPoll)
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	tr := cfg.Transport
	if tr == nil {
		dialer := &net.Dialer{Timeout: cfg.Timeout, Control: cfg.Policy.Control}
		tr = &http.Transport{
			// No proxy from the environment: it would connect for us,
			// to addresses Control never sees.
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    cfg.Timeout,
			ResponseHeaderTimeout:  cfg.Timeout,
			MaxResponseHeaderBytes: 16 << 10,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        30 * time.Second,
			ForceAttemptHTTP2:      true,
		}
	}
	return &Deliverer{
		cfg: cfg,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.Timeout,
			// A redirect is an answer, not a new destination: following
			// it would leave the checked URL for any other.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		kickc: make(chan struct{}, 1),
	}, nil
}

// Kick asks for a look at the outbox now (a job finished); it never
// blocks.
func (d *Deliverer) Kick() {
	select {
	case d.kickc <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, at most Concurrency attempts at once: a
// slow receiver holds one of them, not the others. An attempt cut short
// by the end is not recorded: its lease runs out and it is made again
// (here after a restart, or by another master).
func (d *Deliverer) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, d.cfg.Concurrency)
	for {
		if free := cap(slots) - len(slots); free > 0 {
			now := time.Now()
			cs, err := d.cfg.Store.ClaimCallbacks(ctx, d.cfg.MasterID, now, now.Add(d.lease()), free)
			if err != nil && ctx.Err() == nil {
				d.cfg.Log.Warn("callbacks: claim", "err", err)
			}
			for _, c := range cs {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() { <-slots; d.Kick() }()
					d.deliver(ctx, c)
				})
			}
		}
		read := time.Now()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.kickc:
			if err := sleep(ctx, kickGap-time.Since(read)); err != nil {
				return err
			}
		case <-t.C:
		}
	}
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// lease covers an attempt (its render, its request, its record) with a
// margin.
func (d *Deliverer) lease() time.Duration { return 2*d.cfg.Timeout + 5*time.Second }

func (d *Deliverer) deliver(ctx context.Context, c *store.Callback) {
	status, err := d.send(ctx, c)
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	a := store.CallbackAttempt{At: now, Status: status, Delivered: err == nil}
	if err != nil {
		a.Error = d.describe(err)
		a.Retry = d.retryAt(c, now)
	}
	log := d.cfg.Log.With("kind", c.Kind, "id", c.Target, "owner", c.Owner, "attempt", c.Attempts+1)
	switch {
	case a.Delivered:
		log.Debug("callback delivered", "status", status)
	case a.Retry.IsZero():
		log.Warn("callback given up", "err", err)
	default:
		log.Debug("callback failed", "err", err, "retry", a.Retry)
	}
	if err := d.cfg.Store.RecordCallback(ctx, c.Kind, c.Target, d.cfg.MasterID, a); err != nil && !errors.Is(err, store.ErrConflict) {
		log.Error("callback: record the attempt", "err", err)
	}
}

// retryAt is when to try c again after a failure at now: the base wait
// doubled for each attempt made, at most MaxInterval; zero (give up) past
// RetryFor from the first attempt.
func (d *Deliverer) retryAt(c *store.Callback, now time.Time) time.Time {
	wait := d.cfg.RetryBase
	for range c.Attempts {
		if wait >= d.cfg.MaxInterval {
			break
		}
		wait *= 2
	}
	wait = min(wait, d.cfg.MaxInterval)
	first := c.FirstAt
	if first.IsZero() {
		first = now
	}
	next := now.Add(wait)
	if next.After(first.Add(d.cfg.RetryFor)) {
		return time.Time{}
	}
	return next
}

// describe is the failure recorded for the owner to read: a refused
// address is not named (the name may have been resolved to an address of
// the operator's network, which the owner has no business learning).
func (d *Deliverer) describe(err error) string {
	switch {
	case errors.Is(err, ErrForbidden):
		return "refused: " + ErrForbidden.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", d.cfg.Timeout)
	}
	return err.Error()
}

// redactURL drops from the URL an HTTP client's error names its user
// information, query and fragment: a receiver's credentials often ride
// there, and the error goes to the master's log and the job's record.
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return ue.Err
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
}

// send makes one attempt; it returns the receiver's status, if one came,
// and why the attempt failed.
func (d *Deliverer) send(ctx context.Context, c *store.Callback) (int, error) {
	r, err := d.cfg.Render.Render(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("render: %w", err)
	}
	secret, err := d.cfg.Secrets.Get(ctx, c.Owner)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, c.URL, bytes.NewReader(r.Body))
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "grappe-callback/1")
	req.Header.Set(SignatureHeader, Sign([]byte(secret), time.Now(), r.Body))
	req.Header.Set("Grappe-Callback-Attempt", strconv.Itoa(c.Attempts+1))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, redactURL(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}
