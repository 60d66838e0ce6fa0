package clustertest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// delivery is one request a receiver got.
type delivery struct {
	method, signature string
	body              []byte
	status            int // what the receiver answered
}

// receiver is a callback receiver on 127.0.0.1: it records every request
// by path and answers 500 to a path's first failures[path] requests.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	got      map[string][]delivery
	failures map[string]int
	changed  chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: map[string][]delivery{}, failures: map[string]int{}, changed: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.mu.Lock()
		d := delivery{method: req.Method, signature: req.Header.Get("Grappe-Signature"), body: body, status: http.StatusNoContent}
		if r.failures[req.URL.Path] != 0 {
			r.failures[req.URL.Path]--
			d.status = http.StatusInternalServerError
		}
		r.got[req.URL.Path] = append(r.got[req.URL.Path], d)
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
		w.WriteHeader(d.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url(path string) string { return r.srv.URL + path }

// fail makes the next n requests to path fail (n < 0: all of them).
func (r *receiver) fail(path string, n int) {
	r.mu.Lock()
	r.failures[path] = n
	r.mu.Unlock()
}

func (r *receiver) requests(path string) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got[path]...)
}

// delivered waits for the first request to path that the receiver
// answered 2xx.
func (r *receiver) delivered(t *testing.T, path string, timeout time.Duration) delivery {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, d := range r.requests(path) {
			if d.status < 300 {
				return d
			}
		}
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no callback delivered to %s within %s (requests: %d)", path, timeout, len(r.requests(path)))
		}
	}
}

// callbackCluster is a cluster whose callbacks may reach 127.0.0.1 and
// retry quickly.
func callbackCluster(t *testing.T, slots int, edit func(*master.Config)) *clustertest.Cluster {
	c := clustertest.Start(t, clustertest.Options{
		Workers: []clustertest.WorkerOptions{{Name: "w", Slots: slots, Languages: []string{"bash", "python"}}},
		Master: func(cfg *master.Config) {
			cfg.Callbacks = master.CallbackConfig{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
				Timeout: 2 * time.Second, RetryBase: 100 * time.Millisecond}
			if edit != nil {
				edit(cfg)
			}
		},
	})
	c.WaitLanguage("bash")
	return c
}

// jobCallback waits until the job's callback satisfies ok and returns it.
func jobCallback(t *testing.T, c *clustertest.Cluster, id string, what string, ok func(*api.Callback) bool) *api.Callback {
	t.Helper()
	var cb *api.Callback
	c.Eventually(15*time.Second, what, func() bool {
		j, err := c.Client.Job(context.Background(), id)
		if err != nil || j.Callback == nil {
			return false
		}
		cb = j.Callback
		return ok(cb)
	})
	return cb
}

func TestCallbacks(t *testing.T) {
	c := callbackCluster(t, 2, nil)
	r := newReceiver(t)
	ctx := context.Background()
	secret, err := c.Client.CallbackSecret(ctx)
	if err != nil || !strings.HasPrefix(secret, "gcs_") {
		t.Fatalf("CallbackSecret = %q, %v", secret, err)
	}
	if again, _ := c.Client.CallbackSecret(ctx); again != secret {
		t.Fatalf("the secret changed between two reads: %q, %q", secret, again)
	}

	t.Run("signed job", func(t *testing.T) {
		job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo hi", CallbackURL: r.url("/job")})
		if err != nil {
			t.Fatal(err)
		}
		d := r.delivered(t, "/job", 30*time.Second)
		if err := client.VerifyCallback(secret, d.signature, d.body, 0, time.Now()); err != nil {
			t.Fatalf("signature %q: %v", d.signature, err)
		}
		var got api.Job
		if err := json.Unmarshal(d.body, &got); err != nil {
			t.Fatal(err)
		}
		if d.method != "POST" || got.ID != job.ID || got.Status != api.StatusDone || got.Run == nil || got.Run.Stdout != "hi\n" {
			t.Fatalf("callback %s %s", d.method, d.body)
		}
		cb := jobCallback(t, c, job.ID, "callback recorded delivered", func(cb *api.Callback) bool { return cb.Status == api.CallbackDelivered })
		if cb.Attempts != 1 || cb.URL != r.url("/job") || cb.DeliveredAt == nil || cb.LastStatus != http.StatusNoContent {
			t.Fatalf("callback on the job: %+v", cb)
		}
	})

	t.Run("retried after 500s", func(t *testing.T) {
		r.fail("/retry", 2)
		job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo again", CallbackURL: r.url("/retry")})
		if err != nil {
			t.Fatal(err)
		}
		d := r.delivered(t, "/retry", 30*time.Second)
		if err := client.VerifyCallback(secret, d.signature, d.body, 0, time.Now()); err != nil {
			t.Fatalf("signature of the retry: %v", err)
		}
		cb := jobCallback(t, c, job.ID, "callback delivered at the third attempt", func(cb *api.Callback) bool { return cb.Status == api.CallbackDelivered })
		if n := len(r.requests("/retry")); cb.Attempts != 3 || n != 3 {
			t.Fatalf("attempts on the job %d, requests received %d, want 3: %+v", cb.Attempts, n, cb)
		}
	})

	t.Run("rotated secret", func(t *testing.T) {
		rotated, err := c.Client.RotateCallbackSecret(ctx)
		if err != nil || rotated == secret || rotated == "" {
			t.Fatalf("RotateCallbackSecret = %q, %v", rotated, err)
		}
		if _, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "true", CallbackURL: r.url("/rotated")}); err != nil {
			t.Fatal(err)
		}
		d := r.delivered(t, "/rotated", 30*time.Second)
		if err := client.VerifyCallback(rotated, d.signature, d.body, 0, time.Now()); err != nil {
			t.Errorf("signature with the new secret: %v", err)
		}
		if err := client.VerifyCallback(secret, d.signature, d.body, 0, time.Now()); err == nil {
			t.Error("the old secret still verifies")
		}
	})

	t.Run("forbidden addresses refused", func(t *testing.T) {
		raw := newRaw(t, c)
		before := jobCount(t, c)
		for _, u := range []string{
			"http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]:8080/", "http://0.0.0.0/",
			"ftp://127.0.0.1/", "file:///etc/passwd", "not a url",
		} {
			body := mustJSON(api.JobRequest{Language: "bash", Source: "true", CallbackURL: u})
			status, b := raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(body))
			if status != http.StatusUnprocessableEntity || !strings.Contains(string(b), "callback_url") {
				t.Errorf("job with callback_url %q: %d %s, want 422 naming callback_url", u, status, b)
			}
			batch := mustJSON(api.BatchRequest{Jobs: []api.JobRequest{{Language: "bash", Source: "true"}}, CallbackURL: u})
			if status, b := raw.do(t, "POST", "/api/v1/batches", strings.NewReader(batch)); status != http.StatusUnprocessableEntity {
				t.Errorf("batch with callback_url %q: %d %s, want 422", u, status, b)
			}
		}
		if after := jobCount(t, c); after != before {
			t.Errorf("refused submissions made %d jobs", after-before)
		}
	})
}

// TestCallbackAfterMasterRestart: a callback that fails until the master
// is gone is delivered by the restarted master (the outbox is the
// store's).
func TestCallbackAfterMasterRestart(t *testing.T) {
	c := callbackCluster(t, 1, nil)
	r := newReceiver(t)
	ctx := context.Background()
	r.fail("/restart", -1)
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo durable", CallbackURL: r.url("/restart")})
	if err != nil {
		t.Fatal(err)
	}
	jobCallback(t, c, job.ID, "a failed attempt", func(cb *api.Callback) bool { return cb.Attempts >= 1 && cb.LastStatus == 500 })
	c.StopMaster()
	r.fail("/restart", 0)
	before := len(r.requests("/restart"))
	c.RestartMaster()
	d := r.delivered(t, "/restart", 30*time.Second)
	if len(r.requests("/restart")) <= before {
		t.Fatal("delivered before the restart")
	}
	var got api.Job
	if err := json.Unmarshal(d.body, &got); err != nil || got.ID != job.ID || got.Run == nil || got.Run.Stdout != "durable\n" {
		t.Fatalf("callback after the restart: %s %v", d.body, err)
	}
	jobCallback(t, c, job.ID, "delivered after the restart", func(cb *api.Callback) bool { return cb.Status == api.CallbackDelivered })
}

// TestCallbackBounds: a callback attempt does not follow a redirect, does
// not read an endless answer, and gives up on a receiver that never
// answers, each within the attempt's timeout.
func TestCallbackBounds(t *testing.T) {
	c := callbackCluster(t, 2, nil)
	ctx := context.Background()
	target := newReceiver(t)
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/redirect":
			http.Redirect(w, req, target.url("/elsewhere"), http.StatusTemporaryRedirect)
		case "/endless":
			w.WriteHeader(http.StatusOK)
			chunk := make([]byte, 64<<10)
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				select {
				case <-req.Context().Done():
					return
				case <-stop:
					return
				default:
				}
			}
		case "/hang":
			select {
			case <-req.Context().Done():
			case <-stop:
			}
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })

	submit := func(path string) string {
		t.Helper()
		j, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "true", CallbackURL: srv.URL + path})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	redirect, endless, hang := submit("/redirect"), submit("/endless"), submit("/hang")

	cb := jobCallback(t, c, redirect, "the redirect's attempt recorded", func(cb *api.Callback) bool { return cb.Attempts >= 1 })
	if cb.LastStatus != http.StatusTemporaryRedirect || cb.Status != api.CallbackPending {
		t.Errorf("redirected callback: %+v", cb)
	}
	start := time.Now()
	jobCallback(t, c, endless, "the endless answer's callback delivered", func(cb *api.Callback) bool { return cb.Status == api.CallbackDelivered })
	cb = jobCallback(t, c, hang, "the hanging receiver's attempt recorded", func(cb *api.Callback) bool { return cb.Attempts >= 1 })
	if cb.LastError == "" || cb.Status != api.CallbackPending {
		t.Errorf("hanging receiver: %+v", cb)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("bounded attempts took %s", d)
	}
	if n := len(target.requests("/elsewhere")); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

// TestCallbacksTwoMasters: two masters on one database both deliver
// callbacks, and each callback is delivered once.
func TestCallbacksTwoMasters(t *testing.T) {
	a := callbackCluster(t, 2, nil)
	b := a.AddMaster("b")
	r := newReceiver(t)
	ctx := context.Background()
	const n = 12
	for i := range n {
		via := a
		if i%2 == 1 {
			via = b
		}
		path := "/two/" + string(rune('a'+i))
		if _, err := via.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "true", CallbackURL: r.url(path)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		r.delivered(t, "/two/"+string(rune('a'+i)), 60*time.Second)
	}
	time.Sleep(2 * time.Second) // both masters poll every second: a second delivery would be made by now
	for i := range n {
		if got := r.requests("/two/" + string(rune('a'+i))); len(got) != 1 {
			t.Errorf("callback %d delivered %d times", i, len(got))
		}
	}
}
