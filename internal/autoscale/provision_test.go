//go:build unix

package autoscale

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/pki"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-grappe")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func newTestLocal(t *testing.T, binary string, tune func(*LocalConfig)) *Local {
	t.Helper()
	cfg := LocalConfig{Binary: binary, Dir: t.TempDir(), MasterAddr: "127.0.0.1:7701", JoinTokenFile: "/nonexistent/join-token",
		Slots: 2, Args: []string{"--insecure-no-sandbox"}, StopTimeout: 5 * time.Second, Logger: quiet}
	if tune != nil {
		tune(&cfg)
	}
	l, err := NewLocal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, in := range l.List() {
			_ = l.Stop(context.Background(), in.Name)
		}
	})
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// TestLocalStartStop: a worker is started with its name, data directory,
// the join token file and the master's address, its output in its log;
// Stop's SIGTERM ends it.
func TestLocalStartStop(t *testing.T) {
	bin := script(t, `trap 'echo "got TERM"; exit 0' TERM
echo "args: $*"
echo "cwd: $(pwd)"
while :; do sleep 0.05; done
`)
	l := newTestLocal(t, bin, nil)
	if err := l.Start(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background(), "auto-1"); err == nil {
		t.Fatal("a second start of the same name was accepted")
	}
	ins := l.List()
	if len(ins) != 1 || ins[0].Name != "auto-1" || ins[0].State != InstanceRunning || !alive(ins[0].PID) {
		t.Fatalf("list: %+v", ins)
	}
	logPath := ins[0].Log
	waitFor(t, "the worker's output", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "cwd:")
	})
	if err := l.Stop(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
	if alive(ins[0].PID) {
		t.Fatal("still running after Stop")
	}
	if n := len(l.List()); n != 0 {
		t.Fatalf("%d listed after Stop", n)
	}
	b, _ := os.ReadFile(logPath)
	log := string(b)
	dir := filepath.Join(l.cfg.Dir, "auto-1")
	for _, want := range []string{
		"args: worker --master 127.0.0.1:7701 --join-token-file /nonexistent/join-token --name auto-1 --max-jobs 2 --data " + dir + " --insecure-no-sandbox",
		"cwd: " + dir, "got TERM",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if err := l.Stop(context.Background(), "unknown"); err != nil {
		t.Errorf("stop of an unknown worker: %v", err)
	}
}

// TestLocalRestartsADeadWorker: a worker that dies after a good run is
// restarted, under the same name and directory.
func TestLocalRestartsADeadWorker(t *testing.T) {
	bin := script(t, `trap 'exit 0' TERM
sleep 0.3 &
wait
exit 3
`)
	l := newTestLocal(t, bin, func(c *LocalConfig) { c.MinUptime = 100 * time.Millisecond; c.RestartDelay = 20 * time.Millisecond })
	if err := l.Start(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two restarts", func() bool { return l.List()[0].Restarts >= 2 })
	if st := l.List()[0].State; st == InstanceFailed {
		t.Fatalf("a worker with good runs was given up: %+v", l.List()[0])
	}
}

// TestLocalGivesUpOnAFailingWorker: one that exits right after each start
// is restarted with backoff, then reported failed.
func TestLocalGivesUpOnAFailingWorker(t *testing.T) {
	bin := script(t, "echo 'cannot join' >&2; exit 1\n")
	l := newTestLocal(t, bin, func(c *LocalConfig) { c.MaxFailures = 3; c.RestartDelay = 10 * time.Millisecond })
	if err := l.Start(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed state", func() bool { return l.List()[0].State == InstanceFailed })
	in := l.List()[0]
	if in.Restarts != 2 || !strings.Contains(in.Err, "3 times") || !strings.Contains(in.Err, in.Log) {
		t.Fatalf("%+v", in)
	}
	b, _ := os.ReadFile(in.Log)
	if strings.Count(string(b), "cannot join") != 3 {
		t.Errorf("log:\n%s", b)
	}
	if err := l.Stop(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
}

// TestLocalKillsAWorkerThatWillNotStop: SIGKILL after the stop timeout.
func TestLocalKillsAWorkerThatWillNotStop(t *testing.T) {
	bin := script(t, "trap '' TERM\necho ready\nwhile :; do sleep 0.05; done\n")
	l := newTestLocal(t, bin, func(c *LocalConfig) { c.StopTimeout = 300 * time.Millisecond })
	if err := l.Start(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
	in := l.List()[0]
	pid := in.PID
	waitFor(t, "the trap set", func() bool {
		b, _ := os.ReadFile(in.Log)
		return strings.Contains(string(b), "ready")
	})
	start := time.Now()
	err := l.Stop(context.Background(), "auto-1")
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("err = %v", err)
	}
	if alive(pid) || time.Since(start) > 3*time.Second {
		t.Fatalf("alive %v after %s", alive(pid), time.Since(start))
	}
}

func TestLocalStartError(t *testing.T) {
	l := newTestLocal(t, "/nonexistent/grappe", nil)
	if err := l.Start(context.Background(), "auto-1"); err == nil {
		t.Fatal("a start without a binary succeeded")
	}
	if n := len(l.List()); n != 0 {
		t.Fatalf("%d listed", n)
	}
}

func joinTokenFile(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := pki.NewJoinToken(ca)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "join-token")
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tok
}

func TestExecCommands(t *testing.T) {
	tokFile, tok := joinTokenFile(t)
	out := t.TempDir()
	e, err := NewExec(ExecConfig{
		StartCmd:   `echo "$GRAPPE_WORKER_NAME $GRAPPE_MASTER $GRAPPE_MAX_JOBS $GRAPPE_JOIN_TOKEN $GRAPPE_CA_FINGERPRINT" > ` + out + `/started; echo starting $GRAPPE_WORKER_NAME`,
		StopCmd:    `echo "$GRAPPE_WORKER_NAME" > ` + out + `/stopped; pwd > ` + out + `/cwd`,
		MasterAddr: "m.example:7701", JoinTokenFile: tokFile, Slots: 3, Dir: t.TempDir(), Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
	jt, _ := pki.ParseJoinToken(tok)
	b, _ := os.ReadFile(filepath.Join(out, "started"))
	if want := "auto-1 m.example:7701 3 " + tok + " " + jt.Fingerprint + "\n"; string(b) != want {
		t.Fatalf("start command saw %q, want %q", b, want)
	}
	ins := e.List()
	if len(ins) != 1 || ins[0].Name != "auto-1" {
		t.Fatalf("list %+v", ins)
	}
	if err := e.Stop(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "stopped")); string(b) != "auto-1\n" {
		t.Fatalf("stop command saw %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "cwd")); strings.TrimSpace(string(b)) != filepath.Join(e.cfg.Dir, "auto-1") {
		t.Fatalf("stop command ran in %q", b)
	}
	if len(e.List()) != 0 {
		t.Fatal("listed after Stop")
	}
	logb, _ := os.ReadFile(ins[0].Log)
	if !strings.Contains(string(logb), "starting auto-1") {
		t.Fatalf("output not logged:\n%s", logb)
	}
}

func TestExecStartFailures(t *testing.T) {
	tokFile, _ := joinTokenFile(t)
	newExec := func(start string) *Exec {
		e, err := NewExec(ExecConfig{StartCmd: start, StopCmd: "true", MasterAddr: "m:1", JoinTokenFile: tokFile,
			Dir: t.TempDir(), Timeout: 300 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	err := newExec("echo 'quota exceeded' >&2; exit 3").Start(context.Background(), "auto-1")
	if err == nil || !strings.Contains(err.Error(), "quota exceeded") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v", err)
	}
	start := time.Now()
	e := newExec("sleep 30 & sleep 30")
	err = e.Start(context.Background(), "auto-2")
	if err == nil || time.Since(start) > 6*time.Second {
		t.Fatalf("a hung start command: err %v after %s", err, time.Since(start))
	}
	if len(e.List()) != 0 {
		t.Fatal("a failed start is listed")
	}
	if _, err := NewExec(ExecConfig{StartCmd: "true", MasterAddr: "m:1", JoinTokenFile: tokFile, Dir: t.TempDir()}); err == nil {
		t.Fatal("no stop command accepted")
	}
}

// TestExecBackgroundWorker: a start command that leaves a process running
// in the background with the command's output returns at once.
func TestExecBackgroundWorker(t *testing.T) {
	tokFile, _ := joinTokenFile(t)
	dir := t.TempDir()
	e, err := NewExec(ExecConfig{
		StartCmd:   `sleep 30 & echo $! > pid`,
		StopCmd:    `kill $(cat pid)`,
		MasterAddr: "m:1", JoinTokenFile: tokFile, Dir: dir, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.Start(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("start waited for the background process: %s", d)
	}
	if err := e.Stop(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
}

// TestLocalBinaryGoneOnRestart: a restart that cannot even start the
// binary counts as a quick failure, with the reason kept.
func TestLocalBinaryGoneOnRestart(t *testing.T) {
	bin := script(t, "rm -f \"$0\"\nexit 1\n")
	l := newTestLocal(t, bin, func(c *LocalConfig) { c.MaxFailures = 3; c.RestartDelay = 10 * time.Millisecond })
	if err := l.Start(context.Background(), "auto-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed state", func() bool { return l.List()[0].State == InstanceFailed })
	if in := l.List()[0]; !strings.Contains(in.Err, "no such file") {
		t.Fatalf("%+v", in)
	}
}
