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

	"github.com/grappe/grappe/internal/clustertest"
)

// TestBrowser runs the web UI's browser tests (e2e/run.mjs) against a real
// cluster: a master and two workers running Python and C. Chromium (the
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

	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "w1", Slots: 2, Languages: []string{"python", "c"}},
		{Name: "w2", Slots: 2, Languages: []string{"python", "c"}},
	}})
	c.WaitLanguage("python")
	c.WaitLanguage("c")
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
