package clustertest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
)

// rawClient speaks HTTP to the master without the SDK, to send what the SDK
// never would.
type rawClient struct {
	c     *clustertest.Cluster
	http  *http.Client
	token string
}

func newRaw(t *testing.T, c *clustertest.Cluster) *rawClient {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.Master.CAPEM()) {
		t.Fatal("bad CA PEM")
	}
	return &rawClient{c: c, token: c.Token, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}}
}

func (r *rawClient) do(t *testing.T, method, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.c.Master.URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func jobCount(t *testing.T, c *clustertest.Cluster) int {
	cl, err := c.Client.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range cl.Jobs {
		n += v
	}
	return n
}

func TestBadInput(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	raw := newRaw(t, c)
	huge := `{"language":"python","source":"` + strings.Repeat("x", 11<<20) + `"}`
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"malformed JSON", `{"language":`, 400, api.CodeInvalidJSON},
		{"not an object", `[1,2]`, 400, api.CodeInvalidJSON},
		{"trailing data", `{"language":"python","source":"1"} {}`, 400, api.CodeInvalidJSON},
		{"unknown field", `{"language":"python","source":"1","sourcecode":"x"}`, 400, api.CodeInvalidJSON},
		{"wrong type", `{"language":"python","source":1}`, 400, api.CodeInvalidJSON},
		{"oversized body", huge, 413, api.CodeTooLarge},
		{"unknown language", `{"language":"cobol-2099","source":"x"}`, 422, api.CodeUnknownLanguage},
		{"missing language", `{"source":"x"}`, 422, api.CodeInvalid},
		{"missing source", `{"language":"python"}`, 422, api.CodeInvalid},
		{"parent dir name", `{"language":"c","files":[{"name":"../x.c","content":"int main(){}"}]}`, 422, api.CodeInvalid},
		{"nested parent dir", `{"language":"c","files":[{"name":"a/../../x.c","content":"int main(){}"}]}`, 422, api.CodeInvalid},
		{"absolute name", `{"language":"c","files":[{"name":"/etc/passwd","content":"x"}]}`, 422, api.CodeInvalid},
		{"empty name", `{"language":"c","files":[{"name":"","content":"x"}]}`, 422, api.CodeInvalid},
		{"NUL in name", `{"language":"c","files":[{"name":"a\u0000b.c","content":"x"}]}`, 422, api.CodeInvalid},
		{"backslash name", `{"language":"c","files":[{"name":"..\\x.c","content":"x"}]}`, 422, api.CodeInvalid},
		{"duplicate names", `{"language":"c","files":[{"name":"a.c","content":"x"},{"name":"a.c","content":"y"}]}`, 422, api.CodeInvalid},
		{"bad base64", `{"language":"c","files":[{"name":"a.c","content":"!!!","encoding":"base64"}]}`, 422, api.CodeInvalid},
		{"bad encoding", `{"language":"c","files":[{"name":"a.c","content":"x","encoding":"rot13"}]}`, 422, api.CodeInvalid},
		{"negative limit", `{"language":"python","source":"1","limits":{"cpu_ms":-1}}`, 422, api.CodeInvalid},
		{"limit over max", `{"language":"python","source":"1","limits":{"memory_mb":999999}}`, 422, api.CodeInvalid},
		{"NUL in args", `{"language":"python","source":"1","args":["a\u0000"]}`, 422, api.CodeInvalid},
		{"priority out of range", `{"language":"python","source":"1","priority":1000000}`, 422, api.CodeInvalid},
		{"too many attempts", `{"language":"python","source":"1","max_attempts":99}`, 422, api.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := jobCount(t, c)
			status, body := raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(tc.body))
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %.200s", status, tc.status, body)
			}
			var eb api.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != tc.code || eb.Error.Message == "" {
				t.Fatalf("error body %.300s, want code %q with a message", body, tc.code)
			}
			if strings.Contains(string(body), "goroutine") || strings.Contains(string(body), ".go:") {
				t.Fatalf("error body leaks internals: %.300s", body)
			}
			if after := jobCount(t, c); after != before {
				t.Fatalf("a refused submission stored a job (%d → %d)", before, after)
			}
		})
	}
}

func TestAuthAndRouting(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	raw := newRaw(t, c)
	for _, tc := range []struct {
		name, token, method, path string
		status                    int
	}{
		{"no token", "", "GET", "/api/v1/jobs", 401},
		{"wrong token", "grp_nope", "GET", "/api/v1/jobs", 401},
		{"huge token", strings.Repeat("a", 5000), "GET", "/api/v1/jobs", 401},
		{"health needs none", "", "GET", "/healthz", 200},
		{"unknown job", c.Token, "GET", "/api/v1/jobs/does-not-exist", 404},
		{"unknown endpoint", c.Token, "GET", "/api/v1/nope", 404},
		{"bad status filter", c.Token, "GET", "/api/v1/jobs?status=weird", 400},
		{"bad limit", c.Token, "GET", "/api/v1/jobs?limit=0", 400},
		{"bad wait", c.Token, "GET", "/api/v1/jobs/x?wait=maybe", 404},
		{"cancel unknown", c.Token, "POST", "/api/v1/jobs/nope/cancel", 404},
		{"workers as admin", c.Token, "GET", "/api/v1/workers", 200},
		{"metrics need a token", "", "GET", "/metrics", 401},
		{"metrics as admin", c.Token, "GET", "/metrics", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw.token = tc.token
			status, body := raw.do(t, tc.method, tc.path, nil)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %.200s", status, tc.status, body)
			}
			if status >= 400 {
				var eb api.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
					t.Fatalf("error body is not the JSON error shape: %.200s", body)
				}
			}
		})
	}
}

func TestPlainHTTPRefused(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + c.Master.Addr() + "/healthz")
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP on the TLS port answered 200")
		}
	}
}

func TestCancel(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	ctx := context.Background()
	running, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "sleep 30"})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo never"})
	if err != nil {
		t.Fatal(err)
	}
	c.Eventually(10*time.Second, "first job running", func() bool {
		j, err := c.Client.Job(ctx, running.ID)
		return err == nil && j.Status == api.StatusRunning
	})
	j, err := c.Client.Job(ctx, queued.ID)
	if err != nil || j.Status != api.StatusQueued || j.QueuePosition != 1 {
		t.Fatalf("second job: %+v %v, want queued at position 1", j, err)
	}
	if j, err = c.Client.Cancel(ctx, queued.ID); err != nil || j.Status != api.StatusCancelled {
		t.Fatalf("cancel queued: %+v %v", j, err)
	}
	start := time.Now()
	if j, err = c.Client.Cancel(ctx, running.ID); err != nil || j.Status != api.StatusCancelled {
		t.Fatalf("cancel running: %+v %v", j, err)
	}
	// The worker kills it and its slot frees within a second or so.
	c.Eventually(3*time.Second, "slot freed", func() bool {
		ws := c.Master.Workers(ctx)
		return len(ws) == 1 && ws[0].Running == 0
	})
	t.Logf("running job's slot freed %v after the cancel", time.Since(start).Round(time.Millisecond))
	next := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo next"})
	if next.Run == nil || next.Run.Stdout != "next\n" {
		t.Fatalf("job after cancels: %+v", next)
	}
	// The cancelled jobs stay cancelled: the late result is ignored and
	// the queued one never ran.
	for _, id := range []string{running.ID, queued.ID} {
		j, err := c.Client.Job(ctx, id)
		if err != nil || j.Status != api.StatusCancelled || j.Run != nil {
			t.Fatalf("job %s after the dust settled: %+v %v", id, j, err)
		}
	}
	// Cancelling a finished job changes nothing.
	if j, err = c.Client.Cancel(ctx, next.ID); err != nil || j.Status != api.StatusDone {
		t.Fatalf("cancel finished: %+v %v", j, err)
	}
}

func TestEventsStream(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo one; sleep 0.5; echo two >&2; sleep 0.5; echo three"})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var out bytes.Buffer
	var final *api.Job
	err = c.Client.Events(ctx, job.ID, func(ev api.Event) error {
		types = append(types, ev.Type)
		switch ev.Type {
		case "output":
			fmt.Fprintf(&out, "%s:%s", ev.Stream, ev.Data)
		case "end":
			final = ev.Job
		}
		return nil
	})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	if final == nil || final.Status != api.StatusDone || clustertest.RunOf(t, final).Stdout != "one\nthree\n" {
		t.Fatalf("end event job %+v", final)
	}
	if got := out.String(); got != "stdout:one\nstderr:two\nstdout:three\n" {
		t.Fatalf("streamed output %q (events %v)", got, types)
	}
	if types[0] != "state" || types[len(types)-1] != "end" {
		t.Fatalf("event types %v, want state first and end last", types)
	}
}

func TestWaitTimeoutAnswersCurrentState(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	raw := newRaw(t, c)
	start := time.Now()
	status, body := raw.do(t, "POST", "/api/v1/jobs?wait=true&timeout=300ms", strings.NewReader(`{"language":"bash","source":"sleep 5"}`))
	if status != 201 {
		t.Fatalf("status %d, want 201 for an unfinished job: %s", status, body)
	}
	var j api.Job
	if err := json.Unmarshal(body, &j); err != nil || j.Terminal() {
		t.Fatalf("job %s: %v", body, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("wait with a 300ms timeout took %v", took)
	}
}

func TestIdempotencyKey(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	raw := newRaw(t, c)
	post := func(key string) api.Job {
		req, _ := http.NewRequest("POST", c.Master.URL()+"/api/v1/jobs", strings.NewReader(`{"language":"bash","source":"echo once"}`))
		req.Header.Set("Authorization", "Bearer "+c.Token)
		req.Header.Set("Idempotency-Key", key)
		resp, err := raw.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var j api.Job
		if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != 201 {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		return j
	}
	before := jobCount(t, c)
	a, b := post("retry-me"), post("retry-me")
	if a.ID == "" || a.ID != b.ID {
		t.Fatalf("the same key gave jobs %q and %q", a.ID, b.ID)
	}
	if other := post("another"); other.ID == a.ID {
		t.Fatal("a different key returned the same job")
	}
	if after := jobCount(t, c); after != before+2 {
		t.Fatalf("%d jobs stored for two keys", after-before)
	}
}

func TestLateEventStreamReplaysOutput(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo early; echo err >&2; sleep 1; echo late"})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, c, job.ID)
	time.Sleep(300 * time.Millisecond) // "early" is out before we connect
	// stdout and stderr are separate pipes: only the order inside each
	// stream is defined.
	out := map[string]string{}
	err = c.Client.Events(ctx, job.ID, func(ev api.Event) error {
		if ev.Type == "output" {
			out[ev.Stream] += ev.Data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["stdout"] != "early\nlate\n" || out["stderr"] != "err\n" {
		t.Fatalf("a late stream saw %q", out)
	}
}

func TestGoCompileArgsRefused(t *testing.T) {
	// Compile flags come from a per-language allow-list: go's -toolexec
	// (or gcc's -wrapper) would run a program of the job's own.
	c := clustertest.Start(t, clustertest.Options{})
	raw := newRaw(t, c)
	status, body := raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(`{"language":"go","source":"package main\nfunc main(){}","compile_args":["-toolexec=/box/evil"]}`))
	if status != 422 || !strings.Contains(string(body), "compile_args[0]") {
		t.Fatalf("go compile_args: %d %s, want 422", status, body)
	}
	status, body = raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(`{"language":"c","source":"int main(){}","compile_args":["-O2","-wrapper","/bin/sh,-c,touch /tmp/x"]}`))
	if status != 422 || !strings.Contains(string(body), "compile_args[1]") {
		t.Fatalf("gcc -wrapper: %d %s, want 422", status, body)
	}
	status, body = raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(`{"language":"c","files":[{"name":"-x.c","content":"int main(){}"}]}`))
	if status != 422 {
		t.Fatalf("file -x.c: %d %s, want 422", status, body)
	}
	// Go's cache is no longer shared writable: its safe flags are taken.
	status, body = raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(`{"language":"go","source":"package main\nfunc main(){}","compile_args":["-tags=grappe"]}`))
	if status != 201 {
		t.Fatalf("go -tags: %d %s, want 201", status, body)
	}
	status, body = raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(`{"language":"c","source":"int main(){return X;}","compile_args":["-DX=0"]}`))
	if status != 201 {
		t.Fatalf("c compile_args: %d %s, want 201", status, body)
	}
}

// TestWaitAnswersTheStoredJob: a ?wait=true answer, handed the finished job
// by the master rather than reading it back, is byte for byte what a GET of
// the job answers afterwards, for several waiters on one job too.
func TestWaitAnswersTheStoredJob(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	raw := newRaw(t, c)
	status, body := raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(`{"language":"bash","source":"sleep 0.5; echo out; echo err >&2; exit 3","stdin":"in"}`))
	if status != 201 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var j api.Job
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	waits := make(chan []byte, 3)
	for range 3 {
		go func() {
			status, body := raw.do(t, "GET", "/api/v1/jobs/"+j.ID+"?wait=true", nil)
			if status != 200 {
				t.Errorf("wait: %d %s", status, body)
			}
			waits <- body
		}()
	}
	var answers [][]byte
	for range 3 {
		answers = append(answers, <-waits)
	}
	status, got := raw.do(t, "GET", "/api/v1/jobs/"+j.ID, nil)
	if status != 200 {
		t.Fatalf("get: %d %s", status, got)
	}
	for _, a := range answers {
		if !bytes.Equal(a, got) {
			t.Errorf("?wait answered\n%s\nGET answers\n%s", a, got)
		}
	}
	var done api.Job
	if err := json.Unmarshal(got, &done); err != nil || done.Run == nil || done.Run.ExitCode != 3 || done.Run.Stdout != "out\n" {
		t.Errorf("finished job %s: %v", got, err)
	}
}
