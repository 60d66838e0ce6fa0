package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"
)

// LocalConfig configures the local provisioner.
type LocalConfig struct {
	// Binary is the grappe binary to run (default: the running one).
	Binary string
	// Dir holds each worker's data directory (Dir/NAME) and log
	// (Dir/logs/NAME.log); the master uses DATA/autoscale.
	Dir string
	// MasterAddr is the master's cluster address, host:port.
	MasterAddr string
	// JoinTokenFile is the master's join-token file, read by the worker at
	// each start, so a rotated token is picked up.
	JoinTokenFile string
	// Slots is each worker's --max-jobs (default 1).
	Slots int
	// Args are extra arguments of `grappe worker` (--catalogue FILE,
	// --insecure-no-sandbox, --labels…).
	Args []string
	// StopTimeout is how long Stop waits after SIGTERM (the worker drains)
	// before SIGKILL (default 45s: a worker drains for 30s by default).
	StopTimeout time.Duration
	// MinUptime: a worker that exits sooner after its start failed to
	// start (default 10s).
	MinUptime time.Duration
	// MaxFailures quick exits in a row make it give up on a worker: its
	// state becomes failed, for the autoscaler to report and back off
	// (default 5).
	MaxFailures int
	// RestartDelay is the first pause before a restart, doubled at each
	// quick exit in a row up to a minute (default 1s).
	RestartDelay time.Duration
	Logger       *slog.Logger
}

// Local starts `grappe worker` processes on this machine and supervises
// them: a worker that dies is restarted with backoff until Stop; one that
// keeps exiting right after its start is given up and reported failed.
//
// Each worker runs in its own process group, so a Ctrl-C at the master's
// terminal reaches the master alone, which then stops its workers in
// order; on Linux a worker also gets SIGTERM (and drains) if the master
// dies.
type Local struct {
	cfg LocalConfig
	log *slog.Logger

	mu    sync.Mutex
	procs map[string]*proc
}

// proc is one supervised worker.
type proc struct {
	name  string
	stopc chan struct{} // closed by Stop
	done  chan struct{} // closed when the supervisor returns

	mu        sync.Mutex
	cmd       *exec.Cmd // the current process; nil between restarts
	state     string
	startedAt time.Time
	restarts  int
	err       string
	stopOnce  sync.Once
}

var _ Provisioner = (*Local)(nil)

// NewLocal returns a local provisioner.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Dir == "" || cfg.MasterAddr == "" || cfg.JoinTokenFile == "" {
		return nil, errors.New("autoscale: local: Dir, MasterAddr and JoinTokenFile are required")
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("autoscale: local: find the grappe binary: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.Slots == 0 {
		cfg.Slots = 1
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 45 * time.Second
	}
	if cfg.MinUptime == 0 {
		cfg.MinUptime = 10 * time.Second
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = 5
	}
	if cfg.RestartDelay == 0 {
		cfg.RestartDelay = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("autoscale: local: %w", err)
	}
	return &Local{cfg: cfg, log: cfg.Logger.With("provisioner", "local"), procs: map[string]*proc{}}, nil
}

// Kind implements Provisioner.
func (l *Local) Kind() string { return "local" }

// Start launches the worker and returns once the process runs; an error
// means it could not be launched at all (no binary, no directory).
func (l *Local) Start(ctx context.Context, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.procs[name]; ok {
		return fmt.Errorf("autoscale: local: worker %s is already started", name)
	}
	p := &proc{name: name, stopc: make(chan struct{}), done: make(chan struct{})}
	if err := l.spawn(p); err != nil {
		return err
	}
	l.procs[name] = p
	go l.supervise(p)
	return nil
}

// spawn starts the worker process of p.
func (l *Local) spawn(p *proc) error {
	dir := filepath.Join(l.cfg.Dir, p.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("autoscale: local: %w", err)
	}
	logf, err := openLog(l.logPath(p.name))
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	args := append([]string{"worker",
		"--master", l.cfg.MasterAddr, "--join-token-file", l.cfg.JoinTokenFile,
		"--name", p.name, "--max-jobs", strconv.Itoa(l.cfg.Slots), "--data", dir,
		// No --uid-base: the worker's sandbox takes a range of uids of its
		// own from the id in its data directory, leased host-wide, so
		// that it shares none with another worker (of this or another
		// cluster) on this machine.
	}, l.cfg.Args...)
	cmd := exec.Command(l.cfg.Binary, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = workerProcAttr()
	fmt.Fprintf(logf, "--- grappe autoscale: starting %s at %s: %s %v\n", p.name, time.Now().Format(time.RFC3339), l.cfg.Binary, args)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("autoscale: local: start %s: %w", p.name, err)
	}
	p.mu.Lock()
	p.cmd, p.state, p.err, p.startedAt = cmd, InstanceRunning, "", time.Now()
	if p.stoppingLocked() {
		// Stop came in while this (re)start was on its way.
		_ = terminate(cmd.Process)
	}
	p.mu.Unlock()
	l.log.Info("worker process started", "worker", p.name, "pid", cmd.Process.Pid, "log", l.logPath(p.name))
	return nil
}

// supervise waits for the worker's process and restarts it, with
// backoff, until Stop or too many quick failures.
func (l *Local) supervise(p *proc) {
	defer close(p.done)
	quick := 0
	var spawnErr error // why the last restart could not even start
	for {
		p.mu.Lock()
		cmd, started := p.cmd, p.startedAt
		p.mu.Unlock()
		exit := spawnErr
		if cmd != nil {
			exit = cmd.Wait()
			if exit == nil {
				exit = errors.New("exited with status 0")
			}
		}
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		if p.stopping() {
			return
		}
		if time.Since(started) < l.cfg.MinUptime {
			quick++
		} else {
			quick = 1 // a crash after a good run starts a new count
		}
		if quick >= l.cfg.MaxFailures {
			msg := fmt.Sprintf("exited %d times in a row within %s of starting, last: %v (see %s)", quick, l.cfg.MinUptime, exit, l.logPath(p.name))
			p.set(InstanceFailed, msg)
			l.log.Error("worker keeps failing; given up", "worker", p.name, "err", msg)
			return
		}
		delay := l.cfg.RestartDelay << (quick - 1)
		delay = min(delay, time.Minute)
		p.set(InstanceRestarting, fmt.Sprintf("%v; restarting in %s", exit, delay))
		l.log.Warn("worker process died; restarting", "worker", p.name, "err", exit, "in", delay)
		select {
		case <-p.stopc:
			return
		case <-time.After(delay):
		}
		p.mu.Lock()
		if p.stoppingLocked() {
			p.mu.Unlock()
			return
		}
		p.restarts++
		p.mu.Unlock()
		spawnErr = l.spawn(p)
		if spawnErr != nil {
			l.log.Warn("worker restart failed", "worker", p.name, "err", spawnErr)
			p.mu.Lock()
			p.startedAt = time.Now() // counts as a quick exit
			p.mu.Unlock()
		}
	}
}

// Stop sends SIGTERM (the worker drains: it takes no new job, lets its
// jobs finish, hands back the rest after its --drain-timeout and exits),
// then SIGKILL to its process group after StopTimeout or when ctx ends.
func (l *Local) Stop(ctx context.Context, name string) error {
	l.mu.Lock()
	p := l.procs[name]
	l.mu.Unlock()
	if p == nil {
		return nil
	}
	defer func() {
		l.mu.Lock()
		if l.procs[name] == p {
			delete(l.procs, name)
		}
		l.mu.Unlock()
	}()
	p.stopOnce.Do(func() {
		p.mu.Lock()
		close(p.stopc)
		cmd := p.cmd
		p.mu.Unlock()
		if cmd != nil {
			_ = terminate(cmd.Process)
		}
	})
	timer := time.NewTimer(l.cfg.StopTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-p.done:
		l.log.Info("worker process stopped", "worker", name)
		return nil
	case <-timer.C:
		err = fmt.Errorf("autoscale: local: %s did not stop within %s; killed", name, l.cfg.StopTimeout)
	case <-ctx.Done():
		err = fmt.Errorf("autoscale: local: stop %s: %w; killed", name, ctx.Err())
	}
	p.mu.Lock()
	if p.cmd != nil {
		_ = killGroup(p.cmd.Process.Pid)
	}
	p.mu.Unlock()
	<-p.done
	return err
}

// List implements Provisioner.
func (l *Local) List() []Instance {
	l.mu.Lock()
	ps := make([]*proc, 0, len(l.procs))
	for _, p := range l.procs {
		ps = append(ps, p)
	}
	l.mu.Unlock()
	out := make([]Instance, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		in := Instance{Name: p.name, State: p.state, StartedAt: p.startedAt, Restarts: p.restarts,
			Log: l.logPath(p.name), Err: p.err}
		if p.cmd != nil && p.cmd.Process != nil {
			in.PID = p.cmd.Process.Pid
		}
		p.mu.Unlock()
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return nameLess(out[i].Name, out[j].Name) })
	return out
}

func (l *Local) logPath(name string) string { return filepath.Join(l.cfg.Dir, "logs", name+".log") }

func (p *proc) set(state, err string) {
	p.mu.Lock()
	p.state, p.err = state, err
	p.mu.Unlock()
}

func (p *proc) stopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stoppingLocked()
}

func (p *proc) stoppingLocked() bool {
	select {
	case <-p.stopc:
		return true
	default:
		return false
	}
}

// maxLogBytes bounds a worker's log: past it, the log is moved to .1 (one
// old log kept) at the next start.
const maxLogBytes = 8 << 20

// openLog opens a worker's log for appending, rotating it when large.
func openLog(path string) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogBytes {
		_ = os.Rename(path, path+".1")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("autoscale: log: %w", err)
	}
	return f, nil
}
