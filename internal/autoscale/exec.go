package autoscale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/pki"
)

// ExecConfig configures the exec provisioner.
type ExecConfig struct {
	// StartCmd and StopCmd are shell commands (run with Shell -c). The
	// start command returns once a worker is launched (exit 0) or could
	// not be (any other status); the stop command once the worker is
	// stopping. Both get, in their environment:
	//
	//	GRAPPE_WORKER_NAME     the worker's name (--name)
	//	GRAPPE_MASTER          the master's cluster address (--master)
	//	GRAPPE_JOIN_TOKEN      the join token (--join-token)
	//	GRAPPE_CA_FINGERPRINT  SHA-256 of the cluster CA (also in the token)
	//	GRAPPE_MAX_JOBS        slots of a worker (--max-jobs)
	//	GRAPPE_WORKER_DIR      a directory on the master's machine for the
	//	                       commands' own files (a pid file, say)
	StartCmd, StopCmd string
	// Shell runs the commands (default /bin/sh).
	Shell         string
	MasterAddr    string
	JoinTokenFile string
	Slots         int
	// Dir holds the commands' logs (Dir/logs/NAME.log) and GRAPPE_WORKER_DIR
	// (Dir/NAME).
	Dir string
	// Timeout bounds each command (default 5m); its process group is
	// killed then.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Exec starts and stops workers with an operator's commands: ssh to a
// machine, a cloud CLI, kubectl, nomad. It cannot watch a worker it
// started elsewhere: the autoscaler notices a worker that does not join
// or disappears from the master, stops it and starts another if needed.
type Exec struct {
	cfg ExecConfig
	log *slog.Logger

	mu    sync.Mutex
	insts map[string]Instance
}

var _ Provisioner = (*Exec)(nil)

// NewExec returns an exec provisioner.
func NewExec(cfg ExecConfig) (*Exec, error) {
	if strings.TrimSpace(cfg.StartCmd) == "" || strings.TrimSpace(cfg.StopCmd) == "" {
		return nil, errors.New("autoscale: exec needs a start command and a stop command")
	}
	if cfg.Dir == "" || cfg.MasterAddr == "" || cfg.JoinTokenFile == "" {
		return nil, errors.New("autoscale: exec: Dir, MasterAddr and JoinTokenFile are required")
	}
	if cfg.Shell == "" {
		cfg.Shell = "/bin/sh"
	}
	if cfg.Slots == 0 {
		cfg.Slots = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("autoscale: exec: %w", err)
	}
	return &Exec{cfg: cfg, log: cfg.Logger.With("provisioner", "exec"), insts: map[string]Instance{}}, nil
}

// Kind implements Provisioner.
func (e *Exec) Kind() string { return "exec" }

// Start runs the start command.
func (e *Exec) Start(ctx context.Context, name string) error {
	e.mu.Lock()
	_, dup := e.insts[name]
	e.mu.Unlock()
	if dup {
		return fmt.Errorf("autoscale: exec: worker %s is already started", name)
	}
	if err := e.run(ctx, "start", e.cfg.StartCmd, name); err != nil {
		return err
	}
	e.mu.Lock()
	e.insts[name] = Instance{Name: name, State: InstanceRunning, StartedAt: time.Now(), Log: e.logPath(name)}
	e.mu.Unlock()
	return nil
}

// Stop runs the stop command. The worker is forgotten even if the command
// fails: its error is returned for the autoscaler to report, and a worker
// left running shows in the master's list as one nobody started.
func (e *Exec) Stop(ctx context.Context, name string) error {
	e.mu.Lock()
	_, ok := e.insts[name]
	delete(e.insts, name)
	e.mu.Unlock()
	if !ok {
		return nil
	}
	return e.run(ctx, "stop", e.cfg.StopCmd, name)
}

var _ Adopter = (*Exec)(nil)

// Adopt implements Adopter: a worker started by the same commands from an
// earlier master process is stopped by them too.
func (e *Exec) Adopt(name string, startedAt time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.insts[name]; !ok {
		e.insts[name] = Instance{Name: name, State: InstanceRunning, StartedAt: startedAt, Log: e.logPath(name)}
	}
}

// List implements Provisioner.
func (e *Exec) List() []Instance {
	e.mu.Lock()
	out := make([]Instance, 0, len(e.insts))
	for _, in := range e.insts {
		out = append(out, in)
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return nameLess(out[i].Name, out[j].Name) })
	return out
}

func (e *Exec) logPath(name string) string { return filepath.Join(e.cfg.Dir, "logs", name+".log") }

// run runs one command for a worker, its output appended to the worker's
// log; a failure's error carries the end of that output.
func (e *Exec) run(ctx context.Context, what, command, name string) error {
	env, err := e.env(name)
	if err != nil {
		return err
	}
	logf, err := openLog(e.logPath(name))
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- grappe autoscale: %s %s at %s\n", what, name, time.Now().Format(time.RFC3339))
	from, _ := logf.Seek(0, io.SeekCurrent)
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.Shell, "-c", command)
	cmd.Env = env
	cmd.Dir = filepath.Join(e.cfg.Dir, name)
	// The log file itself, not a pipe: a command that leaves a worker
	// running in the background (with this output) must not keep run
	// waiting for the pipe to close.
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, killed whole on timeout.
	cmd.SysProcAttr = groupProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		tail := logTail(e.logPath(name), from, 400)
		e.log.Warn(what+" command failed", "worker", name, "err", err, "took", took, "output", tail)
		return fmt.Errorf("autoscale: exec: %s command for %s: %w: %s", what, name, err, tail)
	}
	e.log.Info(what+" command done", "worker", name, "took", took, "log", e.logPath(name))
	return nil
}

// env is the commands' environment: the master's, plus what a worker
// needs to join.
func (e *Exec) env(name string) ([]string, error) {
	b, err := os.ReadFile(e.cfg.JoinTokenFile)
	if err != nil {
		return nil, fmt.Errorf("autoscale: exec: join token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	jt, err := pki.ParseJoinToken(tok)
	if err != nil {
		return nil, fmt.Errorf("autoscale: exec: join token: %w", err)
	}
	dir := filepath.Join(e.cfg.Dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("autoscale: exec: %w", err)
	}
	return append(os.Environ(),
		"GRAPPE_WORKER_NAME="+name,
		"GRAPPE_MASTER="+e.cfg.MasterAddr,
		"GRAPPE_JOIN_TOKEN="+tok,
		"GRAPPE_CA_FINGERPRINT="+jt.Fingerprint,
		"GRAPPE_MAX_JOBS="+strconv.Itoa(e.cfg.Slots),
		"GRAPPE_WORKER_DIR="+dir,
	), nil
}

// logTail returns the last n bytes written to path after offset from, on
// one line.
func logTail(path string, from int64, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	start := max(from, fi.Size()-n)
	b := make([]byte, fi.Size()-start)
	if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "(no output)"
	}
	return s
}
