// Package piston serves the Piston v2 API (engineer-man/piston) over
// grappe's jobs, so that a Piston client pointed at a grappe master keeps
// working: GET /api/v2/runtimes, POST /api/v2/execute and GET
// /api/v2/packages. Every execution is an ordinary grappe job of the
// caller, placed on the cluster's workers and listed by `grappe jobs`.
//
// The answers follow Piston's source (api/src/api/v2.js and job.js), not
// only its documentation: errors are {"message": "..."}, a request that
// Piston would refuse is a 400, and a failed compile also answers as the
// run stage, as Piston does for its older clients.
package piston

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/attach"
	"github.com/grappe/grappe/internal/auth"
)

// Backend is what the Piston API needs of the master.
type Backend interface {
	// Authenticate identifies the caller of r (and applies its rate
	// limits). Its errors carry the HTTP status to answer (StatusError).
	Authenticate(r *http.Request) (*auth.Principal, error)
	Submit(ctx context.Context, p *auth.Principal, req *api.JobRequest) (*api.Job, error)
	// Wait returns the job once it is terminal, or as it is when timeout
	// passes.
	Wait(ctx context.Context, p *auth.Principal, id string, timeout time.Duration) (*api.Job, error)
	Languages(ctx context.Context) []api.Language
	// Attach connects the caller to its interactive job (/connect).
	Attach(ctx context.Context, p *auth.Principal, id string) (*attach.Session, error)
}

// StatusError is implemented by the backend's errors that are the caller's
// fault: the HTTP status to answer with. Any other error is a 500.
type StatusError interface {
	HTTPStatus() int
}

// Config configures the handler.
type Config struct {
	Backend Backend
	// Aliases returns the other names of a catalogue language (nil: none).
	Aliases func(language string) []string
	// MaxWait bounds how long an execute waits for its job (default 5
	// minutes); a job still queued or running then answers 504.
	MaxWait time.Duration
	// MaxBodyBytes caps a request body (default 10 MiB).
	MaxBodyBytes int64
	Logger       *slog.Logger
}

type handler struct {
	Config
}

// New returns the handler of /api/v2/.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 5 * time.Minute
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if cfg.Aliases == nil {
		cfg.Aliases = func(string) []string { return nil }
	}
	h := &handler{Config: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/runtimes", h.authed(h.runtimes))
	mux.HandleFunc("POST /api/v2/execute", h.authed(h.execute))
	mux.HandleFunc("GET /api/v2/packages", h.authed(h.packages))
	mux.HandleFunc("GET /api/v2/connect", h.authed(h.connect))
	mux.HandleFunc("POST /api/v2/packages", h.authed(h.managed))
	mux.HandleFunc("DELETE /api/v2/packages", h.authed(h.managed))
	mux.HandleFunc("/api/v2/", func(w http.ResponseWriter, r *http.Request) {
		writeMessage(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
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

// runtime is one entry of GET /api/v2/runtimes.
type runtime struct {
	Language string   `json:"language"`
	Version  string   `json:"version"`
	Aliases  []string `json:"aliases"`
	Runtime  string   `json:"runtime,omitempty"`
}

func (h *handler) runtimes(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	out := []runtime{}
	for _, l := range h.Backend.Languages(r.Context()) {
		// Piston's name first, grappe's among the aliases.
		name, aliases := pistonName(l.Name), []string{}
		if name != l.Name {
			aliases = append(aliases, l.Name)
		}
		for _, a := range h.Aliases(l.Name) {
			if a != name {
				aliases = append(aliases, a)
			}
		}
		// Piston lists one runtime per installed version.
		for _, v := range versions(l) {
			out = append(out, runtime{Language: name, Version: v, Aliases: aliases})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// pkg is one entry of GET /api/v2/packages.
type pkg struct {
	Language        string `json:"language"`
	LanguageVersion string `json:"language_version"`
	Installed       bool   `json:"installed"`
}

func (h *handler) packages(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	out := []pkg{}
	for _, l := range h.Backend.Languages(r.Context()) {
		for _, v := range versions(l) {
			out = append(out, pkg{Language: pistonName(l.Name), LanguageVersion: v, Installed: true})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// managed answers package installs and removals: a grappe worker runs the
// toolchains its machine has, so there is nothing to install through the
// API.
func (h *handler) managed(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	writeMessage(w, http.StatusForbidden, "packages are managed by the operator of this grappe cluster: the workers run the toolchains installed on their machines (see GET /api/v2/runtimes)")
	return nil
}

func (h *handler) execute(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	// Piston's npm client sends its JSON as text/plain: the body is
	// read as JSON whatever the Content-Type says.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBodyBytes))
	if err != nil {
		return &requestError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body over %d bytes", h.MaxBodyBytes)}
	}
	var in executeRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return &requestError{status: http.StatusBadRequest, msg: "malformed JSON: " + err.Error()}
	}
	req, rt, err := in.jobRequest(h.Backend.Languages(r.Context()), h.Aliases)
	if err != nil {
		return err
	}
	job, err := h.Backend.Submit(r.Context(), p, req)
	if err != nil {
		return err
	}
	job, err = h.Backend.Wait(r.Context(), p, job.ID, h.MaxWait)
	if err != nil {
		return err
	}
	if !job.Terminal() {
		return &requestError{status: http.StatusGatewayTimeout,
			msg: fmt.Sprintf("job %s did not finish within %s; it is still %s", job.ID, h.MaxWait, job.Status)}
	}
	writeJSON(w, http.StatusOK, result(job, rt))
	return nil
}

// requestError is an error of this package with the status to answer.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string   { return e.msg }
func (e *requestError) HTTPStatus() int { return e.status }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var se StatusError
	if !errors.As(err, &se) {
		h.Logger.Error("piston API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeMessage(w, http.StatusInternalServerError, "internal error")
		return
	}
	status := se.HTTPStatus()
	// grappe refuses an invalid job with a 422; Piston says 400 to
	// everything the caller got wrong in the request.
	if status == http.StatusUnprocessableEntity {
		status = http.StatusBadRequest
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeMessage(w, status, err.Error())
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
