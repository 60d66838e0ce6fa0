package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from the command and read
// from the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUpRunAndStop drives the two commands a new user types: `grappe up`,
// then `grappe run` with the environment it prints, then Ctrl-C.
func TestUpRunAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole cluster")
	}
	dir := t.TempDir()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"up", "--data", dir, "--listen", "127.0.0.1:0", "--workers", "2", "--max-jobs", "2", "--log-level", "warn"}, strings.NewReader(""), &out, &errs)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "is ready") {
		if time.Now().After(deadline) {
			t.Fatalf("grappe up not ready in time; stdout:\n%s\nstderr:\n%s", out.String(), errs.String())
		}
		select {
		case code := <-done:
			t.Fatalf("grappe up exited %d early:\n%s\n%s", code, out.String(), errs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	url := regexp.MustCompile(`https://127\.0\.0\.1:\d+`).FindString(out.String())
	if url == "" {
		t.Fatalf("no URL in:\n%s", out.String())
	}
	if !regexp.MustCompile(`sign in as admin .*: https://127\.0\.0\.1:\d+/#/signin/grp_[A-Za-z0-9_-]{40,}\n`).MatchString(out.String()) {
		t.Fatalf("no one-time sign-in link in:\n%s", out.String())
	}
	for _, f := range []string{"ca.pem", "admin-token", "join-token"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("data dir lacks %s: %v", f, err)
		}
	}
	token, _ := os.ReadFile(filepath.Join(dir, "admin-token"))
	t.Setenv("GRAPPE_ADDR", url)
	t.Setenv("GRAPPE_CA", filepath.Join(dir, "ca.pem"))
	t.Setenv("GRAPPE_TOKEN", strings.TrimSpace(string(token)))
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	prog := filepath.Join(t.TempDir(), "prog.sh")
	if err := os.WriteFile(prog, []byte("echo \"hi $1\"\ncat >&2\nexit 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin := filepath.Join(t.TempDir(), "in")
	os.WriteFile(stdin, []byte("to stderr"), 0o600)
	var rout, rerr syncBuffer
	code := Main(context.Background(), []string{"run", prog, "--stdin", stdin, "--", "there"}, strings.NewReader(""), &rout, &rerr)
	if code != 7 || rout.String() != "hi there\n" || rerr.String() != "to stderr" {
		t.Fatalf("grappe run: exit %d, stdout %q, stderr %q", code, rout.String(), rerr.String())
	}

	stop() // Ctrl-C
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("grappe up exited %d after Ctrl-C:\n%s", code, errs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("grappe up did not stop within 15s of Ctrl-C")
	}
	if !strings.Contains(out.String(), "grappe stopped") {
		t.Fatalf("no goodbye line:\n%s", out.String())
	}
}
