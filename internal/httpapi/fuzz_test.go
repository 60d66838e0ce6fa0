package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/store"
)

// fakeService accepts every submission; the fuzzers test the HTTP layer.
type fakeService struct{ Service }

func (fakeService) Submit(ctx context.Context, p *auth.Principal, req *api.JobRequest, key string) (*api.Job, error) {
	return &api.Job{ID: "j", Owner: p.User, Language: req.Language, Status: api.StatusQueued}, nil
}

func (fakeService) Subscribe(ctx context.Context, p *auth.Principal, id string, events bool) (<-chan api.Event, func(), error) {
	ch := make(chan api.Event)
	close(ch)
	return ch, func() {}, nil
}

func (fakeService) Job(ctx context.Context, p *auth.Principal, id string) (*api.Job, error) {
	return &api.Job{ID: id, Owner: p.User, Status: api.StatusDone, Verdict: api.VerdictOK}, nil
}

type fakeAuth struct{}

func (fakeAuth) Authenticate(ctx context.Context, token string) (*auth.Principal, error) {
	if token == "good" {
		return &auth.Principal{User: "u", Role: auth.RoleUser}, nil
	}
	return nil, auth.ErrUnauthenticated
}

type fakeUsers struct{ users Users }

var _ Users = fakeUsers{}

func (fakeUsers) LoginFor(ctx context.Context, name, password string, ttl time.Duration) (string, time.Time, error) {
	if name == "u" && password == "right password" {
		return "good", time.Now().Add(time.Hour), nil
	}
	return "", time.Time{}, auth.ErrBadCredentials
}

func (fakeUsers) AddUser(ctx context.Context, name, password, role string) (*store.User, error) {
	return nil, auth.ErrInvalid
}
func (fakeUsers) Users(ctx context.Context) ([]*store.User, error)             { return nil, nil }
func (fakeUsers) RemoveUser(ctx context.Context, name string) error            { return auth.ErrNoUser }
func (fakeUsers) SetPassword(ctx context.Context, n, p string) error           { return auth.ErrNoUser }
func (fakeUsers) Tokens(ctx context.Context, u string) ([]*store.Token, error) { return nil, nil }
func (fakeUsers) DeleteToken(ctx context.Context, u, id string) error          { return auth.ErrNoToken }
func (fakeUsers) CreateToken(ctx context.Context, u, n string, exp time.Time) (*store.Token, string, error) {
	return nil, "", auth.ErrInvalid
}
func (fakeUsers) SessionFrom(ctx context.Context, secret string, ttl time.Duration) (*auth.Principal, string, time.Time, bool, error) {
	return nil, "", time.Time{}, false, auth.ErrUnauthenticated
}
func (fakeUsers) CheckPassword(ctx context.Context, name, password string) error {
	return auth.ErrBadCredentials
}

func fuzzServer() http.Handler {
	return New(Config{
		Service: fakeService{}, Auth: fakeAuth{}, Users: fakeUsers{},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxBodyBytes: 1 << 16,
		// The fuzzer sends thousands of requests a second.
		Limits: RateLimits{PerUser: 1e9, Burst: 1e9, LoginPerMinute: 1e9, LoginBurst: 1e9},
	})
}

// checkAnswer asserts the API's promise for any input: a status the
// endpoint can give and, for errors, the JSON error shape.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	ok := false
	for _, s := range allowed {
		ok = ok || rec.Code == s
	}
	if !ok {
		t.Fatalf("status %d not in %v: %s", rec.Code, allowed, rec.Body.String())
	}
	if rec.Code >= 400 {
		var eb api.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Fatalf("error body is not the JSON error shape: %q", rec.Body.String())
		}
	}
}

// go test -run '^$' -fuzz FuzzSubmitBody -fuzztime 30s ./internal/httpapi
func FuzzSubmitBody(f *testing.F) {
	for _, s := range []string{`{"language":"python","source":"1"}`, `{"language":`, `{}`, `[]`, "\x00", `{"a":1}`, `{"language":"c","files":[{"name":"a","content":"b"}]} {}`} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"language":"python","source":"1"}`), "wait=true&timeout=1ms")
	h := fuzzServer()
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		req := httptest.NewRequest("POST", "/api/v1/jobs", bytes.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer good")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, rec, 200, 201, 400, 413)
	})
}

// go test -run '^$' -fuzz FuzzLoginBody -fuzztime 30s ./internal/httpapi
func FuzzLoginBody(f *testing.F) {
	for _, s := range []string{`{"username":"u","password":"right password"}`, `{"username":"u","password":"x"}`, `{"username":`, `{"username":1}`, `""`, ``} {
		f.Add([]byte(s))
	}
	h := fuzzServer()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/api/v1/login", "/api/v1/session"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewReader(body)))
			checkAnswer(t, rec, 200, 400, 401, 413)
			if rec.Code == 200 {
				var lr api.LoginRequest
				if json.Unmarshal(body, &lr) != nil || lr.Password != "right password" {
					t.Fatalf("login succeeded for %q", body)
				}
			}
		}
	})
}
