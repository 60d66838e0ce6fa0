package web_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/autoscale"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// TestBrowser runs the web UI's browser tests (e2e/run.mjs) against a real
// cluster: a master and two workers running Python and C, and the master's
// autoscaler (local provisioner, min 1, max 2) keeping one `grappe worker`
// process running bash, auto-1, built from this tree. Chromium (the
// Debian package) and playwright-core (npm ci in internal/web) are needed;
// without them the test is skipped, so `go test ./...` works on a bare
// machine. .ci/run installs both.
//
// GRAPPE_WEB_SHOTS=DIR keeps the screenshots there (default: a temporary
// directory removed after the test).
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	browser := ""
	for _, p := range []string{os.Getenv("GRAPPE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); p != "" && err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no chromium (apt-get install chromium, or set GRAPPE_CHROMIUM): browser tests skipped")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH: browser tests skipped")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		t.Skip("no node_modules/playwright-core (run npm ci in internal/web): browser tests skipped")
	}

	bin := clustertest.BuildGrappe(t)
	c := clustertest.Start(t, clustertest.Options{
		Master: func(cfg *master.Config) {
			// Its minimum worker only: it runs bash alone, so the test's
			// Python and C jobs put no pressure on it and start no other.
			cfg.Autoscale = master.AutoscaleConfig{
				Provisioner:  "local",
				Policy:       autoscale.Policy{Min: 1, Max: 2, SlotsPerWorker: 1, Idle: time.Minute},
				WorkerBinary: bin,
				WorkerArgs:   []string{"--catalogue", clustertest.OnlyLanguagesCatalogue(t, "bash"), "--insecure-no-sandbox", "--drain-timeout", "2s"},
				Interval:     200 * time.Millisecond,
				// The script stops and restarts the master: its worker must
				// stop well within clustertest's 10 s.
				StopTimeout: 4 * time.Second, ShutdownTimeout: 5 * time.Second,
			}
		},
		Workers: []clustertest.WorkerOptions{
			{Name: "w1", Slots: 2, Languages: []string{"python", "c"}},
			{Name: "w2", Slots: 2, Languages: []string{"python", "c"}},
		},
	})
	c.WaitLanguage("python")
	c.WaitLanguage("c")
	c.Eventually(60*time.Second, "the autoscaler's worker auto-1 up", func() bool {
		for _, w := range c.Master.Workers(context.Background()) {
			if w.Name == "auto-1" && w.Status == api.WorkerUp && w.StartedBy != nil && len(w.Languages) > 0 {
				return true
			}
		}
		return false
	})
	const user, password = "ada", "correct horse battery staple"
	const plainUser, plainPassword = "bob", "bob's own password"
	if err := c.Client.AddUser(context.Background(), user, password, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.AddUser(context.Background(), plainUser, plainPassword, "user"); err != nil {
		t.Fatal(err)
	}

	// The script asks the test to break the cluster through this endpoint
	// (loopback only, for the test's lifetime).
	var mu sync.Mutex // one cluster change at a time
	ctl := http.NewServeMux()
	ctl.HandleFunc("POST /stop-worker", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		c.StopWorker(r.URL.Query().Get("name"))
	})
	ctl.HandleFunc("POST /stop-master", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		c.StopMaster()
	})
	ctl.HandleFunc("POST /restart-master", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		c.RestartMaster()
	})
	// The one-time sign-in link `grappe up` would print.
	ctl.HandleFunc("POST /signin-link", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		link, err := c.Master.SignInLink()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, link)
	})
	ctlSrv := httptest.NewServer(ctl)
	defer ctlSrv.Close()

	shots := os.Getenv("GRAPPE_WEB_SHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", "run.mjs"))
	cmd.Env = append(os.Environ(),
		"GRAPPE_URL="+c.Master.URL(),
		"GRAPPE_USER="+user,
		"GRAPPE_PASSWORD="+password,
		"GRAPPE_PLAIN_USER="+plainUser,
		"GRAPPE_PLAIN_PASSWORD="+plainPassword,
		"GRAPPE_CONTROL="+ctlSrv.URL,
		"GRAPPE_SHOTS="+shots,
		"GRAPPE_CHROMIUM="+browser,
	)
	// Kill the browser with the script if the test times out.
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logLines(t, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("browser tests failed (%v after %s); screenshots in %s", err, time.Since(start).Round(time.Second), shots)
	}
	t.Logf("browser tests passed in %s; screenshots in %s", time.Since(start).Round(time.Second), shots)
}

// logLines copies the script's output to the test log, a line at a time.
func logLines(t *testing.T, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		t.Log(strings.TrimRight(sc.Text(), " "))
	}
}
