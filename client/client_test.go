package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
)

// newServer starts a TLS server and a client trusting it.
func newServer(t *testing.T, h http.Handler) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Config{Addr: srv.URL, Token: "tok", CAPEM: serverCA(srv)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return srv, c
}

func serverCA(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}

func TestSubmit(t *testing.T) {
	var gotAuth, gotQuery string
	var gotReq api.JobRequest
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/jobs" {
			writeError(w, 404, api.CodeNotFound, "no route")
			return
		}
		gotAuth = r.Header.Get("Authorization")
		gotQuery = r.URL.RawQuery
		if err := json.NewDecoder(r.Body).Decode(&gotReq); err != nil {
			writeError(w, 400, api.CodeInvalidJSON, err.Error())
			return
		}
		status, job := http.StatusCreated, api.Job{ID: "j1", Status: api.StatusQueued, Language: gotReq.Language}
		if r.URL.Query().Get("wait") == "true" {
			status, job.Status, job.Verdict = http.StatusOK, api.StatusDone, api.VerdictOK
		}
		writeJSON(w, status, job)
	}))
	ctx := context.Background()
	job, err := c.Submit(ctx, &api.JobRequest{Language: "python", Source: "print(1)"})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID != "j1" || job.Status != api.StatusQueued || job.Language != "python" {
		t.Errorf("job = %+v", job)
	}
	if gotAuth != "Bearer tok" {
		t.Errorf("Authorization = %q", gotAuth)
	}
	if gotReq.Source != "print(1)" {
		t.Errorf("server got %+v", gotReq)
	}
	if gotQuery != "" {
		t.Errorf("query = %q, want none", gotQuery)
	}

	job, err = c.SubmitWait(ctx, &api.JobRequest{Language: "c"}, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !job.Terminal() || job.Verdict != api.VerdictOK {
		t.Errorf("job = %+v", job)
	}
	if gotQuery != "timeout=1m30s&wait=true" {
		t.Errorf("query = %q", gotQuery)
	}
}

func TestErrors(t *testing.T) {
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/jobs":
			writeError(w, http.StatusUnprocessableEntity, api.CodeUnknownLanguage, `unknown language "cobol"`)
		case "/api/v1/jobs/nope":
			writeError(w, http.StatusNotFound, api.CodeNotFound, "job nope not found")
		case "/api/v1/workers":
			writeError(w, http.StatusForbidden, api.CodeForbidden, "admins only")
		default:
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		}
	}))
	ctx := context.Background()

	_, err := c.Submit(ctx, &api.JobRequest{Language: "cobol"})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if e.Status != 422 || e.Code != api.CodeUnknownLanguage || e.Message != `unknown language "cobol"` {
		t.Errorf("err = %+v", e)
	}
	if !strings.Contains(err.Error(), "cobol") {
		t.Errorf("Error() = %q", err)
	}

	_, err = c.Job(ctx, "nope")
	if !IsNotFound(err) || IsForbidden(err) {
		t.Errorf("Job(nope) = %v, want not found", err)
	}
	_, err = c.Workers(ctx)
	if !IsForbidden(err) {
		t.Errorf("Workers = %v, want forbidden", err)
	}
	_, err = c.Languages(ctx)
	if !errors.As(err, &e) || e.Status != 502 || e.Code != api.CodeUnavailable || !strings.Contains(e.Message, "bad gateway") {
		t.Errorf("Languages = %#v", err)
	}
}

func TestUntrustedServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	c, err := New(Config{Addr: srv.URL}) // system roots: the test CA is not among them
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(context.Background()); err == nil || StatusCode(err) != 0 {
		t.Fatalf("Health against an untrusted server = %v, want a TLS error", err)
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, serverCA(srv), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = New(Config{Addr: strings.TrimPrefix(srv.URL, "https://"), CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(context.Background()); !IsNotFound(err) {
		t.Fatalf("Health with the CA = %v, want a 404 answer", err)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrNoAddr) {
		t.Errorf("no addr: %v", err)
	}
	if _, err := New(Config{Addr: "ftp://x"}); err == nil {
		t.Error("ftp scheme accepted")
	}
	if _, err := New(Config{Addr: "https://x", CAPEM: []byte("junk")}); err == nil {
		t.Error("junk CA accepted")
	}
	if _, err := New(Config{Addr: "https://x", CAFile: "/does/not/exist"}); err == nil {
		t.Error("missing CA file accepted")
	}
}

func TestListsAndUsers(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		switch r.Method + " " + r.URL.Path {
		case "GET /api/v1/jobs":
			writeJSON(w, 200, api.JobList{Jobs: []api.Job{{ID: "a"}, {ID: "b"}}})
		case "POST /api/v1/jobs/a b/cancel":
			w.WriteHeader(http.StatusNoContent)
		case "POST /api/v1/jobs/c/cancel":
			writeJSON(w, 200, api.Job{ID: "c", Status: api.StatusCancelled})
		case "GET /api/v1/languages":
			writeJSON(w, 200, api.LanguageList{Languages: []api.Language{{Name: "python", Version: "3.11"}}})
		case "GET /api/v1/workers":
			writeJSON(w, 200, api.WorkerList{Workers: []api.Worker{{Name: "w1", Sandbox: "none"}}})
		case "GET /api/v1/cluster":
			writeJSON(w, 200, api.Cluster{QueueDepth: 3})
		case "POST /api/v1/login":
			var in api.LoginRequest
			json.NewDecoder(r.Body).Decode(&in)
			if r.Header.Get("Authorization") != "" {
				t.Error("login sent a token")
			}
			if in.Username != "alice" || in.Password != "pw" {
				writeError(w, 401, api.CodeUnauthorized, "bad password")
				return
			}
			writeJSON(w, 200, api.LoginResponse{Token: "new-token"})
		case "POST /api/v1/users":
			var in api.UserRequest
			json.NewDecoder(r.Body).Decode(&in)
			writeJSON(w, 201, api.User{Username: in.Username, Role: in.Role})
		case "GET /api/v1/users":
			writeJSON(w, 200, api.UserList{Users: []api.User{{Username: "admin", Role: api.RoleAdmin}}})
		case "DELETE /api/v1/users/bob", "PUT /api/v1/users/bob/password":
			w.WriteHeader(http.StatusNoContent)
		default:
			writeError(w, 404, api.CodeNotFound, r.URL.Path)
		}
	}))
	ctx := context.Background()
	jobs, err := c.Jobs(ctx, "done", 5)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Jobs = %v, %v", jobs, err)
	}
	if j, err := c.Cancel(ctx, "a b"); err != nil || j != nil {
		t.Errorf("Cancel(a b) = %v, %v", j, err)
	}
	if j, err := c.Cancel(ctx, "c"); err != nil || j == nil || j.Status != api.StatusCancelled {
		t.Errorf("Cancel(c) = %v, %v", j, err)
	}
	if l, err := c.Languages(ctx); err != nil || len(l) != 1 || l[0].Name != "python" {
		t.Errorf("Languages = %v, %v", l, err)
	}
	if w, err := c.Workers(ctx); err != nil || len(w) != 1 || w[0].Sandbox != "none" {
		t.Errorf("Workers = %v, %v", w, err)
	}
	if cl, err := c.Cluster(ctx); err != nil || cl.QueueDepth != 3 {
		t.Errorf("Cluster = %v, %v", cl, err)
	}
	anon, err := New(Config{Addr: c.Addr(), HTTPClient: c.hc})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := anon.Login(ctx, "alice", "pw"); err != nil || tok != "new-token" {
		t.Errorf("Login = %q, %v", tok, err)
	}
	if _, err := anon.Login(ctx, "alice", "wrong"); !IsUnauthorized(err) {
		t.Errorf("Login with a wrong password = %v", err)
	}
	if err := c.AddUser(ctx, "bob", "pw", api.RoleUser); err != nil {
		t.Error(err)
	}
	if u, err := c.Users(ctx); err != nil || len(u) != 1 || u[0].Role != api.RoleAdmin {
		t.Errorf("Users = %v, %v", u, err)
	}
	if err := c.SetPassword(ctx, "bob", "pw2"); err != nil {
		t.Error(err)
	}
	if err := c.RemoveUser(ctx, "bob"); err != nil {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{
		"GET /api/v1/jobs?limit=5&status=done": true,
		"POST /api/v1/jobs/a%20b/cancel":       true,
	}
	for _, call := range calls {
		delete(want, call)
	}
	if len(want) > 0 {
		t.Errorf("calls %v lack %v", calls, want)
	}
}

func TestReadSSE(t *testing.T) {
	type ev struct{ name, id, data string }
	tests := []struct {
		name string
		in   string
		want []ev
	}{
		{"simple", "event: state\ndata: {}\n\n", []ev{{"state", "", "{}"}}},
		{"default name", "data: x\n\n", []ev{{"message", "", "x"}}},
		{"multi-line data", "data: a\ndata: b\ndata:c\n\n", []ev{{"message", "", "a\nb\nc"}}},
		{"comments and unknown fields", ": keep-alive\n\nretry: 10\nevent: end\ndata: {}\n\n", []ev{{"end", "", "{}"}}},
		{"CRLF", "event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n", []ev{{"a", "", "1"}, {"b", "", "2"}}},
		{"lone CR", "event: a\rdata: 1\r\r", []ev{{"a", "", "1"}}},
		{"no data, no event", "event: a\n\n", nil},
		{"unterminated event dropped", "data: 1\n\ndata: 2\n", []ev{{"message", "", "1"}}},
		{"colon in value", "data: {\"a\":\"b: c\"}\n\n", []ev{{"message", "", `{"a":"b: c"}`}}},
		{"name resets", "event: x\ndata: 1\n\ndata: 2\n\n", []ev{{"x", "", "1"}, {"message", "", "2"}}},
		{"the last id stays", "id: 1:5\ndata: a\n\ndata: b\n\nid: 2:0\ndata: c\n\n", []ev{{"message", "1:5", "a"}, {"message", "1:5", "b"}, {"message", "2:0", "c"}}},
		{"an id with NUL is ignored", "id: 1:5\ndata: a\n\nid: x\x00y\ndata: b\n\n", []ev{{"message", "1:5", "a"}, {"message", "1:5", "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []ev
			lines := 0
			err := readSSE(strings.NewReader(tt.in), func() { lines++ }, func(name, id string, data []byte) error {
				got = append(got, ev{name, id, string(data)})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if lines == 0 {
				t.Error("onLine never called")
			}
		})
	}
}

// sse writes events the way the master does.
func sse(w http.ResponseWriter, typ string, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
	w.(http.Flusher).Flush()
}

func TestEvents(t *testing.T) {
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("Accept = %q", r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		sse(w, "state", api.Event{Type: "state", Job: &api.Job{ID: "j", Status: api.StatusRunning}})
		fmt.Fprint(w, ": keep-alive\n\n")
		sse(w, "output", map[string]string{"stream": "stdout", "data": "hi\n"}) // no "type" in the JSON
		sse(w, "end", api.Event{Type: "end", Job: &api.Job{ID: "j", Status: api.StatusDone}})
		sse(w, "state", api.Event{Type: "state"}) // after end: never delivered
	}))
	var got []string
	err := c.Events(context.Background(), "j", func(ev api.Event) error {
		got = append(got, ev.Type+":"+ev.Data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[state: output:hi\n end:]"; fmt.Sprint(got) != want {
		t.Errorf("events %q, want %q", got, want)
	}

	stop := errors.New("stop")
	err = c.Events(context.Background(), "j", func(api.Event) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("Events = %v, want fn's error", err)
	}
}

func TestEventsNotAStream(t *testing.T) {
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.Job{})
	}))
	err := c.Events(context.Background(), "j", func(api.Event) error { return nil })
	if !errors.Is(err, ErrNotEventStream) {
		t.Fatalf("Events = %v, want ErrNotEventStream", err)
	}
}

// TestWaitStream: the event stream delivers the states and the final job.
func TestWaitStream(t *testing.T) {
	var gets atomic.Int32
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			w.Header().Set("Content-Type", "text/event-stream")
			sse(w, "state", api.Event{Type: "state", Job: &api.Job{ID: "j", Status: api.StatusQueued, QueuePosition: 2}})
			sse(w, "state", api.Event{Type: "state", Job: &api.Job{ID: "j", Status: api.StatusRunning, Worker: "w1"}})
			sse(w, "end", api.Event{Type: "end", Job: &api.Job{ID: "j", Status: api.StatusDone, Verdict: api.VerdictOK}})
			return
		}
		gets.Add(1)
		writeJSON(w, 200, api.Job{ID: "j", Status: api.StatusQueued})
	}))
	var states []string
	job, err := c.WaitFunc(context.Background(), "j", func(j *api.Job) { states = append(states, j.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != api.StatusDone || job.Verdict != api.VerdictOK {
		t.Errorf("job = %+v", job)
	}
	if fmt.Sprint(states) != "[queued running]" {
		t.Errorf("states = %v", states)
	}
	if gets.Load() != 0 {
		t.Errorf("%d polls while the stream worked", gets.Load())
	}
}

// TestWaitRetries: the master fails in every way a restart can look like
// (dropped connections, 503, a stream cut short), then recovers; Wait rides
// through and returns the finished job.
func TestWaitRetries(t *testing.T) {
	var n atomic.Int32
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		switch {
		case i <= 2: // the connection drops
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case i <= 4:
			writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "starting")
		case strings.HasSuffix(r.URL.Path, "/events"):
			// A stream cut short, before the job ends.
			w.Header().Set("Content-Type", "text/event-stream")
			sse(w, "state", api.Event{Type: "state", Job: &api.Job{ID: "j", Status: api.StatusRunning}})
		case i < 9:
			writeJSON(w, 200, api.Job{ID: "j", Status: api.StatusRunning})
		default:
			writeJSON(w, 200, api.Job{ID: "j", Status: api.StatusDone, Verdict: api.VerdictOK})
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, err := c.Wait(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != api.StatusDone {
		t.Errorf("job = %+v", job)
	}
}

// TestWaitAcrossRestart stops the master and starts a new one on the same
// address a little later.
func TestWaitAcrossRestart(t *testing.T) {
	var finished atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			writeError(w, 404, api.CodeNotFound, "no events here") // a master without streams: poll
			return
		}
		st := api.StatusRunning
		if finished.Load() {
			st = api.StatusDone
		}
		writeJSON(w, 200, api.Job{ID: "j", Status: st})
	})
	srv1 := httptest.NewTLSServer(h)
	addr := srv1.Listener.Addr().String()
	c, err := New(Config{Addr: srv1.URL, CAPEM: serverCA(srv1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	done := make(chan error, 1)
	var got *api.Job
	go func() {
		j, err := c.Wait(context.Background(), "j")
		got = j
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	srv1.CloseClientConnections()
	srv1.Close()
	time.Sleep(500 * time.Millisecond) // Wait meets connection refused meanwhile

	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	finished.Store(true)
	srv2 := httptest.NewUnstartedServer(h)
	srv2.Listener.Close()
	srv2.Listener = l
	srv2.StartTLS() // httptest servers share one certificate: the client still trusts it
	defer srv2.Close()

	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != api.StatusDone {
			t.Errorf("job = %+v", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not return after the master came back")
	}
}

func TestWaitStopsOnPermanentErrors(t *testing.T) {
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, 404, api.CodeNotFound, "no such job")
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Wait(ctx, "nope"); !IsNotFound(err) {
		t.Fatalf("Wait = %v, want not found", err)
	}
}

func TestWaitContext(t *testing.T) {
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, 503, api.CodeUnavailable, "down")
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(ctx, "j"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want the context's error", err)
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n < 20; n++ {
		d := backoff(n)
		if d < time.Duration(float64(pollMin)*0.8) || d > time.Duration(float64(retryMax)*1.2) {
			t.Errorf("backoff(%d) = %v out of range", n, d)
		}
	}
}

// TestFailover: with several masters' addresses, a request that cannot
// reach the one in use goes to the next, which then stays in use; with
// none reachable the error names each.
func TestFailover(t *testing.T) {
	down := httptest.NewTLSServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // its port now refuses connections
	var hits atomic.Int32
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, http.StatusOK, api.Job{ID: "j1", Status: api.StatusDone})
	}))
	t.Cleanup(up.Close)
	// Both test servers use the same certificate: one CA trusts either.
	c, err := New(Config{Addr: downURL + ", " + up.URL, Token: "tok", CAPEM: serverCA(up)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for range 2 {
		j, err := c.Job(context.Background(), "j1")
		if err != nil || j.ID != "j1" {
			t.Fatalf("Job through the second address: %+v %v", j, err)
		}
	}
	if c.Addr() != up.URL || hits.Load() != 2 {
		t.Fatalf("in use %s after %d answers, want %s and 2", c.Addr(), hits.Load(), up.URL)
	}

	only, err := New(Config{Addr: downURL + "," + downURL, CAPEM: serverCA(up)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(only.Close)
	if _, err := only.Job(context.Background(), "j1"); err == nil || strings.Count(err.Error(), "refused") < 2 {
		t.Fatalf("no master reachable: %v, want both refusals", err)
	}
}

// A submission refused with Retry-After (the master shedding load) is sent
// again after what the master asked for, not after the first backoff step.
func TestSubmitHonoursRetryAfter(t *testing.T) {
	var calls atomic.Int32
	var first, gap atomic.Int64 // unix nanoseconds, nanoseconds
	_, c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			first.Store(time.Now().UnixNano())
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "the master lags")
			return
		}
		gap.Store(time.Now().UnixNano() - first.Load())
		writeJSON(w, http.StatusCreated, api.Job{ID: "j1", Status: api.StatusQueued})
	}))
	if _, err := c.Submit(context.Background(), &api.JobRequest{Language: "python"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(gap.Load()); calls.Load() != 2 || d < time.Second || d > 1500*time.Millisecond {
		t.Fatalf("%d calls, the second %v after the first; want 2, 1s to 1.2s apart", calls.Load(), d)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {" 2 ", 2 * time.Second}, {"-1", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}
