package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/httpapi"
	"github.com/grappe/grappe/internal/store/sqlite"
)

// fakeService answers what the account routes ask of the master; any
// other method panics (nil embedded interface), which the API turns into
// a 500 the tests would see.
type fakeService struct {
	httpapi.Service
}

func (fakeService) OwnerJobs(ctx context.Context) (map[string]httpapi.OwnerJobs, error) {
	return map[string]httpapi.OwnerJobs{"bob": {Total: 7, Queued: 2, Running: 1}}, nil
}

type fakeHistory struct{ since time.Time }

func (f *fakeHistory) StatsHistory(ctx context.Context, since time.Time, step time.Duration) (*api.Stats, error) {
	f.since = since
	return &api.Stats{IntervalSeconds: int(step / time.Second), Points: []api.StatsPoint{{Time: since, Completed: 3}}}, nil
}

type env struct {
	t       *testing.T
	srv     *httptest.Server
	a       *auth.Authenticator
	history *fakeHistory
	admin   string // an admin's API token
	bob     string // a plain user's API token
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.New(sqlite.Config{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := auth.New(st, auth.Config{})
	ctx := context.Background()
	e := &env{t: t, a: a, history: &fakeHistory{}}
	for _, u := range []struct{ name, role string }{{"ada", auth.RoleAdmin}, {"bob", auth.RoleUser}} {
		if _, err := a.AddUser(ctx, u.name, u.name+"'s long password", u.role); err != nil {
			t.Fatal(err)
		}
	}
	_, e.admin, _ = a.CreateToken(ctx, "ada", "test", time.Time{})
	_, e.bob, _ = a.CreateToken(ctx, "bob", "test", time.Time{})
	h := httpapi.New(httpapi.Config{
		Service: fakeService{}, Auth: a, Users: a, Revoker: a, Audit: st, History: e.history,
		MaxQueuedPerUser: 50, Logger: slog.New(slog.DiscardHandler),
		Compat: httpapi.Compat{MaxLimits: api.Limits{CPUMs: 10000}},
	})
	e.srv = httptest.NewTLSServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// call sends a request with a bearer token (or the cookies of a session,
// with its CSRF token) and decodes a JSON answer into out.
func (e *env) call(method, path, token string, sess *session, body string, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if sess != nil {
		for _, c := range sess.cookies {
			req.AddCookie(c)
		}
		req.Header.Set("X-CSRF-Token", sess.csrf)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, b, err)
		}
	}
	if s, ok := out.(*session); ok {
		s.cookies = resp.Cookies()
	}
	return resp.StatusCode
}

type session struct {
	api.Session
	csrf    string
	cookies []*http.Cookie
}

func (e *env) tokenSession(secret string) (*session, int) {
	e.t.Helper()
	s := &session{}
	code := e.call("POST", "/api/v1/session/token", "", nil, `{"token":"`+secret+`"}`, s)
	s.csrf = s.CSRFToken
	return s, code
}

func TestSignInLinkSession(t *testing.T) {
	e := newEnv(t)
	if _, err := e.a.AddUser(context.Background(), "root", "root's long password", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	link, err := e.a.SignInLink("root", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s, code := e.tokenSession(link)
	if code != 200 || s.Username != "root" || s.Role != "admin" || s.csrf == "" {
		t.Fatalf("session from the link: %d %+v", code, s.Session)
	}
	var who api.Session
	if code := e.call("GET", "/api/v1/session", "", s, "", &who); code != 200 || who.Username != "root" {
		t.Fatalf("GET /session with the link's session: %d %+v", code, who)
	}
	var body api.ErrorBody
	if _, code := e.tokenSession(link); code != 401 {
		t.Fatalf("the link used twice: %d, want 401", code)
	}
	if code := e.call("POST", "/api/v1/session/token", "", nil, `{"token":"`+link+`"}`, &body); code != 401 || !strings.Contains(body.Error.Message, "used already") {
		t.Fatalf("the link used again: %d %+v", code, body)
	}
	// An API token makes a session too, of its user.
	if s, code := e.tokenSession(e.bob); code != 200 || s.Username != "bob" || s.Role != "user" {
		t.Fatalf("session from an API token: %d %+v", code, s.Session)
	}
	for _, bad := range []string{`{"token":""}`, `{"token":"grp_nothing"}`, `{"tok":"x"}`, `[`} {
		if code := e.call("POST", "/api/v1/session/token", "", nil, bad, &body); code < 400 || code >= 500 {
			t.Errorf("POST /session/token %s: %d", bad, code)
		}
	}
}

func TestChangeOwnPasswordNeedsTheCurrentOne(t *testing.T) {
	e := newEnv(t)
	s, code := e.tokenSession(e.bob)
	if code != 200 {
		t.Fatal(code)
	}
	var body api.ErrorBody
	if code := e.call("PUT", "/api/v1/users/bob/password", "", s, `{"password":"a brand new password"}`, &body); code != 422 || !strings.Contains(body.Error.Message, "current password") {
		t.Fatalf("without the current password: %d %+v", code, body)
	}
	if code := e.call("PUT", "/api/v1/users/bob/password", "", s, `{"password":"a brand new password","current_password":"wrong"}`, &body); code != 403 {
		t.Fatalf("with a wrong current password: %d %+v", code, body)
	}
	if code := e.call("PUT", "/api/v1/users/bob/password", "", s, `{"password":"a brand new password","current_password":"bob's long password"}`, nil); code != 204 {
		t.Fatalf("with the current password: %d", code)
	}
	if _, err := e.a.Login(context.Background(), "bob", "a brand new password"); err != nil {
		t.Fatalf("the new password does not work: %v", err)
	}
	// Not another user's, and an admin resets anyone's without it.
	if code := e.call("PUT", "/api/v1/users/ada/password", e.bob, nil, `{"password":"stolen password"}`, nil); code != 403 {
		t.Fatalf("bob sets ada's password: %d", code)
	}
	if code := e.call("PUT", "/api/v1/users/bob/password", e.admin, nil, `{"password":"reset by the admin"}`, nil); code != 204 {
		t.Fatalf("admin resets bob's password: %d", code)
	}
}

func TestAdminManagesTokensOfUsers(t *testing.T) {
	e := newEnv(t)
	var tok api.APIToken
	if code := e.call("POST", "/api/v1/users/bob/tokens", e.admin, nil, `{"name":"for bob"}`, &tok); code != 201 || tok.Token == "" {
		t.Fatalf("create: %d %+v", code, tok)
	}
	if p, err := e.a.Authenticate(context.Background(), tok.Token); err != nil || p.User != "bob" {
		t.Fatalf("the new token: %+v %v", p, err)
	}
	var list api.APITokenList
	if code := e.call("GET", "/api/v1/users/bob/tokens", e.admin, nil, "", &list); code != 200 || len(list.Tokens) != 2 {
		t.Fatalf("list: %d %+v", code, list)
	}
	for _, tk := range list.Tokens {
		if tk.Token != "" {
			t.Fatal("a listed token shows its secret")
		}
	}
	if code := e.call("GET", "/api/v1/users/nobody/tokens", e.admin, nil, "", nil); code != 404 {
		t.Fatalf("tokens of an unknown user: %d", code)
	}
	// A web session opened with the token, which its revocation ends.
	web, code := e.tokenSession(tok.Token)
	if code != 200 || web.Username != "bob" {
		t.Fatalf("session from bob's token: %d %+v", code, web.Session)
	}
	if code := e.call("GET", "/api/v1/session", "", web, "", nil); code != 200 {
		t.Fatalf("GET /session with the token's session: %d", code)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/users/ada/tokens", ""},
		{"POST", "/api/v1/users/ada/tokens", `{"name":"x"}`},
		{"DELETE", "/api/v1/users/bob/tokens/" + tok.ID, ""},
		{"GET", "/api/v1/audit", ""},
	} {
		if code := e.call(c.method, c.path, e.bob, nil, c.body, nil); code != 403 {
			t.Errorf("bob: %s %s: %d, want 403", c.method, c.path, code)
		}
	}
	if code := e.call("DELETE", "/api/v1/users/ada/tokens/"+tok.ID, e.admin, nil, "", nil); code != 404 {
		t.Fatalf("revoke bob's token as ada's: %d, want 404", code)
	}
	if code := e.call("DELETE", "/api/v1/users/bob/tokens/"+tok.ID, e.admin, nil, "", nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if _, err := e.a.Authenticate(context.Background(), tok.Token); err == nil {
		t.Fatal("the revoked token still works")
	}
	if code := e.call("GET", "/api/v1/session", "", web, "", nil); code != 401 {
		t.Fatalf("the session of a revoked token: GET /session %d, want 401", code)
	}
}

func TestAuditLog(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/api/v1/users", e.admin, nil, `{"username":"carol","password":"carol's password","role":"user"}`, nil)
	e.call("POST", "/api/v1/login", "", nil, `{"username":"carol","password":"wrong"}`, nil)
	e.call("POST", "/api/v1/login", "", nil, `{"username":"carol","password":"carol's password"}`, nil)
	e.call("DELETE", "/api/v1/users/carol", e.admin, nil, "", nil)
	var list api.AuditList
	if code := e.call("GET", "/api/v1/audit", e.admin, nil, "", &list); code != 200 {
		t.Fatal(code)
	}
	var got []string
	for _, en := range list.Entries {
		got = append(got, en.Actor+":"+en.Action+":"+en.Target)
	}
	if want := "ada:user.remove:carol carol:login:carol :login.failed:carol ada:user.add:carol"; strings.Join(got, " ") != want {
		t.Fatalf("audit log: %q, want %q", strings.Join(got, " "), want)
	}
	if en := list.Entries[0]; en.Addr != "127.0.0.1" || time.Since(en.Time) > time.Minute {
		t.Errorf("entry %+v: no address or time", en)
	}
	list = api.AuditList{}
	e.call("GET", "/api/v1/audit?action=user.&limit=1", e.admin, nil, "", &list)
	if len(list.Entries) != 1 || list.Entries[0].Action != "user.remove" || list.NextBefore == 0 {
		t.Fatalf("first page of user.: %+v", list)
	}
	next := list.NextBefore
	list = api.AuditList{}
	e.call("GET", "/api/v1/audit?action=user.&limit=1&before="+itoa(next), e.admin, nil, "", &list)
	if len(list.Entries) != 1 || list.Entries[0].Action != "user.add" {
		t.Fatalf("second page of user.: %+v", list)
	}
	for _, q := range []string{"limit=0", "limit=x", "before=-1", "since=yesterday", "q=" + strings.Repeat("x", 300)} {
		if code := e.call("GET", "/api/v1/audit?"+q, e.admin, nil, "", nil); code != 400 {
			t.Errorf("?%s: %d, want 400", q, code)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestAccountAndHistory(t *testing.T) {
	e := newEnv(t)
	var acc api.Account
	if code := e.call("GET", "/api/v1/account", e.bob, nil, "", &acc); code != 200 {
		t.Fatal(code)
	}
	if acc.Username != "bob" || acc.MaxQueuedJobs != 50 || acc.JobsQueued != 2 || acc.JobsTotal != 7 || acc.MaxLimits.CPUMs != 10000 || acc.RequestsPerSecond == 0 {
		t.Fatalf("account: %+v", acc)
	}
	var st api.Stats
	if code := e.call("GET", "/api/v1/stats/history?minutes=360", e.bob, nil, "", &st); code != 200 || st.IntervalSeconds != 60 || len(st.Points) != 1 {
		t.Fatalf("history: %d %+v", code, st)
	}
	if d := time.Since(e.history.since); d < 6*time.Hour-time.Minute || d > 6*time.Hour+time.Minute {
		t.Fatalf("6 hours asked, history since %v ago", d)
	}
	for _, q := range []string{"minutes=0", "minutes=abc", "minutes=100000"} {
		if code := e.call("GET", "/api/v1/stats/history?"+q, e.bob, nil, "", nil); code != 400 {
			t.Errorf("?%s: %d, want 400", q, code)
		}
	}
	if code := e.call("GET", "/api/v1/account", "", nil, "", nil); code != 401 {
		t.Fatalf("account without a token: %d", code)
	}
}

// A page of another site cannot log the browser in (login CSRF): the
// routes that set the session cookies refuse what a browser says comes
// from elsewhere, and take what comes from the master's own pages or from
// clients that are not browsers.
func TestLoginFromAnotherSiteRefused(t *testing.T) {
	e := newEnv(t)
	post := func(path, body string, header map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	own := strings.TrimPrefix(e.srv.URL, "https://")
	token := `{"token":"` + e.bob + `"}`
	password := `{"username":"bob","password":"bob's long password"}`
	for _, c := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"another origin", map[string]string{"Origin": "https://evil.example"}, 403},
		{"a null origin", map[string]string{"Origin": "null"}, 403},
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"the master's own page", map[string]string{"Origin": "https://" + own, "Sec-Fetch-Site": "same-origin"}, 200},
		{"no browser", nil, 200},
	} {
		if got := post("/api/v1/session/token", token, c.header); got != c.want {
			t.Errorf("session/token, %s: %d, want %d", c.name, got, c.want)
		}
		if got := post("/api/v1/session", password, c.header); got != c.want {
			t.Errorf("session, %s: %d, want %d", c.name, got, c.want)
		}
	}
}
