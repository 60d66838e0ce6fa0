// Package judge0 serves the Judge0 CE API (judge0/judge0) over grappe's
// jobs, so that a Judge0 client configured with a grappe master's base URL
// plus /judge0 keeps working: submissions (one, batches, the caller's
// list, ?wait, ?fields, ?base64_encoded), languages under Judge0's stable
// ids, statuses, /about, /config_info, and /system_info, /statistics and
// /workers filled from the cluster. A submission is an ordinary grappe
// job of the caller and its token is the job's id.
//
// The shapes follow Judge0's source (app/controllers, serializers, the
// Submission model's validations): 422 with messages per field, 400 for
// unknown fields, 404 for an unknown token, statuses 1 to 14 decided from
// the job's verdict, signal and exit code as IsolateJob decides them.
package judge0

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/store"
)

// Backend is what the Judge0 API needs of the master.
type Backend interface {
	// Authenticate identifies the caller of r (and applies its rate
	// limits). Its errors carry the HTTP status to answer (StatusError).
	Authenticate(r *http.Request) (*auth.Principal, error)
	Submit(ctx context.Context, p *auth.Principal, req *api.JobRequest) (*api.Job, error)
	// Wait returns the job once it is terminal, or as it is when timeout
	// passes.
	Wait(ctx context.Context, p *auth.Principal, id string, timeout time.Duration) (*api.Job, error)
	// Job returns a job the caller may see; a StatusError 404 otherwise.
	Job(ctx context.Context, p *auth.Principal, id string) (*api.Job, error)
	Languages(ctx context.Context) []api.Language
	// OwnJobs is a page of the caller's own jobs, newest first, with
	// their requests, and how many the caller has in all.
	OwnJobs(ctx context.Context, p *auth.Principal, offset, limit int) ([]api.Job, int, error)
	// Workers lists the cluster's workers.
	Workers(ctx context.Context) []api.Worker
	// QueuedByLanguage counts the queued jobs of each language.
	QueuedByLanguage(ctx context.Context) (map[string]int, error)
	// TallyJobs counts all the cluster's jobs (it reads them all).
	TallyJobs(ctx context.Context, since time.Time) (*store.Tally, error)
	// SubmitBatch makes the jobs of subs all or none and returns their
	// ids in order. A refusal of one of them is an IndexedError.
	SubmitBatch(ctx context.Context, p *auth.Principal, subs []Submission) ([]string, error)
}

// Submission is one job to make, and how Judge0 shows it: its callback
// (the request's CallbackURL) is rendered with stderr in stdout when
// Redirect.
type Submission struct {
	Request  *api.JobRequest
	Redirect bool
}

// IndexedError is a batch refused for one of its submissions.
type IndexedError interface {
	error
	BatchIndex() int
}

// StatusError is implemented by the backend's errors that are the caller's
// fault: the HTTP status to answer with. Any other error is a 500.
type StatusError interface {
	HTTPStatus() int
}

// Config configures the handler.
type Config struct {
	Backend Backend
	// DefaultLimits and MaxLimits are the operator's, shown by
	// /config_info in Judge0's units.
	DefaultLimits, MaxLimits api.Limits
	// MaxBatch caps a batch's submissions (default 500).
	MaxBatch int
	// MaxWait bounds ?wait=true (default 5 minutes): the submission is
	// then answered as it is, In Queue or Processing.
	MaxWait time.Duration
	// MaxBodyBytes caps a request body (default 10 MiB).
	MaxBodyBytes int64
	// Version is grappe's, for /about.
	Version string
	Logger  *slog.Logger
}

type handler struct {
	Config
	stats statsCache
}

// New returns the Judge0 API's handler. It serves paths without the
// /judge0 prefix: mount it with http.StripPrefix.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 500
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 5 * time.Minute
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	h := &handler{Config: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /submissions", h.authed(h.create))
	mux.HandleFunc("GET /submissions", h.authed(h.index))
	mux.HandleFunc("GET /submissions/{token}", h.authed(h.show))
	mux.HandleFunc("DELETE /submissions/{token}", h.authed(h.destroy))
	mux.HandleFunc("POST /submissions/batch", h.authed(h.batchCreate))
	mux.HandleFunc("GET /submissions/batch", h.authed(h.batchShow))
	mux.HandleFunc("GET /languages", h.authed(h.languages))
	mux.HandleFunc("GET /languages/all", h.authed(h.allLanguages))
	mux.HandleFunc("GET /languages/{id}", h.authed(h.language))
	mux.HandleFunc("GET /statuses", h.authed(func(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
		writeJSON(w, http.StatusOK, statuses)
		return nil
	}))
	mux.HandleFunc("GET /about", h.authed(h.about))
	mux.HandleFunc("GET /version", h.authed(func(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, h.version())
		return nil
	}))
	mux.HandleFunc("GET /config_info", h.authed(func(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
		writeJSON(w, http.StatusOK, configInfo(h.DefaultLimits, h.MaxLimits, h.MaxBatch))
		return nil
	}))
	mux.HandleFunc("GET /system_info", h.authed(h.systemInfo))
	mux.HandleFunc("GET /statistics", h.authed(h.statistics))
	mux.HandleFunc("GET /workers", h.authed(h.workers))
	mux.HandleFunc("POST /authenticate", h.authed(func(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
		w.WriteHeader(http.StatusOK)
		return nil
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"status": 404, "error": "Not Found"})
	})
	return mux
}

func (h *handler) authed(next func(http.ResponseWriter, *http.Request, *auth.Principal) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.Backend.Authenticate(r)
		if err == nil {
			err = next(w, r, p)
		}
		if err != nil {
			h.writeError(w, r, err)
		}
	}
}

func (h *handler) version() string {
	if h.Version == "" {
		return "grappe"
	}
	return "grappe " + h.Version
}

func (h *handler) about(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"version":     h.version(),
		"homepage":    "https://github.com/grappe/grappe",
		"source_code": "https://github.com/grappe/grappe",
		"maintainer":  "the operator of this grappe cluster",
	})
	return nil
}

func (h *handler) languages(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	writeJSON(w, http.StatusOK, available(h.Backend.Languages(r.Context())))
	return nil
}

// allLanguages is /languages/all: every Judge0 id grappe knows, by name
// as Judge0 orders them, the ones no worker runs now archived.
func (h *handler) allLanguages(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	running := map[string]string{}
	for _, l := range h.Backend.Languages(r.Context()) {
		running[l.Name] = l.Version
	}
	type entry struct {
		ID         int    `json:"id"`
		Name       string `json:"name"`
		IsArchived bool   `json:"is_archived"`
	}
	out := make([]entry, 0, len(languages))
	for _, l := range languages {
		version, ok := running[l.Grappe]
		out = append(out, entry{ID: l.ID, Name: l.name(version), IsArchived: !ok})
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) language(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	id, err := strconv.Atoi(r.PathValue("id"))
	l, ok := languageByID(id)
	if err != nil || !ok {
		return notFound()
	}
	version := ""
	for _, have := range h.Backend.Languages(r.Context()) {
		if have.Name == l.Grappe {
			version = have.Version
		}
	}
	d := detail(l, version)
	d.IsArchived = version == ""
	writeJSON(w, http.StatusOK, d)
	return nil
}

// queryBool reads a boolean query parameter the way Judge0 does: only
// "true" is true.
func queryBool(r *http.Request, name string) bool { return r.URL.Query().Get(name) == "true" }

func (h *handler) fields(r *http.Request) ([]string, error) {
	fields, invalid := requestedFields(r.URL.Query().Get("fields"))
	if len(invalid) > 0 {
		return nil, &httpError{status: http.StatusBadRequest, body: map[string]any{"error": "invalid fields: [" + strings.Join(invalid, ", ") + "]"}}
	}
	return fields, nil
}

func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	// Judge0 clients send JSON, some without saying so: the body is read
	// as JSON whatever its Content-Type.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBodyBytes))
	if err != nil {
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, body: map[string]any{"error": fmt.Sprintf("request body over %d bytes", h.MaxBodyBytes)}}
	}
	return body, nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	fields, err := h.fields(r)
	if err != nil {
		return err
	}
	b64 := queryBool(r, "base64_encoded")
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	token, job, errs, err := h.submit(r.Context(), p, body, b64)
	if err != nil {
		return err
	}
	if errs != nil {
		writeJSON(w, http.StatusUnprocessableEntity, errs)
		return nil
	}
	if !queryBool(r, "wait") {
		writeJSON(w, http.StatusCreated, map[string]string{"token": token})
		return nil
	}
	if job, err = h.Backend.Wait(r.Context(), p, job.ID, h.MaxWait); err != nil {
		return err
	}
	_, redirect := parseToken(token)
	out, err := render(job, token, redirect, b64, fields)
	if err != nil {
		writeJSON(w, http.StatusCreated, map[string]string{"error": err.Error(), "token": token})
		return nil
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// submit validates one submission and makes its job. A refusal is
// returned as Judge0's per-field errors.
func (h *handler) submit(ctx context.Context, p *auth.Principal, body json.RawMessage, b64 bool) (string, *api.Job, fieldErrors, error) {
	sub, errs, err := parseSubmission(body, b64)
	if err != nil {
		return "", nil, nil, &httpError{status: http.StatusBadRequest, body: map[string]any{"error": err.Error()}}
	}
	if errs != nil {
		return "", nil, errs, nil
	}
	if sub.req.CallbackURL != "" {
		// The job and its callback are made together: a batch of one.
		ids, err := h.Backend.SubmitBatch(ctx, p, []Submission{{Request: sub.req, Redirect: sub.redirect}})
		if refused(err) {
			return "", nil, domainFieldErrors(err), nil
		}
		if err != nil {
			return "", nil, nil, err
		}
		return tokenOf(ids[0], sub.redirect), &api.Job{ID: ids[0]}, nil, nil
	}
	job, err := h.Backend.Submit(ctx, p, sub.req)
	if refused(err) {
		return "", nil, domainFieldErrors(err), nil
	}
	if err != nil {
		return "", nil, nil, err
	}
	return tokenOf(job.ID, sub.redirect), job, nil, nil
}

// refused reports whether err is the backend's refusal of a submission
// (422), which Judge0 answers per field.
func refused(err error) bool {
	var se StatusError
	return errors.As(err, &se) && se.HTTPStatus() == http.StatusUnprocessableEntity
}

// domainFieldErrors names the Judge0 attribute behind a grappe refusal.
func domainFieldErrors(err error) fieldErrors {
	msg := err.Error()
	field := "source_code"
	for _, m := range []struct{ grappe, judge0 string }{
		{"callback_url", "callback_url"},
		{"limits.cpu_ms", "cpu_time_limit"},
		{"limits.wall_ms", "wall_time_limit"},
		{"limits.memory_mb", "memory_limit"},
		{"limits.processes", "max_processes_and_or_threads"},
		{"compile_args", "compiler_options"},
		{"args", "command_line_arguments"},
		{"files", "additional_files"},
		{"stdin", "stdin"},
		{"language", "language_id"},
	} {
		if strings.Contains(msg, m.grappe) {
			field = m.judge0
			break
		}
	}
	return fieldErrors{field: {msg}}
}

func (h *handler) show(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	fields, err := h.fields(r)
	if err != nil {
		return err
	}
	token := r.PathValue("token")
	id, redirect := parseToken(token)
	job, err := h.Backend.Job(r.Context(), p, id)
	if err != nil {
		return err
	}
	out, err := render(job, token, redirect, queryBool(r, "base64_encoded"), fields)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return nil
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) batchCreate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	b64 := queryBool(r, "base64_encoded")
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var in struct {
		Submissions []json.RawMessage `json:"submissions"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return &httpError{status: http.StatusBadRequest, body: map[string]any{"error": "malformed JSON: " + err.Error()}}
	}
	if err := h.checkBatchSize(len(in.Submissions)); err != nil {
		return err
	}
	// Each submission is answered with its token or its errors, in
	// order, as Judge0 does; the valid ones are one grappe batch.
	out := make([]any, len(in.Submissions))
	subs := make([]*parsed, len(in.Submissions))
	var pending []int
	for i, raw := range in.Submissions {
		sub, errs, err := parseSubmission(raw, b64)
		switch {
		case err != nil:
			out[i] = map[string]any{"error": err.Error()}
		case errs != nil:
			out[i] = errs
		default:
			subs[i] = sub
			pending = append(pending, i)
		}
	}
	// A submission the master refuses leaves the batch, which is tried
	// again without it: at most one round per submission.
	for len(pending) > 0 {
		batch := make([]Submission, len(pending))
		for k, i := range pending {
			batch[k] = Submission{Request: subs[i].req, Redirect: subs[i].redirect}
		}
		ids, err := h.Backend.SubmitBatch(r.Context(), p, batch)
		var ie IndexedError
		if refused(err) && errors.As(err, &ie) && ie.BatchIndex() >= 0 && ie.BatchIndex() < len(pending) {
			k := ie.BatchIndex()
			out[pending[k]] = domainFieldErrors(err)
			pending = append(pending[:k], pending[k+1:]...)
			continue
		}
		if err != nil {
			return err
		}
		for k, i := range pending {
			out[i] = map[string]string{"token": tokenOf(ids[k], subs[i].redirect)}
		}
		break
	}
	status := http.StatusCreated
	if len(pending) == 0 {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, out)
	return nil
}

func (h *handler) checkBatchSize(n int) error {
	switch {
	case n > h.MaxBatch:
		return &httpError{status: http.StatusBadRequest, body: map[string]any{"error": fmt.Sprintf("number of submissions in a batch should be less than or equal to %d", h.MaxBatch)}}
	case n == 0:
		return &httpError{status: http.StatusBadRequest, body: map[string]any{"error": "there should be at least one submission in a batch"}}
	}
	return nil
}

func (h *handler) batchShow(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	fields, err := h.fields(r)
	if err != nil {
		return err
	}
	list := r.Header.Get("tokens")
	if list == "" {
		list = r.URL.Query().Get("tokens")
	}
	var tokens []string
	for _, t := range strings.Split(strings.TrimSpace(list), ",") {
		if t != "" {
			tokens = append(tokens, t)
		}
	}
	if err := h.checkBatchSize(len(tokens)); err != nil {
		return err
	}
	b64 := queryBool(r, "base64_encoded")
	out := make([]any, 0, len(tokens))
	for _, token := range tokens {
		id, redirect := parseToken(token)
		job, err := h.Backend.Job(r.Context(), p, id)
		var se StatusError
		if errors.As(err, &se) && se.HTTPStatus() == http.StatusNotFound {
			out = append(out, nil) // Judge0 answers null for a token it does not know
			continue
		}
		if err != nil {
			return err
		}
		sub, err := render(job, token, redirect, b64, fields)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter"})
			return nil
		}
		out = append(out, sub)
	}
	writeJSON(w, http.StatusOK, map[string]any{"submissions": out})
	return nil
}

// httpError is an answer of this package: a status and its JSON body.
type httpError struct {
	status int
	body   any
}

func (e *httpError) Error() string   { return fmt.Sprintf("HTTP %d: %v", e.status, e.body) }
func (e *httpError) HTTPStatus() int { return e.status }

func notFound() error {
	return &httpError{status: http.StatusNotFound, body: map[string]any{"status": 404, "error": "Not Found"}}
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if errors.As(err, &he) {
		writeJSON(w, he.status, he.body)
		return
	}
	var se StatusError
	if !errors.As(err, &se) {
		h.Logger.Error("judge0 API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		return
	}
	status := se.HTTPStatus()
	switch status {
	case http.StatusNotFound:
		writeJSON(w, status, map[string]any{"status": 404, "error": "Not Found"})
		return
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
