package clustertest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/openapi/openapitest"
)

// specClient calls a real master and holds every answer to the OpenAPI
// document: its status and content type must be documented for the
// operation and its JSON body must validate. It remembers which
// operations it saw answer, so that the test can tell which it never
// exercised.
type specClient struct {
	raw *rawClient
	doc *openapitest.Document

	mu  sync.Mutex
	hit map[string]bool // operationId
}

// req is one call: a token ("" for none), headers, a body.
type req struct {
	token  string
	header map[string]string
	body   string
}

// do calls method path, fails the test unless the answer has status want
// and matches the document, and returns the answer.
func (s *specClient) do(t *testing.T, method, path string, r req, want int) (http.Header, []byte) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
		if want < 300 {
			// What the test sends as valid must be valid for the
			// document too.
			if err := s.doc.CheckRequest(method, strings.SplitN(path, "?", 2)[0], []byte(r.body)); err != nil {
				t.Errorf("request: %v", err)
			}
		}
	}
	hreq, err := http.NewRequest(method, s.raw.c.Master.URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.body != "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		hreq.Header.Set(k, v)
	}
	resp, err := s.raw.http.Do(hreq)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var b []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// (After a 101 the connection is another protocol's: a
		// WebSocket upgrade is checked by its status and headers.)
		if b, err = io.ReadAll(resp.Body); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	s.check(t, method, path, resp, b)
	return resp.Header, b
}

func (s *specClient) check(t *testing.T, method, path string, resp *http.Response, body []byte) {
	t.Helper()
	op, err := s.doc.CheckResponse(method, strings.SplitN(path, "?", 2)[0], resp.StatusCode, resp.Header.Get("Content-Type"), body)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	s.mu.Lock()
	s.hit[op.ID] = true
	s.mu.Unlock()
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, name, data string }

// events reads a job's event stream to its end, checking the answer, each
// event's data (the Event schema) and each id (ATTEMPT:END).
func (s *specClient) events(t *testing.T, path string, r req) []sseEvent {
	t.Helper()
	hreq, err := http.NewRequest("GET", s.raw.c.Master.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Authorization", "Bearer "+r.token)
	for k, v := range r.header {
		hreq.Header.Set(k, v)
	}
	resp, err := s.raw.http.Do(hreq)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	s.check(t, "GET", strings.SplitN(path, "?", 2)[0], resp, nil)
	var (
		out []sseEvent
		ev  sseEvent
	)
	idRE := regexp.MustCompile(`^[0-9]+:[0-9]+$`)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name == "" {
				continue
			}
			if err := s.doc.CheckSchema("Event", []byte(ev.data)); err != nil {
				t.Errorf("event %s: %v", ev.name, err)
			}
			var typ struct{ Type string }
			if json.Unmarshal([]byte(ev.data), &typ); typ.Type != ev.name {
				t.Errorf("event %s carries type %q", ev.name, typ.Type)
			}
			out = append(out, ev)
			if ev.name == "end" {
				return out
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
			if !idRE.MatchString(ev.id) {
				t.Errorf("event id %q is not ATTEMPT:END", ev.id)
			}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Errorf("unexpected line in the event stream: %q", line)
		}
	}
	t.Fatalf("the event stream of %s ended without an end event (%v): %v", path, sc.Err(), out)
	return nil
}

// TestOpenAPIResponses exercises every operation of api/openapi.yaml on a
// real master with a real worker, successes and the errors that are easy
// to cause, and validates every answer against the document. An
// operation of the document that the test never saw answer fails it.
func TestOpenAPIResponses(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.Start(t, clustertest.Options{
		Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 3}},
		Master:  func(cfg *master.Config) { cfg.MaxBodyBytes = 64 << 10 },
	})
	c.WaitLanguage("python")
	s := &specClient{raw: newRaw(t, c), doc: doc, hit: map[string]bool{}}
	admin := req{token: c.Token}
	withBody := func(r req, body string) req { r.body = body; return r }

	t.Run("operations", func(t *testing.T) {
		s.do(t, "GET", "/healthz", req{}, 200)
		h, _ := s.do(t, "GET", "/api/v1/openapi.json", req{}, 200)
		s.do(t, "GET", "/api/v1/openapi.json", req{header: map[string]string{"If-None-Match": h.Get("ETag")}}, 304)
		s.do(t, "GET", "/metrics", admin, 200)
		s.do(t, "GET", "/metrics", req{}, 401)
	})

	var userToken string
	t.Run("users, tokens, sessions", func(t *testing.T) {
		s.do(t, "POST", "/api/v1/users", withBody(admin, `{"username":"alice","password":"correct horse alice"}`), 201)
		s.do(t, "POST", "/api/v1/users", withBody(admin, `{"username":"alice","password":"correct horse alice"}`), 409)
		s.do(t, "POST", "/api/v1/users", withBody(admin, `{"username":"bob","password":"correct horse bob","role":"king"}`), 422)
		s.do(t, "POST", "/api/v1/users", withBody(admin, `{"username":"bob",`), 400)
		s.do(t, "GET", "/api/v1/users", admin, 200)
		_, b := s.do(t, "POST", "/api/v1/login", withBody(req{}, `{"username":"alice","password":"correct horse alice"}`), 200)
		var login struct{ Token string }
		if err := json.Unmarshal(b, &login); err != nil || login.Token == "" {
			t.Fatalf("login: %s", b)
		}
		userToken = login.Token
		user := req{token: userToken}
		s.do(t, "GET", "/api/v1/users", user, 403)
		s.do(t, "POST", "/api/v1/login", withBody(req{}, `{"username":"alice","password":"wrong"}`), 401)

		_, b = s.do(t, "POST", "/api/v1/tokens", withBody(user, `{"name":"ci","expires_at":"2099-01-01T00:00:00Z"}`), 201)
		var tok struct{ ID, Token string }
		json.Unmarshal(b, &tok)
		s.do(t, "GET", "/api/v1/tokens", req{token: tok.Token}, 200)
		s.do(t, "DELETE", "/api/v1/tokens/"+tok.ID, user, 204)
		s.do(t, "DELETE", "/api/v1/tokens/"+tok.ID, user, 404)
		s.do(t, "GET", "/api/v1/tokens", req{token: tok.Token}, 401)

		// An admin's hand on a user's tokens; a session from a token.
		_, b = s.do(t, "POST", "/api/v1/users/alice/tokens", withBody(admin, `{"name":"made-by-admin"}`), 201)
		var made struct{ ID, Token string }
		json.Unmarshal(b, &made)
		s.do(t, "GET", "/api/v1/users/alice/tokens", admin, 200)
		s.do(t, "GET", "/api/v1/users/alice/tokens", user, 403)
		s.do(t, "POST", "/api/v1/session/token", withBody(req{}, `{"token":"`+made.Token+`"}`), 200)
		s.do(t, "POST", "/api/v1/session/token", withBody(req{}, `{"token":"grp_not-a-token"}`), 401)
		s.do(t, "DELETE", "/api/v1/users/alice/tokens/"+made.ID, admin, 204)
		s.do(t, "DELETE", "/api/v1/users/alice/tokens/"+made.ID, admin, 404)
		s.do(t, "GET", "/api/v1/account", user, 200)
		s.do(t, "GET", "/api/v1/account", req{}, 401)

		h, b := s.do(t, "POST", "/api/v1/session", withBody(req{}, `{"username":"alice","password":"correct horse alice"}`), 200)
		var cookies []string
		for _, sc := range (&http.Response{Header: h}).Cookies() {
			cookies = append(cookies, sc.Name+"="+sc.Value)
		}
		var sess struct {
			CSRF string `json:"csrf_token"`
		}
		json.Unmarshal(b, &sess)
		cookie := map[string]string{"Cookie": strings.Join(cookies, "; ")}
		s.do(t, "GET", "/api/v1/session", req{header: cookie}, 200)
		s.do(t, "DELETE", "/api/v1/session", req{header: cookie}, 403) // no CSRF token
		cookie["X-CSRF-Token"] = sess.CSRF
		s.do(t, "DELETE", "/api/v1/session", req{header: cookie}, 204)
		s.do(t, "GET", "/api/v1/session", req{header: cookie}, 401)

		s.do(t, "PUT", "/api/v1/users/alice/password", withBody(admin, `{"password":"correct horse alice 2"}`), 204)
		s.do(t, "PUT", "/api/v1/users/nobody/password", withBody(admin, `{"password":"correct horse nobody"}`), 404)
		// The password change revoked alice's login token.
		_, b = s.do(t, "POST", "/api/v1/login", withBody(req{}, `{"username":"alice","password":"correct horse alice 2"}`), 200)
		json.Unmarshal(b, &login)
		userToken = login.Token
		s.do(t, "PUT", "/api/v1/users/alice/password", withBody(req{token: userToken}, `{"password":"x"}`), 422)
	})
	user := req{token: userToken}

	submit := func(t *testing.T, query, body string, want int) map[string]any {
		t.Helper()
		_, b := s.do(t, "POST", "/api/v1/jobs"+query, withBody(user, body), want)
		var job map[string]any
		if err := json.Unmarshal(b, &job); err != nil {
			t.Fatal(err)
		}
		return job
	}

	var sleeper string
	t.Run("jobs", func(t *testing.T) {
		done := submit(t, "?wait=true", `{"language":"python","source":"import sys\nprint(input())\nsys.stderr.write('e')","stdin":"hi","expected_output":"hi"}`, 200)
		if done["status"] != "done" || done["verdict"] != "ok" {
			t.Fatalf("job: %v", done)
		}
		id := done["id"].(string)
		submit(t, "?wait=true", `{"language":"python","source":"import sys\nsys.stdout.buffer.write(bytes([255, 0]))"}`, 200)
		submit(t, "?wait=true", `{"language":"python","source":"print(input())","tests":[{"stdin":"a","expected_output":"a"},{"stdin":"b","expected_output":"c"}]}`, 200)
		submit(t, "?wait=true", `{"language":"python","source":"while True: pass","limits":{"cpu_ms":300,"wall_ms":2000}}`, 200)
		submit(t, "?wait=true", `{"language":"python","files":[{"name":"main.py","content":"cHJpbnQoMSk=","encoding":"base64"}],"args":["x"],"priority":1,"labels":{"k":"v"}}`, 200)
		if job := submit(t, "?wait=true", `{"language":"python","source":"print('x' * 5000)","limits":{"output_kb":1}}`, 200); job["verdict"] != "output_limit" {
			t.Fatalf("output limit: %v", job)
		}
		c.WaitLanguage("c")
		for _, src := range []string{programFor(t, "c").hello, programFor(t, "c").broken} {
			if job := submit(t, "?wait=true", mustJSON(map[string]any{"language": "c", "source": src, "compile_args": []string{"-O0"}}), 200); job["compile"] == nil {
				t.Fatalf("a C job without its compile step: %v", job)
			}
		}
		queued := submit(t, "", `{"language":"python","source":"print(1)"}`, 201)
		s.do(t, "GET", "/api/v1/jobs/"+queued["id"].(string)+"?wait=true", user, 200)

		sleeper = submit(t, "?wait=true&timeout=0.2", `{"language":"python","source":"import time\ntime.sleep(60)"}`, 201)["id"].(string)
		s.do(t, "GET", "/api/v1/jobs/"+sleeper+"?wait=true&timeout=100ms", user, 201)

		s.do(t, "POST", "/api/v1/jobs", withBody(user, `{"language":"python",`), 400)
		s.do(t, "POST", "/api/v1/jobs", withBody(user, `{"language":"python","sauce":"x"}`), 400)
		s.do(t, "POST", "/api/v1/jobs", withBody(user, `{"language":"cobol-2002","source":"x"}`), 422)
		s.do(t, "POST", "/api/v1/jobs", withBody(user, `{"language":"python","source":"x","limits":{"cpu_ms":999999999}}`), 422)
		s.do(t, "POST", "/api/v1/jobs", withBody(user, `{"language":"python","source":"`+strings.Repeat("x", 65<<10)+`"}`), 413)
		s.do(t, "POST", "/api/v1/jobs", req{body: `{"language":"python","source":"x"}`}, 401)
		s.do(t, "POST", "/api/v1/jobs?wait=perhaps", withBody(user, `{"language":"python","source":"x"}`), 400)

		s.do(t, "GET", "/api/v1/jobs", user, 200)
		s.do(t, "GET", "/api/v1/jobs?status=done&limit=2", admin, 200)
		s.do(t, "GET", "/api/v1/jobs?limit=0", user, 400)
		s.do(t, "GET", "/api/v1/jobs/"+id, user, 200)
		s.do(t, "GET", "/api/v1/jobs/"+id, req{}, 401)
		s.do(t, "GET", "/api/v1/jobs/no-such-job", user, 404)
		s.do(t, "GET", "/api/v1/jobs/"+id+"?timeout=soon", user, 400)
		s.do(t, "POST", "/api/v1/jobs/no-such-job/cancel", user, 404)

		// A batch: made, read, cancelled; a bad one refused whole.
		_, b := s.do(t, "POST", "/api/v1/batches", withBody(user, `{"jobs":[{"language":"python","source":"print(1)"},{"language":"python","source":"import time\ntime.sleep(60)"}]}`), 201)
		var batch struct{ ID string }
		if err := json.Unmarshal(b, &batch); err != nil || batch.ID == "" {
			t.Fatalf("batch: %s %v", b, err)
		}
		s.do(t, "GET", "/api/v1/batches/"+batch.ID, user, 200)
		s.do(t, "POST", "/api/v1/batches/"+batch.ID+"/cancel", user, 200)
		s.do(t, "GET", "/api/v1/batches/no-such-batch", user, 404)
		s.do(t, "POST", "/api/v1/batches", withBody(user, `{"jobs":[{"language":"python","source":"x"},{"language":"cobol-2002","source":"x"}]}`), 422)
		s.do(t, "POST", "/api/v1/batches", withBody(user, `{"jobs":[{"language":"python","source":"x","callback_url":"http://169.254.169.254/"}]}`), 422)
		s.do(t, "GET", "/api/v1/callback-secret", user, 200)
		s.do(t, "POST", "/api/v1/callback-secret/rotate", user, 200)
		s.do(t, "GET", "/api/v1/callback-secret", req{}, 401)

		// History: a cursor page, the filters, a bad filter.
		_, b = s.do(t, "GET", "/api/v1/jobs?limit=1", user, 200)
		var page struct{ Next string }
		if err := json.Unmarshal(b, &page); err != nil || page.Next == "" {
			t.Fatalf("a full page without next: %s %v", b, err)
		}
		s.do(t, "GET", "/api/v1/jobs?limit=1&before="+page.Next, user, 200)
		s.do(t, "GET", "/api/v1/jobs?language=python&verdict=ok&since=2020-01-01&until=2999-01-01&q=print", user, 200)
		s.do(t, "GET", "/api/v1/jobs?before=no-such-job", user, 400)
		s.do(t, "GET", "/api/v1/jobs?since=yesterday", user, 400)

		// A read-only link: made, read without a session, withdrawn.
		s.do(t, "GET", "/api/v1/jobs/"+id+"/share", user, 200)
		_, b = s.do(t, "POST", "/api/v1/jobs/"+id+"/share", user, 201)
		var share struct{ Token string }
		if err := json.Unmarshal(b, &share); err != nil || share.Token == "" {
			t.Fatalf("share: %s %v", b, err)
		}
		s.do(t, "GET", "/api/v1/jobs/"+id+"/share", user, 200)
		s.do(t, "GET", "/api/v1/shared/"+share.Token, req{}, 200)
		s.do(t, "DELETE", "/api/v1/jobs/"+id+"/share", user, 204)
		s.do(t, "DELETE", "/api/v1/jobs/"+id+"/share", user, 404)
		s.do(t, "GET", "/api/v1/shared/"+share.Token, req{}, 404)
		s.do(t, "POST", "/api/v1/jobs/no-such-job/share", user, 404)

		// An interactive job's WebSocket: a plain GET, a job that is not
		// interactive, then the upgrade (the job ends as the test leaves).
		s.do(t, "GET", "/api/v1/jobs/"+id+"/attach", user, 400)
		upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket",
			"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
		s.do(t, "GET", "/api/v1/jobs/"+id+"/attach", req{token: userToken, header: upgrade}, 409)
		live := submit(t, "", `{"language":"python","source":"print(input())","interactive":true}`, 201)
		s.do(t, "GET", "/api/v1/jobs/"+live["id"].(string)+"/attach", req{token: userToken, header: upgrade}, 101)
	})

	t.Run("events", func(t *testing.T) {
		job := submit(t, "", `{"language":"python","source":"import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.3)"}`, 201)
		path := "/api/v1/jobs/" + job["id"].(string) + "/events"
		evs := s.events(t, path, user)
		last, output := "", 0
		for _, ev := range evs {
			if ev.name == "output" {
				output++
			}
			if ev.id != "" {
				last = ev.id
			}
		}
		if evs[0].name != "state" || output == 0 || last == "" {
			t.Fatalf("events: %v", evs)
		}
		// Resumed after the last output: the state and the end again,
		// no output.
		for _, r := range []req{{token: userToken, header: map[string]string{"Last-Event-ID": last}}, user} {
			p := path
			if r.header == nil {
				p += "?last_event_id=" + last
			}
			for _, ev := range s.events(t, p, r) {
				if ev.name == "output" {
					t.Errorf("resumed after %s: output again: %v", last, ev)
				}
			}
		}
		s.do(t, "GET", "/api/v1/jobs/no-such-job/events", user, 404)
		_, b := s.do(t, "POST", "/api/v1/jobs/"+sleeper+"/cancel", user, 200)
		if !strings.Contains(string(b), `"cancelled"`) {
			t.Fatalf("cancel: %s", b)
		}
	})

	t.Run("cluster", func(t *testing.T) {
		for _, p := range []string{"/api/v1/languages", "/api/v1/cluster", "/api/v1/stats"} {
			s.do(t, "GET", p, user, 200)
		}
		for _, p := range []string{"/api/v1/workers", "/api/v1/worker-identities", "/api/v1/autoscaler", "/api/v1/clients"} {
			s.do(t, "GET", p, admin, 200)
			s.do(t, "GET", p, user, 403)
		}
		s.do(t, "POST", "/api/v1/workers/w1/drain", admin, 200)
		s.do(t, "POST", "/api/v1/workers/w1/undrain", admin, 200)
		s.do(t, "POST", "/api/v1/workers/no-such-worker/drain", admin, 404)
		s.do(t, "POST", "/api/v1/workers/w1/drain", user, 403)
		s.do(t, "POST", "/api/v1/join-token/rotate", admin, 200)
		s.do(t, "GET", "/api/v1/stats/history?minutes=60", user, 200)
		s.do(t, "GET", "/api/v1/stats/history?minutes=0", user, 400)
		s.do(t, "GET", "/api/v1/audit?action=user.&limit=5", admin, 200)
		s.do(t, "GET", "/api/v1/audit", user, 403)
		// Login attempts are throttled: the sixth quick wrong password
		// for one name is refused before it is checked.
		var status int
		for range 8 {
			hreq, _ := http.NewRequest("POST", c.Master.URL()+"/api/v1/login", strings.NewReader(`{"username":"mallory","password":"guess"}`))
			resp, err := s.raw.http.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			s.check(t, "POST", "/api/v1/login", resp, b)
			if status = resp.StatusCode; status == 429 {
				if resp.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				break
			}
		}
		if status != 429 {
			t.Errorf("login throttling: last status %d", status)
		}
	})

	t.Run("last: remove and revoke", func(t *testing.T) {
		s.do(t, "DELETE", "/api/v1/users/alice", admin, 204)
		s.do(t, "DELETE", "/api/v1/users/alice", admin, 404)
		s.do(t, "POST", "/api/v1/workers/w1/revoke", admin, 204)
		s.do(t, "POST", "/api/v1/workers/no-such-worker/revoke", admin, 404)
	})

	for _, op := range doc.Operations() {
		if !s.hit[op.ID] {
			t.Errorf("%s %s (%s) was never exercised: add it to this test", op.Method, op.Path, op.ID)
		}
	}
	if t.Failed() {
		var buf bytes.Buffer
		buf.WriteString("operations exercised:")
		for _, op := range doc.Operations() {
			if s.hit[op.ID] {
				buf.WriteString(" " + op.ID)
			}
		}
		t.Log(buf.String())
	}
}
