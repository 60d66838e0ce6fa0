// Package httpapi serves grappe's REST API: JSON over HTTPS, bearer-token
// authentication, Server-Sent Events for job progress. It knows nothing of
// workers or storage; it talks to the master through the Service interface.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/attach"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/store"
)

// Service is what the API needs from the master.
type Service interface {
	// Submit accepts a job. A non-empty idempotencyKey makes the
	// submission safe to retry: the same key returns the same job.
	Submit(ctx context.Context, p *auth.Principal, req *api.JobRequest, idempotencyKey string) (*api.Job, error)
	// Job returns a job the principal may see, or ErrNotFound.
	Job(ctx context.Context, p *auth.Principal, id string) (*api.Job, error)
	// Jobs lists the jobs the principal may see that q selects, newest
	// first; an unknown q.Before is a NotFound.
	Jobs(ctx context.Context, p *auth.Principal, q JobQuery) ([]api.Job, error)
	// ShareJob makes a new read-only link to one of the principal's own
	// jobs (replacing its earlier link); JobShare tells whether the job
	// has one; UnshareJob revokes it (NotFound if it has none). SharedJob is the
	// job a link's token opens, NotFound for any other token.
	ShareJob(ctx context.Context, p *auth.Principal, id string) (*api.Share, error)
	JobShare(ctx context.Context, p *auth.Principal, id string) (*api.Share, error)
	UnshareJob(ctx context.Context, p *auth.Principal, id string) error
	SharedJob(ctx context.Context, token string) (*api.Job, error)
	// OwnJobs is a page of the principal's own jobs (an admin's too),
	// newest first, with their requests: at most limit of them after
	// skipping offset, and how many the principal has in all.
	OwnJobs(ctx context.Context, p *auth.Principal, offset, limit int) ([]api.Job, int, error)
	// QueuedByLanguage counts the queued jobs of each language.
	QueuedByLanguage(ctx context.Context) (map[string]int, error)
	// TallyJobs counts the cluster's jobs (store.Store.TallyJobs); it
	// reads them all.
	TallyJobs(ctx context.Context, since time.Time) (*store.Tally, error)
	Cancel(ctx context.Context, p *auth.Principal, id string) (*api.Job, error)
	// Subscribe streams a job's events until it is terminal (the channel is
	// then closed) or cancel is called. The job must be visible to p. With
	// events false the channel only closes at the end (a ?wait=true),
	// after an "end" event with the finished job when the service has it
	// at hand.
	Subscribe(ctx context.Context, p *auth.Principal, id string, events bool) (ch <-chan api.Event, cancel func(), err error)
	// Attach connects the owner's client to an interactive job waiting
	// for it (GET /api/v1/jobs/{id}/attach, Piston's /api/v2/connect).
	Attach(ctx context.Context, p *auth.Principal, id string) (*attach.Session, error)
	Languages(ctx context.Context) []api.Language
	Workers(ctx context.Context) []api.Worker
	// Stats is the last minutes of the cluster, for charts.
	Stats(ctx context.Context) *api.Stats
	// OwnerJobs counts each owner's jobs, for the clients view.
	OwnerJobs(ctx context.Context) (map[string]OwnerJobs, error)
	// RevokeWorker revokes a worker's certificate and disconnects it.
	RevokeWorker(ctx context.Context, p *auth.Principal, name string) error
	// WorkerIdentities lists the worker certificates issued.
	WorkerIdentities(ctx context.Context) ([]api.WorkerIdentity, error)
	// RotateJoinToken replaces the join token and returns the new one.
	RotateJoinToken(ctx context.Context, p *auth.Principal) (string, error)
	// Drain stops (drain false: resumes) placing jobs on a worker.
	Drain(ctx context.Context, name string, drain bool) (*api.Worker, error)
	Cluster(ctx context.Context) (*api.Cluster, error)
	// Autoscaler is the autoscaler's policy, state and recent decisions
	// (Enabled false when it is off).
	Autoscaler(ctx context.Context) *api.Autoscaler

	// SubmitBatch accepts the jobs all or none, with the batch's own
	// callback if callbackURL is set; a refusal for one job is a
	// *jobs.BatchError naming it. A non-empty key makes it safe to retry.
	SubmitBatch(ctx context.Context, p *auth.Principal, subs []Submission, callbackURL, key string) (*api.Batch, error)
	// Batch returns a batch the principal may see, or ErrNotFound.
	Batch(ctx context.Context, p *auth.Principal, id string) (*api.Batch, error)
	// CancelBatch cancels the batch's jobs that are not finished.
	CancelBatch(ctx context.Context, p *auth.Principal, id string) (*api.Batch, error)
	// CallbackSecret is the key of the principal's callback signatures;
	// RotateCallbackSecret replaces it.
	CallbackSecret(ctx context.Context, p *auth.Principal) (*api.CallbackSecret, error)
	RotateCallbackSecret(ctx context.Context, p *auth.Principal) (*api.CallbackSecret, error)
}

// Submission is one job of a batch, with how its callback is sent.
type Submission struct {
	Request *api.JobRequest
	// CallbackFormat is the format of the job's callback_url (the
	// callback package's Format*; "" is grappe's own).
	CallbackFormat string
}

// OwnerJobs counts one owner's jobs.
type OwnerJobs struct{ Total, Queued, Running int }

// TokenRevoker revokes one API token.
type TokenRevoker interface {
	RevokeToken(ctx context.Context, token string) error
}

// Authenticator resolves a bearer token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*auth.Principal, error)
}

// Config wires the API.
type Config struct {
	Service Service
	Auth    Authenticator
	Users   Users
	// Revoker revokes the token of a web session at logout.
	Revoker TokenRevoker
	// Web, if set, serves everything outside /api/, /healthz and /metrics
	// (the web UI).
	Web    http.Handler
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies (default 10 MiB).
	MaxBodyBytes int64
	// MaxWait caps ?wait=true&timeout= (default 5 minutes).
	MaxWait time.Duration
	// Metrics, if set, is served at /metrics to an admin's token or to
	// MetricsToken: the series name the workers, their versions and their
	// sandboxes, which is a map for an attacker.
	Metrics http.Handler
	// MetricsToken, if set, is a token that may read /metrics and nothing
	// else (Prometheus's bearer token).
	MetricsToken string
	// Clients records who is calling, for the cluster view.
	Clients *Clients
	Limits  RateLimits
	// Compat configures the Piston (/api/v2/) and Judge0 (/judge0/) APIs.
	Compat Compat
	// Audit, if set, records the audit log and serves it (GET
	// /api/v1/audit, admin).
	Audit AuditLog
	// History, if set, serves GET /api/v1/stats/history.
	History StatsHistory
	// MaxQueuedPerUser is the queued-job quota shown in GET
	// /api/v1/account.
	MaxQueuedPerUser int
	// MaxBatch caps the jobs of a batch (default 500), Judge0's too.
	MaxBatch int
}

type server struct {
	Config
	perUser, loginByUser, loginByAddr *limiters
	// sharedByAddr bounds the public reads of shared jobs per address,
	// as perUser does for a user.
	sharedByAddr *limiters
}

// New returns the API's handler.
func New(cfg Config) http.Handler {
	h, _ := build(cfg)
	return h
}

// Routes lists the patterns New registers for cfg ("GET /api/v1/jobs/{id}"
// for an endpoint, a bare path such as "/judge0/" for a handler mounted
// under a prefix), in the order they are registered. The OpenAPI
// document's test compares it with api/openapi.yaml.
func Routes(cfg Config) []string {
	_, patterns := build(cfg)
	return patterns
}

// build makes the API's handler and says which patterns it registered:
// every endpoint is registered below, on a mux that records them, so that
// an endpoint cannot be served without being listed.
func build(cfg Config) (http.Handler, []string) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 5 * time.Minute
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 500
	}
	if cfg.Clients == nil {
		cfg.Clients = NewClients()
	}
	cfg.Limits.setDefaults()
	s := &server{
		Config:       cfg,
		perUser:      newLimiters(cfg.Limits.PerUser, cfg.Limits.Burst),
		loginByUser:  newLimiters(cfg.Limits.LoginPerMinute/60, cfg.Limits.LoginBurst),
		loginByAddr:  newLimiters(cfg.Limits.LoginPerMinute/60*5, cfg.Limits.LoginBurst*5),
		sharedByAddr: newLimiters(cfg.Limits.PerUser, cfg.Limits.Burst),
	}
	mux := &routeMux{ServeMux: http.NewServeMux()}
	mux.HandleFunc("GET /api/v1/openapi.json", s.openapi())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if cfg.Metrics != nil {
		mux.HandleFunc("GET /metrics", s.metrics)
	}
	mux.Handle("POST /api/v1/jobs", s.authed(s.submit))
	mux.Handle("GET /api/v1/jobs", s.authed(s.listJobs))
	mux.Handle("GET /api/v1/jobs/{id}", s.authed(s.getJob))
	mux.Handle("POST /api/v1/jobs/{id}/cancel", s.authed(s.cancel))
	mux.Handle("GET /api/v1/jobs/{id}/events", s.authed(s.events))
	mux.Handle("POST /api/v1/jobs/{id}/share", s.authed(s.shareJob))
	mux.Handle("GET /api/v1/jobs/{id}/share", s.authed(s.jobShare))
	mux.Handle("DELETE /api/v1/jobs/{id}/share", s.authed(s.unshareJob))
	mux.HandleFunc("GET /api/v1/shared/{token}", s.sharedJob)
	mux.Handle("GET /api/v1/jobs/{id}/attach", s.authed(s.attach))
	mux.Handle("POST /api/v1/batches", s.authed(s.submitBatch))
	mux.Handle("GET /api/v1/batches/{id}", s.authed(s.getBatch))
	mux.Handle("POST /api/v1/batches/{id}/cancel", s.authed(s.cancelBatch))
	mux.Handle("GET /api/v1/callback-secret", s.authed(s.callbackSecret))
	mux.Handle("POST /api/v1/callback-secret/rotate", s.authed(s.rotateCallbackSecret))
	mux.Handle("GET /api/v1/languages", s.authed(s.languages))
	mux.Handle("GET /api/v1/workers", s.admin(s.workers))
	mux.Handle("POST /api/v1/workers/{name}/drain", s.admin(s.drain(true)))
	mux.Handle("POST /api/v1/workers/{name}/undrain", s.admin(s.drain(false)))
	mux.Handle("POST /api/v1/workers/{name}/revoke", s.admin(s.revokeWorker))
	mux.Handle("GET /api/v1/worker-identities", s.admin(s.workerIdentities))
	mux.Handle("POST /api/v1/join-token/rotate", s.admin(s.rotateJoinToken))
	mux.Handle("GET /api/v1/cluster", s.authed(s.cluster))
	mux.Handle("GET /api/v1/autoscaler", s.admin(func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		writeJSON(w, http.StatusOK, s.Service.Autoscaler(r.Context()))
		return nil
	}))
	if cfg.Users != nil {
		mux.HandleFunc("POST /api/v1/login", s.login)
		mux.Handle("POST /api/v1/users", s.admin(s.addUser))
		mux.Handle("GET /api/v1/users", s.admin(s.listUsers))
		mux.Handle("DELETE /api/v1/users/{name}", s.admin(s.removeUser))
		mux.Handle("PUT /api/v1/users/{name}/password", s.authed(s.setPassword))
		mux.Handle("POST /api/v1/tokens", s.authed(s.createToken))
		mux.Handle("GET /api/v1/tokens", s.authed(s.listTokens))
		mux.Handle("DELETE /api/v1/tokens/{id}", s.authed(s.deleteToken))
		mux.HandleFunc("POST /api/v1/session", s.sameOriginOnly(s.createSession))
		mux.Handle("GET /api/v1/session", s.authed(s.getSession))
		mux.Handle("DELETE /api/v1/session", s.authed(s.deleteSession))
		mux.HandleFunc("POST /api/v1/session/token", s.sameOriginOnly(s.createTokenSession))
		mux.Handle("GET /api/v1/users/{name}/tokens", s.admin(s.listUserTokens))
		mux.Handle("POST /api/v1/users/{name}/tokens", s.admin(s.createUserToken))
		mux.Handle("DELETE /api/v1/users/{name}/tokens/{id}", s.admin(s.deleteUserToken))
	}
	mux.Handle("GET /api/v1/account", s.authed(s.account))
	mux.Handle("GET /api/v1/audit", s.admin(s.listAudit))
	mux.Handle("GET /api/v1/stats/history", s.authed(s.statsHistory))
	mux.Handle("GET /api/v1/clients", s.admin(s.clients))
	mux.Handle("GET /api/v1/stats", s.authed(s.stats))
	s.mountCompat(mux)
	if cfg.Web != nil {
		mux.Handle("/", cfg.Web)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, s.Logger, r, Errorf(http.StatusNotFound, api.CodeNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return securityHeaders(recoverPanics(s.Logger, mux)), mux.patterns
}

// routeMux is a ServeMux that remembers the patterns registered on it.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// recoverPanics turns a handler panic into a JSON 500 and a log line, never
// a dropped connection or a stack trace sent to the client.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeError(w, log, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type handler func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error

func (s *server) authed(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil {
			if ok, wait := s.perUser.allow(p.User); !ok {
				err = tooMany("requests", wait)
			}
		}
		if err == nil {
			s.Clients.Seen(p.User, r.RemoteAddr)
			err = h(w, r, p)
		}
		if err != nil {
			writeError(w, s.Logger, r, err)
		}
	})
}

func (s *server) admin(h handler) http.Handler {
	return s.authed(func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		if !p.IsAdmin() {
			return ErrNotAdmin
		}
		return h(w, r, p)
	})
}

func (s *server) authenticate(r *http.Request) (*auth.Principal, error) {
	token, fromCookie := credentials(r)
	if token == "" {
		return nil, ErrNoAuth
	}
	p, err := s.Auth.Authenticate(r.Context(), token)
	if errors.Is(err, auth.ErrTokenExpired) {
		return nil, ErrExpired
	}
	if errors.Is(err, auth.ErrUnauthenticated) {
		return nil, ErrNoAuth
	}
	if err == nil && fromCookie && !csrfOK(r) {
		return nil, Errorf(http.StatusForbidden, api.CodeForbidden, "missing or wrong %s header", csrfHeader)
	}
	return p, err
}

// decode reads a JSON body strictly: size-capped, unknown fields refused,
// one value only.
func (s *server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "request body over %d bytes", s.MaxBodyBytes)
		}
		return Errorf(http.StatusBadRequest, api.CodeInvalidJSON, "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(http.StatusBadRequest, api.CodeInvalidJSON, "malformed JSON: trailing data after the object")
	}
	return nil
}

func (s *server) submit(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req api.JobRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	wait, timeout, err := s.waitParams(r)
	if err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 128 {
		return Errorf(http.StatusBadRequest, api.CodeBadRequest, "Idempotency-Key is over 128 bytes")
	}
	job, err := s.Service.Submit(r.Context(), p, &req, key)
	if err != nil {
		return err
	}
	if !wait {
		writeJSON(w, http.StatusCreated, job)
		return nil
	}
	return s.waitAndWrite(w, r, p, job, timeout)
}

// waitParams reads ?wait=true&timeout=30s (a Go duration or seconds).
func (s *server) waitParams(r *http.Request) (bool, time.Duration, error) {
	q := r.URL.Query()
	wait := false
	if v := q.Get("wait"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, 0, Errorf(http.StatusBadRequest, api.CodeBadRequest, "wait must be true or false")
		}
		wait = b
	}
	timeout := 30 * time.Second
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			secs, ferr := strconv.ParseFloat(v, 64)
			if ferr != nil {
				return false, 0, Errorf(http.StatusBadRequest, api.CodeBadRequest, "timeout must be a duration such as 30s")
			}
			d = time.Duration(secs * float64(time.Second))
		}
		if d < 0 {
			return false, 0, Errorf(http.StatusBadRequest, api.CodeBadRequest, "timeout must not be negative")
		}
		timeout = min(d, s.MaxWait)
	}
	return wait, timeout, nil
}

// waitAndWrite answers 200 with the finished job, or 201 with its current
// state when the timeout passes first.
func (s *server) waitAndWrite(w http.ResponseWriter, r *http.Request, p *auth.Principal, job *api.Job, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if !job.Terminal() {
		events, unsubscribe, err := s.Service.Subscribe(ctx, p, job.ID, false)
		if err != nil {
			return err
		}
		// The end may come with the final job, which then need not be
		// read back.
		var final *api.Job
		func() {
			defer unsubscribe()
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						return
					}
					if ev.Type == "end" && ev.Job != nil {
						final = ev.Job
					}
				case <-ctx.Done():
					return
				}
			}
		}()
		if r.Context().Err() != nil {
			return nil // the client went away
		}
		if final != nil {
			job = final
		} else {
			fresh, err := s.Service.Job(r.Context(), p, job.ID)
			if err != nil {
				return err
			}
			job = fresh
		}
	}
	status := http.StatusCreated
	if job.Terminal() {
		status = http.StatusOK
	}
	writeJSON(w, status, job)
	return nil
}

func (s *server) getJob(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	job, err := s.Service.Job(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	wait, timeout, err := s.waitParams(r)
	if err != nil {
		return err
	}
	if wait {
		return s.waitAndWrite(w, r, p, job, timeout)
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

func (s *server) cancel(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	job, err := s.Service.Cancel(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

func (s *server) languages(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	langs := s.Service.Languages(r.Context())
	if langs == nil {
		langs = []api.Language{}
	}
	writeJSON(w, http.StatusOK, api.LanguageList{Languages: langs,
		Limits: &api.LimitRange{Default: s.Compat.DefaultLimits, Max: s.Compat.MaxLimits}})
	return nil
}

func (s *server) workers(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ws := s.Service.Workers(r.Context())
	if ws == nil {
		ws = []api.Worker{}
	}
	writeJSON(w, http.StatusOK, api.WorkerList{Workers: ws})
	return nil
}

func (s *server) drain(drain bool) handler {
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		wk, err := s.Service.Drain(r.Context(), r.PathValue("name"), drain)
		if err != nil {
			return err
		}
		s.audit(r, p.User, map[bool]string{true: "worker.drain", false: "worker.undrain"}[drain], wk.Name, "")
		writeJSON(w, http.StatusOK, wk)
		return nil
	}
}

func (s *server) revokeWorker(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.Service.RevokeWorker(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	s.audit(r, p.User, "worker.revoke", r.PathValue("name"), "certificate revoked, worker disconnected")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) workerIdentities(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ids, err := s.Service.WorkerIdentities(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.WorkerIdentityList{Identities: ids})
	return nil
}

func (s *server) rotateJoinToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	tok, err := s.Service.RotateJoinToken(r.Context(), p)
	if err != nil {
		return err
	}
	s.audit(r, p.User, "join-token.rotate", "", "")
	writeJSON(w, http.StatusOK, api.JoinToken{JoinToken: tok})
	return nil
}

func (s *server) clients(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	counts, err := s.Service.OwnerJobs(r.Context())
	if err != nil {
		return err
	}
	list := s.Clients.List()
	out := api.ClientList{Clients: make([]api.Client, 0, len(list))}
	for _, c := range list {
		n := counts[c.User]
		out.Clients = append(out.Clients, api.Client{
			User: c.User, Address: c.Address, Since: c.Since.UTC(), LastSeen: c.LastSeen.UTC(),
			Requests: c.Requests, JobsTotal: n.Total, JobsRunning: n.Running, JobsQueued: n.Queued,
		})
	}
	sort.Slice(out.Clients, func(i, j int) bool {
		a, b := out.Clients[i], out.Clients[j]
		return a.User < b.User || (a.User == b.User && a.Address < b.Address)
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) stats(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	writeJSON(w, http.StatusOK, s.Service.Stats(r.Context()))
	return nil
}

func (s *server) cluster(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	c, err := s.Service.Cluster(r.Context())
	if err != nil {
		return err
	}
	c.Clients = s.Clients.Count()
	writeJSON(w, http.StatusOK, c)
	return nil
}
