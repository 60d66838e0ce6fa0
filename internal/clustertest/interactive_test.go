package clustertest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// greeter prompts for a name, reads a line and answers.
const greeter = `name = input("What is your name? ")
print("Hello, " + name + "!")
`

// wsConn is a test's WebSocket to the master.
type wsConn struct {
	t    *testing.T
	conn *websocket.Conn
	// onMessage, if set, sees the messages closeCode reads past.
	onMessage func(map[string]any)
}

// dialWS opens a WebSocket to path on c's master with token (none if
// empty); it returns the HTTP answer when the upgrade is refused.
func dialWS(t *testing.T, c *clustertest.Cluster, path, token string) (*wsConn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return dialWSWith(t, c, path, h)
}

// dialWSWith is dialWS with the request's headers given.
func dialWSWith(t *testing.T, c *clustertest.Cluster, path string, h http.Header) (*wsConn, *http.Response, error) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.Master.CAPEM()) {
		t.Fatal("bad CA PEM")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "wss://" + strings.TrimPrefix(c.Master.URL(), "https://") + path
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		HTTPHeader: h,
	})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &wsConn{t: t, conn: conn}, resp, nil
}

func (w *wsConn) send(v any) {
	w.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.conn.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("send %s: %v", b, err)
	}
}

// next reads one message, or returns the close error.
func (w *wsConn) next(timeout time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := w.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		w.t.Fatalf("message %q: %v", b, err)
	}
	return m, nil
}

// until reads messages until one of type typ, gathering the output text
// on the way; it fails the test at a close or after timeout.
func (w *wsConn) until(typ string, timeout time.Duration) (map[string]any, string) {
	w.t.Helper()
	var out strings.Builder
	deadline := time.Now().Add(timeout)
	for {
		m, err := w.next(time.Until(deadline))
		if err != nil {
			w.t.Fatalf("waiting for %q (output so far %q): %v", typ, out.String(), err)
		}
		if m["type"] == "output" || m["type"] == "data" {
			out.WriteString(m["data"].(string))
		}
		if m["type"] == typ {
			return m, out.String()
		}
	}
}

// closeCode reads until the server closes and returns its code.
func (w *wsConn) closeCode(timeout time.Duration) (websocket.StatusCode, string) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := w.next(time.Until(deadline))
		if err == nil {
			if w.onMessage != nil {
				w.onMessage(m)
			}
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			w.t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce.Code, ce.Reason
	}
}

func submitInteractive(t *testing.T, c *clustertest.Cluster, source string) *api.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j, err := c.Client.Submit(ctx, &api.JobRequest{Language: "python", Source: source, Interactive: true})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if !j.Interactive || j.Status != api.StatusQueued || len(j.Labels) != 0 {
		t.Fatalf("submitted %+v: want an interactive queued job, no labels", j)
	}
	return j
}

func TestInteractiveAttach(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 2}}})
	c.WaitLanguage("python")

	t.Run("prompt, answer, exit", func(t *testing.T) {
		j := submitInteractive(t, c, greeter)
		ws, _, err := dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		if m, _ := ws.until("attached", 10*time.Second); m["job"].(map[string]any)["id"] != j.ID {
			t.Fatalf("attached %v", m)
		}
		ws.until("stage", 30*time.Second)
		_, prompt := ws.until("output", 30*time.Second)
		for !strings.Contains(prompt, "What is your name? ") {
			_, more := ws.until("output", 30*time.Second)
			prompt += more
		}
		ws.send(map[string]string{"type": "stdin", "data": "Ada\n"})
		exit, out := ws.until("exit", 30*time.Second)
		if !strings.Contains(out, "Hello, Ada!") {
			t.Fatalf("output %q, want the answer", out)
		}
		if exit["status"] != "done" || exit["verdict"] != "ok" || exit["exit_code"] != 0.0 {
			t.Fatalf("exit %v", exit)
		}
		if code, _ := ws.closeCode(10 * time.Second); code != websocket.StatusNormalClosure {
			t.Fatalf("close code %d", code)
		}
		got, err := c.Client.Job(context.Background(), j.ID)
		if err != nil || got.Run == nil || got.Run.Stdout != "What is your name? Hello, Ada!\n" {
			t.Fatalf("stored job %+v, %v", got, err)
		}
	})

	t.Run("end of input and base64", func(t *testing.T) {
		j := submitInteractive(t, c, "import sys\ndata = sys.stdin.buffer.read()\nprint(len(data), data[-1])\n")
		ws, _, err := dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		ws.send(map[string]string{"type": "stdin", "data": "AAEC/w==", "encoding": "base64"}) // 4 bytes, the last 255
		ws.send(map[string]string{"type": "eof"})
		exit, out := ws.until("exit", 60*time.Second)
		if strings.TrimSpace(out) != "4 255" || exit["verdict"] != "ok" {
			t.Fatalf("output %q, exit %v", out, exit)
		}
	})

	t.Run("a signal", func(t *testing.T) {
		j := submitInteractive(t, c, "import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
		ws, _, err := dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		ws.until("output", 60*time.Second)
		ws.send(map[string]string{"type": "signal", "signal": "SIGBUS"}) // not a client's
		if m, _ := ws.until("error", 10*time.Second); !strings.Contains(m["message"].(string), "SIGINT") {
			t.Fatalf("refusal %v", m)
		}
		ws.send(map[string]string{"type": "signal", "signal": "SIGTERM"})
		exit, _ := ws.until("exit", 30*time.Second)
		if exit["verdict"] != "runtime_error" || exit["signal"] != "SIGTERM" {
			t.Fatalf("exit %v: want a runtime error by SIGTERM", exit)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		j := submitInteractive(t, c, greeter)
		path := "/api/v1/jobs/" + j.ID + "/attach"
		if _, resp, err := dialWS(t, c, path, ""); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no token: %v %v", resp, err)
		}
		if _, resp, err := dialWS(t, c, "/api/v1/jobs/0123456789abcdef0123456789abcdef/attach", c.Token); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("no such job: %v %v", resp, err)
		}
		plain, err := c.Client.SubmitWait(context.Background(), &api.JobRequest{Language: "python", Source: "print(1)"}, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, resp, err := dialWS(t, c, "/api/v1/jobs/"+plain.ID+"/attach", c.Token); err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
			t.Fatalf("not interactive: %v %v", resp, err)
		}
		first, _, err := dialWS(t, c, path, c.Token)
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		if _, resp, err := dialWS(t, c, path, c.Token); err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
			t.Fatalf("second attach: %v %v", resp, err)
		}
		ws := first
		ws.until("output", 60*time.Second)
		// A client that leaves ends its job.
		ws.conn.Close(websocket.StatusNormalClosure, "bye")
		var last *api.Job
		c.Eventually(30*time.Second, "the job ends when its client leaves", func() bool {
			got, err := c.Client.Job(context.Background(), j.ID)
			if err == nil {
				last = got
			}
			if got != nil && got.Terminal() && !(got.Status == api.StatusCancelled && strings.Contains(got.Error, "detached")) {
				t.Errorf("the job ended %s (%s), want cancelled because its client detached", got.Status, got.Error)
				return true
			}
			return err == nil && got.Status == api.StatusCancelled && strings.Contains(got.Error, "detached")
		})
		if last != nil && !last.Terminal() {
			t.Logf("last seen: %s %s", last.Status, last.Error)
		}
		// A message past the bound closes the connection, and ends the job.
		j = submitInteractive(t, c, greeter)
		ws, _, err = dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		// (The server may close before the client has written it all.)
		big, _ := json.Marshal(map[string]string{"type": "stdin", "data": strings.Repeat("x", 100<<10)})
		_ = ws.conn.Write(t.Context(), websocket.MessageText, big)
		var err2 error
		for err2 == nil {
			_, err2 = ws.next(10 * time.Second)
		}
		if websocket.CloseStatus(err2) != websocket.StatusMessageTooBig && !strings.Contains(err2.Error(), "closed") {
			t.Fatalf("after a 100 KiB message: %v, want a close (1009)", err2)
		}
		c.Eventually(30*time.Second, "the job ends with its connection", func() bool {
			got, err := c.Client.Job(context.Background(), j.ID)
			return err == nil && got.Terminal()
		})
		// The refusal of a job's submission: interactive jobs take no tests.
		_, err = c.Client.Submit(context.Background(), &api.JobRequest{Language: "python", Source: greeter, Interactive: true,
			Tests: []api.TestCase{{Stdin: "x"}}})
		if err == nil || !strings.Contains(err.Error(), "interactive") {
			t.Fatalf("interactive with tests: %v", err)
		}
	})
}

func TestInteractiveIdle(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{
		Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 1}},
		Master:  func(cfg *master.Config) { cfg.InteractiveIdle = time.Second },
	})
	c.WaitLanguage("python")
	j := submitInteractive(t, c, greeter)
	ws, _, err := dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	start := time.Now()
	exit, out := ws.until("exit", 30*time.Second)
	if !strings.Contains(out, "What is your name?") || exit["status"] != "cancelled" || !strings.Contains(exit["error"].(string), "idle") {
		t.Fatalf("output %q, exit %v: want the run ended as idle", out, exit)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("the idle run ended after %s", d)
	}

	// The wall-time limit still applies to a program waiting for input
	// (here the shorter of the two).
	j, err = c.Client.Submit(context.Background(), &api.JobRequest{Language: "python", Source: greeter, Interactive: true,
		Limits: api.Limits{WallMs: 500}})
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err = dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if exit, _ = ws.until("exit", 30*time.Second); exit["verdict"] != "time_limit" {
		t.Fatalf("exit %v: want the wall-time limit", exit)
	}
}

func TestInteractiveWithoutAttach(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 1}}})
	c.WaitLanguage("python")
	j := submitInteractive(t, c, greeter)
	var got *api.Job
	c.Eventually(30*time.Second, "an interactive job nobody attaches to fails", func() bool {
		var err error
		got, err = c.Client.Job(context.Background(), j.ID)
		return err == nil && got.Terminal()
	})
	if got.Status != api.StatusFailed || !strings.Contains(got.Error, "did not start within") || got.Attempts != 0 {
		t.Fatalf("job %+v: want failed for want of a client", got)
	}
	// Meanwhile the worker ran other jobs: the waiting one held no slot.
	plain, err := c.Client.SubmitWait(context.Background(), &api.JobRequest{Language: "python", Source: "print(2)"}, 30*time.Second)
	if err != nil || plain.Verdict != api.VerdictOK {
		t.Fatalf("a plain job: %+v, %v", plain, err)
	}
}

// With several masters, the job runs where its client attached: on a
// worker of that master, whichever master accepted the submission. A
// client attached to a master with no worker for it fails clearly.
func TestInteractiveSeveralMasters(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { interactiveSeveralMasters(t, nil) })
	t.Run("postgresql", func(t *testing.T) {
		url := postgresDatabase(t)
		interactiveSeveralMasters(t, func(c *master.Config) { c.Database = url })
	})
}

func interactiveSeveralMasters(t *testing.T, edit func(*master.Config)) {
	a := clustertest.Start(t, clustertest.Options{Master: edit, Workers: []clustertest.WorkerOptions{{Name: "wa", Slots: 1, Languages: []string{"python"}}}})
	b := a.AddMaster("b")
	b.AddWorker(clustertest.WorkerOptions{Name: "wb", Slots: 1, Languages: []string{"python"}})
	a.WaitLanguage("python")
	b.WaitLanguage("python")

	// Accepted by a, attached to b.
	j := submitInteractive(t, a, greeter)
	ws, _, err := dialWS(t, b, "/api/v1/jobs/"+j.ID+"/attach", b.Token)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	ws.until("output", 30*time.Second)
	ws.send(map[string]string{"type": "stdin", "data": "Lin\n"})
	exit, out := ws.until("exit", 30*time.Second)
	if !strings.Contains(out, "Hello, Lin!") || exit["verdict"] != "ok" || exit["job"].(map[string]any)["worker"] != "wb" {
		t.Fatalf("output %q, exit %v: want it run by b's worker", out, exit)
	}

	// A master without a python worker.
	c := a.AddMaster("c")
	j = submitInteractive(t, a, greeter)
	ws, _, err = dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	exit, _ = ws.until("exit", 30*time.Second)
	if exit["status"] != "failed" || !strings.Contains(exit["error"].(string), "did not start within") {
		t.Fatalf("exit %v: want a failure for want of a worker", exit)
	}
}

// An interactive run whose worker is lost fails, and is not run again.
func TestInteractiveWorkerLost(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "w1", Slots: 1, Proxied: true, Languages: []string{"python"}},
		{Name: "w2", Slots: 1, Proxied: true, Languages: []string{"python"}},
	}})
	c.WaitLanguage("python")
	// One worker is busy: the interactive job goes to the other, and
	// only that one is lost.
	busy, err := c.Client.Submit(context.Background(), &api.JobRequest{Language: "python", Source: "import time\ntime.sleep(8)\n"})
	if err != nil {
		t.Fatal(err)
	}
	c.Eventually(10*time.Second, "the busy job runs", func() bool {
		got, err := c.Client.Job(context.Background(), busy.ID)
		return err == nil && got.Status == api.StatusRunning
	})
	j := submitInteractive(t, c, greeter)
	ws, _, err := dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	ws.until("output", 30*time.Second)
	got, err := c.Client.Job(context.Background(), j.ID)
	if err != nil || got.Worker == "" {
		t.Fatalf("job %+v, %v", got, err)
	}
	c.KillWorker(got.Worker)
	exit, _ := ws.until("exit", 60*time.Second)
	job := exit["job"].(map[string]any)
	if exit["status"] != "failed" || !strings.Contains(exit["error"].(string), "worker lost") || job["attempts"] != 1.0 {
		t.Fatalf("exit %v: want failed after its one attempt", exit)
	}
}

// Only the job's owner attaches; to anyone else the job does not exist.
func TestInteractiveOwnerOnly(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 1}}})
	ctx := context.Background()
	if err := c.Client.AddUser(ctx, "mallory", "a long enough password", "user"); err != nil {
		t.Fatal(err)
	}
	token, err := c.NewClient("").Login(ctx, "mallory", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	j := submitInteractive(t, c, greeter) // the admin's
	if _, resp, err := dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", token); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another user's attach: %v %v", resp, err)
	}
	// An admin sees every job but types into none.
	mine, err := c.NewClient(token).Submit(ctx, &api.JobRequest{Language: "python", Source: greeter, Interactive: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, resp, err := dialWS(t, c, "/api/v1/jobs/"+mine.ID+"/attach", c.Token); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the admin's attach to mallory's job: %v %v", resp, err)
	}

	// The web session's cookie: a browser sends it from any page, so the
	// attach must come from the master's own origin; a refused one
	// leaves the job waiting for its client.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.Master.CAPEM())
	req, _ := http.NewRequest("POST", c.Master.URL()+"/api/v1/session", strings.NewReader(`{"username":"mallory","password":"a long enough password"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, ck := range resp.Cookies() {
		if ck.Name == "grappe_session" {
			cookie = ck.String()
		}
	}
	path := "/api/v1/jobs/" + mine.ID + "/attach"
	for origin, want := range map[string]int{"https://evil.example": http.StatusForbidden, "": http.StatusForbidden} {
		h := http.Header{"Cookie": {cookie}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if _, resp, err := dialWSWith(t, c, path, h); err == nil || resp == nil || resp.StatusCode != want {
			t.Fatalf("cookie from origin %q: %v %v, want %d", origin, resp, err, want)
		}
	}
	ws, _, err := dialWSWith(t, c, path, http.Header{"Cookie": {cookie}, "Origin": {c.Master.URL()}})
	if err != nil {
		t.Fatalf("cookie from the master's own page: %v", err)
	}
	ws.until("attached", 10*time.Second)
}

// A master restart drops the client's connection: the run it held is
// ended once its worker is back, not left waiting for input for ever.
func TestInteractiveMasterRestart(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 1, Languages: []string{"python"}}}})
	c.WaitLanguage("python")
	j := submitInteractive(t, c, greeter)
	ws, _, err := dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	ws.until("output", 30*time.Second)
	c.StopMaster()
	for {
		if _, err := ws.next(10 * time.Second); err != nil {
			break // the connection ended with its master
		}
	}
	c.RestartMaster()
	var got *api.Job
	c.Eventually(30*time.Second, "the orphaned run ends", func() bool {
		got, err = c.Client.Job(context.Background(), j.ID)
		return err == nil && got.Terminal()
	})
	if got.Status != api.StatusCancelled || !strings.Contains(got.Error, "not attached") || got.Attempts != 1 {
		t.Fatalf("job %+v: want cancelled, its client gone", got)
	}
}

// TestInteractiveRoundTrip measures the time from a line sent on the
// WebSocket to its echo by the program (master, worker link, sandbox pipe
// and back), one line at a time.
func TestInteractiveRoundTrip(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 1, Languages: []string{"python"}}}})
	c.WaitLanguage("python")
	j := submitInteractive(t, c, "import sys\nfor line in sys.stdin:\n    print(line, end='', flush=True)\n")
	ws, _, err := dialWS(t, c, "/api/v1/jobs/"+j.ID+"/attach", c.Token)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	ws.until("stage", 30*time.Second)
	const n = 200
	var total, worst time.Duration
	for i := range n {
		line := fmt.Sprintf("line %d\n", i)
		start := time.Now()
		ws.send(map[string]string{"type": "stdin", "data": line})
		got := ""
		for got != line {
			_, more := ws.until("output", 10*time.Second)
			got += more
		}
		d := time.Since(start)
		total += d
		worst = max(worst, d)
	}
	ws.send(map[string]string{"type": "eof"})
	if exit, _ := ws.until("exit", 30*time.Second); exit["verdict"] != "ok" {
		t.Fatalf("exit %v", exit)
	}
	t.Logf("%d lines echoed one at a time: mean round trip %v, worst %v", n, (total / n).Round(time.Microsecond), worst.Round(time.Microsecond))
}
