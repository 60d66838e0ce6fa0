package master_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// TestMetricsAfterKnownJobs runs jobs whose outcome is known, then checks
// that /metrics counted exactly them.
func TestMetricsAfterKnownJobs(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "w", Slots: 2, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("bash")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	want := "hi\n"
	wrong := "bye\n"
	jobs := []struct {
		req     api.JobRequest
		verdict string
	}{
		{api.JobRequest{Language: "bash", Source: "echo hi"}, api.VerdictOK},
		{api.JobRequest{Language: "bash", Source: "sleep 0.2; echo hi", ExpectedOutput: &want}, api.VerdictOK},
		{api.JobRequest{Language: "bash", Source: "exit 3"}, api.VerdictRuntimeError},
		{api.JobRequest{Language: "bash", Source: "echo hi", ExpectedOutput: &wrong}, api.VerdictWrongAnswer},
	}
	for i, j := range jobs {
		got, err := c.Client.SubmitWait(ctx, &j.req, time.Minute)
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		if got.Status != api.StatusDone || got.Verdict != j.verdict {
			t.Fatalf("job %d: %s/%s (%s), want done/%s", i, got.Status, got.Verdict, got.Error, j.verdict)
		}
	}

	// The worker's jobs_done follows the result's store commit, which
	// follows the answer to the client only by microseconds: poll.
	var fams map[string]*dto.MetricFamily
	c.Eventually(10*time.Second, "jobs done counted", func() bool {
		fams = scrape(t, c)
		return value(fams, "grappe_worker_jobs_done_total", map[string]string{"worker": "w"}) == 4
	})

	counters := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"grappe_jobs_submitted_total", map[string]string{"language": "bash"}, 4},
		{"grappe_attempts_started_total", map[string]string{"language": "bash"}, 4},
		{"grappe_jobs_finished_total", map[string]string{"language": "bash", "status": "done", "verdict": "ok"}, 2},
		{"grappe_jobs_finished_total", map[string]string{"language": "bash", "status": "done", "verdict": "runtime_error"}, 1},
		{"grappe_jobs_finished_total", map[string]string{"language": "bash", "status": "done", "verdict": "wrong_answer"}, 1},
		{"grappe_queue_depth", nil, 0},
		{"grappe_jobs_running", nil, 0},
		{"grappe_workers", map[string]string{"status": "up"}, 1},
		{"grappe_workers", map[string]string{"status": "draining"}, 0},
		{"grappe_workers", map[string]string{"status": "unhealthy"}, 0},
		{"grappe_workers", map[string]string{"status": "lost"}, 0},
		{"grappe_worker_infra_failures_total", map[string]string{"worker": "w"}, 0},
		{"grappe_worker_slots", map[string]string{"worker": "w"}, 2},
		{"grappe_worker_slots_used", map[string]string{"worker": "w"}, 0},
		{"grappe_worker_jobs_done_total", map[string]string{"worker": "w"}, 4},
		{"grappe_worker_info", map[string]string{"worker": "w", "status": "up", "sandbox": clustertest.SharedToolbox(t).Sandbox}, 1},
	}
	for _, tc := range counters {
		if got := value(fams, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if n := len(series(fams, "grappe_jobs_finished_total", nil)); n != 3 {
		t.Errorf("grappe_jobs_finished_total has %d series, want 3 (ok, runtime_error, wrong_answer)", n)
	}
	for _, name := range []string{"grappe_worker_cpu_percent", "grappe_worker_memory_percent", "grappe_worker_last_heartbeat_timestamp_seconds"} {
		if len(series(fams, name, map[string]string{"worker": "w"})) != 1 {
			t.Errorf("%s{worker=w} missing", name)
		}
	}

	for _, name := range []string{"grappe_job_queue_wait_seconds", "grappe_job_run_seconds"} {
		ms := series(fams, name, map[string]string{"language": "bash"})
		if len(ms) != 1 || ms[0].GetHistogram() == nil {
			t.Fatalf("%s{language=bash}: %d series, want one histogram", name, len(ms))
		}
		if h := ms[0].GetHistogram(); h.GetSampleCount() != 4 {
			t.Errorf("%s count = %d, want 4", name, h.GetSampleCount())
		}
	}
	run := series(fams, "grappe_job_run_seconds", map[string]string{"language": "bash"})[0].GetHistogram()
	if run.GetSampleSum() < 0.2 {
		t.Errorf("grappe_job_run_seconds sum = %v, want at least the 0.2s one job slept", run.GetSampleSum())
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "grappe_") && f.GetHelp() == "" {
			t.Errorf("%s has no help", f.GetName())
		}
	}
}

// TestMetricsRunTimeOfTests checks that a job with test cases counts the
// sum of its tests once, and a job that never ran counts no run time.
func TestMetricsRunTimeOfTests(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "w", Slots: 1, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("bash")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job, err := c.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "sleep 0.15; cat",
		Tests: []api.TestCase{{Stdin: "a"}, {Stdin: "b"}}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != api.StatusDone || len(job.Tests) != 2 {
		t.Fatalf("job: %s/%s with %d tests", job.Status, job.Verdict, len(job.Tests))
	}
	// A job for a language no worker here runs fails at its placement
	// timeout without running.
	if _, err := c.Client.Submit(ctx, &api.JobRequest{Language: "python", Source: "print(1)"}); err != nil {
		t.Fatal(err)
	}
	var fams map[string]*dto.MetricFamily
	c.Eventually(20*time.Second, "the python job failed", func() bool {
		fams = scrape(t, c)
		return value(fams, "grappe_jobs_finished_total", map[string]string{"language": "python", "status": "failed"}) == 1
	})
	h := series(fams, "grappe_job_run_seconds", map[string]string{"language": "bash"})[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() < 0.3 {
		t.Errorf("run time: %d samples, sum %v; want 1 sample of at least 0.3s (two tests of 0.15s)", h.GetSampleCount(), h.GetSampleSum())
	}
	if ms := series(fams, "grappe_job_run_seconds", map[string]string{"language": "python"}); len(ms) != 0 {
		t.Errorf("a job that never ran has a run time: %v", ms)
	}
	if got := value(fams, "grappe_jobs_submitted_total", map[string]string{"language": "python"}); got != 1 {
		t.Errorf("python submitted = %v, want 1", got)
	}
}

// scrape reads /metrics over HTTPS, trusting the cluster CA, with the
// scrape token, as Prometheus would.
func scrape(t *testing.T, c *clustertest.Cluster) map[string]*dto.MetricFamily {
	t.Helper()
	token, err := auth.ReadSecretFile(filepath.Join(c.DataDir, master.MetricsTokenFile))
	if err != nil {
		t.Fatalf("metrics token: %v", err)
	}
	resp := get(t, c.Master.CAPEM(), c.Master.URL()+"/metrics", token)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// tlsConfig trusts caPEM.
func tlsConfig(t *testing.T, caPEM []byte) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("bad CA PEM")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// get sends a GET with a bearer token (none if empty), over HTTPS
// trusting caPEM when it is set.
func get(t *testing.T, caPEM []byte, url, token string) *http.Response {
	t.Helper()
	tr := &http.Transport{}
	if caPEM != nil {
		tr.TLSClientConfig = tlsConfig(t, caPEM)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

// /metrics names the workers, their versions and sandboxes: it needs the
// scrape token or an admin's, and the scrape token opens nothing else.
func TestMetricsNeedAToken(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx := context.Background()
	scrapeToken, err := auth.ReadSecretFile(filepath.Join(c.DataDir, master.MetricsTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(c.DataDir, master.MetricsTokenFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("metrics-token file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if err := c.Client.AddUser(ctx, "alice", "correct horse alice", "user"); err != nil {
		t.Fatal(err)
	}
	anon := c.NewClient("")
	defer anon.Close()
	userToken, err := anon.Login(ctx, "alice", "correct horse alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, token string
		status            int
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized},
		{"wrong token", "/metrics", "grp_nope", http.StatusUnauthorized},
		{"a user's token", "/metrics", userToken, http.StatusForbidden},
		{"an admin's token", "/metrics", c.Token, http.StatusOK},
		{"the scrape token", "/metrics", scrapeToken, http.StatusOK},
		{"the scrape token elsewhere", "/api/v1/workers", scrapeToken, http.StatusUnauthorized},
		{"the scrape token on jobs", "/api/v1/jobs", scrapeToken, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(t, c.Master.CAPEM(), c.Master.URL()+tc.path, tc.token)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s: %d, want %d: %.200s", tc.path, resp.StatusCode, tc.status, body)
			}
			if tc.status != http.StatusOK && strings.Contains(string(body), "grappe_") {
				t.Fatalf("a refused scrape got series: %.200s", body)
			}
		})
	}
}

// With --metrics-listen, the operator's separate address serves them
// without a token (and with --pprof the runtime's profiles); the API's
// address still wants one.
func TestMetricsListen(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) {
		cfg.MetricsListen, cfg.Pprof = "127.0.0.1:0", true
	}})
	addr := c.Master.MetricsAddr()
	if addr == "" {
		t.Fatal("no metrics address")
	}
	resp := get(t, nil, "http://"+addr+"/debug/pprof/goroutine?debug=1", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("pprof on the metrics listener: %d %.200s", resp.StatusCode, body)
	}
	resp = get(t, nil, "http://"+addr+"/metrics", "")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "grappe_jobs") {
		t.Fatalf("metrics listener: %d %.200s", resp.StatusCode, body)
	}
	resp = get(t, nil, "http://"+addr+"/api/v1/workers", c.Token)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the API on the metrics listener: %d, want 404", resp.StatusCode)
	}
	resp = get(t, c.Master.CAPEM(), c.Master.URL()+"/metrics", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics on the API address without a token: %d, want 401", resp.StatusCode)
	}
}

// series returns the metrics of a family whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// value is the value of the one counter or gauge matching labels; -1 when
// there is none, so a missing series never passes for a zero.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	ms := series(fams, name, labels)
	if len(ms) != 1 {
		return -1
	}
	switch m := ms[0]; {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return -1
}
