// Package attach is the client's end of an interactive job, apart from
// any wire protocol: grappe's WebSocket (GET /api/v1/jobs/{id}/attach)
// and Piston's (/api/v2/connect) both read a Session's events and write
// its input. The master makes a Session for each attach and relays
// between it and the job's worker through a Link.
//
// Every buffer is bounded. Output the client does not read in time is
// dropped past MaxPendingOutput (and counted in the exit event), so a
// client that never reads costs the master at most that. Input is
// throttled to Config.InputRate bytes a second: a writer faster than
// that waits, which stops the WebSocket's reading and so, through TCP,
// the client. A run with neither input nor output for Config.Idle is
// ended.
package attach

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/grappe/grappe/api"
)

// Event kinds, in the order a client sees them: stages and output, then
// one exit.
const (
	KindStage  = "stage"
	KindOutput = "output"
	KindExit   = "exit"
)

// Event is one thing that happened to the job, for its client.
type Event struct {
	Kind   string
	Stage  string // KindStage: "compile" or "run"
	Stream string // KindOutput: "stdout" or "stderr"
	Data   []byte // KindOutput
	// KindExit: the job as it finished (nil if it could not be read), and
	// the bytes of output dropped because the client did not read them.
	Job     *api.Job
	Dropped int64
	// Error, on an exit without a job: why the session ended without
	// the job's end (another client attached first, the master stops).
	Error string
}

// Link is the relay to the job's worker, provided by the master.
type Link interface {
	// Stdin sends input, the end of input (eof) or a signal to the
	// running attempt; ErrNotRunning when it is not running here.
	Stdin(data []byte, eof bool, signal string) error
	// End stops the job (cancelled, with reason as its error): its client
	// left or it went idle.
	End(reason string)
}

// Errors callers branch on.
var (
	// ErrNotRunning: the job has not started yet, or has ended.
	ErrNotRunning = errors.New("attach: the job is not running")
	// ErrClosed: the session is over (its job ended, or Close).
	ErrClosed = errors.New("attach: the session is closed")
)

// SignalHelp says which signals a client may send.
const SignalHelp = "one of SIGINT, SIGTERM, SIGKILL, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGSTOP, SIGCONT, SIGTSTP, SIGWINCH"

// ValidSignal reports whether a client may send the named signal
// ("SIGINT" or "INT"): those a terminal's user could, and the ends.
func ValidSignal(name string) bool {
	name = strings.TrimPrefix(name, "SIG")
	switch name {
	case "INT", "TERM", "KILL", "QUIT", "HUP", "USR1", "USR2", "STOP", "CONT", "TSTP", "WINCH":
		return true
	}
	return false
}

// Defaults of Config.
const (
	DefaultIdle      = 60 * time.Second
	DefaultInputRate = 64 << 10
	// MaxPendingOutput is the output kept for a client that has not read
	// it yet.
	MaxPendingOutput = 1 << 20
	// MaxInputChunk is the most input one Write sends at once.
	MaxInputChunk = 16 << 10
)

// Config configures New.
type Config struct {
	// Idle ends a running job that has had neither input nor output for
	// that long (DefaultIdle).
	Idle time.Duration
	// InputRate throttles input, in bytes a second (DefaultInputRate);
	// a burst of one second's worth passes at once.
	InputRate int
	Link      Link
}

// Session is one client attached to one interactive job. Its methods are
// safe for concurrent use: one goroutine reads events, another writes.
type Session struct {
	cfg Config

	mu      sync.Mutex
	queue   []Event
	pending int64 // output bytes in queue
	dropped int64
	exited  bool // the exit event is queued: nothing follows it
	running bool // the job's attempt runs: input may go
	closed  bool
	ended   chan struct{} // closed once exited or closed
	idle    *time.Timer
	wake    chan struct{} // an event was queued, or the state changed
	// tokens is the input allowance (bytes), refilled at InputRate.
	tokens float64
	last   time.Time
}

// New returns a session for a job that has not started yet.
func New(cfg Config) *Session {
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.InputRate <= 0 {
		cfg.InputRate = DefaultInputRate
	}
	return &Session{
		cfg: cfg, wake: make(chan struct{}), ended: make(chan struct{}),
		tokens: float64(cfg.InputRate), last: time.Now(),
	}
}

// Ended is closed once the session is over: the exit is queued, or the
// client left.
func (s *Session) Ended() <-chan struct{} { return s.ended }

// endLocked marks the session over. Called with s.mu held, once.
func (s *Session) endLocked() {
	if s.idle != nil {
		s.idle.Stop()
	}
	close(s.ended)
	s.notifyLocked()
}

// notifyLocked wakes whoever waits on the session. Called with s.mu held.
func (s *Session) notifyLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// Next returns the next event, waiting for it; after the exit event it
// returns ErrClosed.
func (s *Session) Next(ctx context.Context) (Event, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
			if ev.Kind == KindOutput {
				s.pending -= int64(len(ev.Data))
			}
			s.mu.Unlock()
			return ev, nil
		}
		if s.exited || s.closed {
			s.mu.Unlock()
			return Event{}, ErrClosed
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Write sends input to the program, throttled (see the package comment);
// it waits for the job to start.
func (s *Session) Write(ctx context.Context, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), MaxInputChunk)
		if err := s.waitInput(ctx, n); err != nil {
			return err
		}
		if err := s.cfg.Link.Stdin(data[:n], false, ""); err != nil {
			return err
		}
		s.touch()
		data = data[n:]
	}
	return nil
}

// CloseStdin ends the program's input (it reads EOF); it waits for the
// job to start.
func (s *Session) CloseStdin(ctx context.Context) error {
	if err := s.waitInput(ctx, 0); err != nil {
		return err
	}
	return s.cfg.Link.Stdin(nil, true, "")
}

// Signal sends a signal ("SIGINT", "SIGTERM", "SIGKILL", …) to the
// program's processes; it waits for the job to start.
func (s *Session) Signal(ctx context.Context, name string) error {
	if err := s.waitInput(ctx, 0); err != nil {
		return err
	}
	s.touch()
	return s.cfg.Link.Stdin(nil, false, name)
}

// waitInput waits until the job runs and n bytes of input are allowed.
func (s *Session) waitInput(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		if s.exited || s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		var wait time.Duration
		if s.running {
			now := time.Now()
			rate := float64(s.cfg.InputRate)
			s.tokens = min(rate, s.tokens+now.Sub(s.last).Seconds()*rate)
			s.last = now
			if s.tokens >= float64(n) {
				s.tokens -= float64(n)
				s.mu.Unlock()
				return nil
			}
			wait = time.Duration((float64(n) - s.tokens) / rate * float64(time.Second))
		}
		wake := s.wake
		s.mu.Unlock()
		var t *time.Timer
		var timer <-chan time.Time
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-wake:
		case <-timer:
		case <-ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Close ends the session: its client left. A job still running or
// waiting is ended (Link.End) unless it already exited.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	exited := s.exited
	s.queue, s.pending = nil, 0
	if !exited {
		s.endLocked()
	}
	s.mu.Unlock()
	if !exited {
		s.cfg.Link.End("its client detached")
	}
}

// Refuse ends the session with an exit that carries msg instead of the
// job (another client attached first, the master stops): the job is left
// as it is.
func (s *Session) Refuse(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited || s.closed {
		return
	}
	s.queue = append(s.queue, Event{Kind: KindExit, Error: msg, Dropped: s.dropped})
	s.exited = true
	s.endLocked()
}

// The master's side: what the job does, as it happens.

// Started says the job's attempt runs: input may go, and the idle clock
// starts.
func (s *Session) Started() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running || s.exited || s.closed {
		return
	}
	s.running = true
	s.last = time.Now()
	s.idle = time.AfterFunc(s.cfg.Idle, s.idleOut)
	s.notifyLocked()
}

// Stage queues a stage event.
func (s *Session) Stage(stage string) {
	s.push(Event{Kind: KindStage, Stage: stage})
}

// Output queues output, or drops it when the client has not read
// MaxPendingOutput bytes already.
func (s *Session) Output(stream string, data []byte) {
	s.touch()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited || s.closed {
		return
	}
	if s.pending+int64(len(data)) > MaxPendingOutput {
		s.dropped += int64(len(data))
		return
	}
	s.pending += int64(len(data))
	s.queue = append(s.queue, Event{Kind: KindOutput, Stream: stream, Data: data})
	s.notifyLocked()
}

// Exit queues the exit event with the finished job; nothing follows it.
func (s *Session) Exit(j *api.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited || s.closed {
		return
	}
	s.queue = append(s.queue, Event{Kind: KindExit, Job: j, Dropped: s.dropped})
	s.exited = true
	s.endLocked()
}

func (s *Session) push(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited || s.closed {
		return
	}
	s.queue = append(s.queue, ev)
	s.notifyLocked()
}

// touch restarts the idle clock.
func (s *Session) touch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil && !s.exited && !s.closed {
		s.idle.Reset(s.cfg.Idle)
	}
}

func (s *Session) idleOut() {
	s.cfg.Link.End("idle: no input and no output for " + s.cfg.Idle.String())
}
