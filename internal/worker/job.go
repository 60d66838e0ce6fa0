package worker

import (
	"context"
	"errors"
	"sync"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/runner"
)

// start runs an assigned attempt in its own goroutine.
func (w *Worker) start(a *clusterpb.Assign) {
	if a.Attempt == nil || a.Spec == nil {
		return
	}
	k := attemptKey{a.Attempt.JobId, a.Attempt.Attempt}
	if w.isUnhealthy() {
		// Placed here before the master heard the worker is unhealthy.
		w.emit(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Release{Release: &clusterpb.Release{
			Attempt: a.Attempt, Reason: "worker " + w.cfg.Name + " is unhealthy", Infrastructure: true,
		}}})
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.mu.Lock()
	if _, dup := w.running[k]; dup {
		w.mu.Unlock()
		cancel()
		return
	}
	j := &runningJob{cancel: cancel}
	if a.Spec.Interactive {
		j.input = newStdinFeed()
	}
	w.running[k] = j
	w.wg.Add(1)
	w.mu.Unlock()
	w.log.Debug("attempt started", "job", k.id, "attempt", k.n)
	go func() {
		defer w.wg.Done()
		defer cancel()
		res, infraErr := w.run(ctx, k, a.Spec, j.input)
		if j.input != nil {
			j.input.close()
		}
		enc := encodeIfBig(res)
		w.mu.Lock()
		delete(w.running, k)
		handedBack := j.handedBack
		if !handedBack && infraErr == nil {
			w.pending[k] = res
			if enc != nil {
				w.encoded[k] = enc
			}
		}
		w.idle.Broadcast()
		w.mu.Unlock()
		switch {
		case handedBack:
		case infraErr != nil:
			w.giveBack(k, infraErr)
		default:
			w.jobRan()
			w.resultsChanged()
		}
	}()
}

// run runs one attempt. A failure of the worker's own machinery is
// returned as infraErr, with no result: it is not the program's doing, so
// the attempt is given back to run elsewhere rather than fail the job
// with the worker's internals in its error.
func (w *Worker) run(ctx context.Context, k attemptKey, spec *clusterpb.JobSpec, input *stdinFeed) (res *clusterpb.Result, infraErr error) {
	// Chunks are numbered by their offset in the attempt's output, and
	// emitted in that order (the streams' readers call out concurrently).
	var (
		outMu  sync.Mutex
		offset int64
	)
	out := func(test int, stream string, data []byte) {
		outMu.Lock()
		defer outMu.Unlock()
		w.emit(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Output{Output: &clusterpb.Output{
			Attempt: k.ref(), Stream: stream, Data: append([]byte(nil), data...), Test: int32(test), Offset: offset,
		}}})
		offset += int64(len(data))
	}
	rs := specFromProto(spec)
	if input != nil {
		rs.Interactive = &runner.Interactive{
			Stdin: input, Signals: input.signals,
			Stage: func(stage string) { w.emitStage(k, stage) },
		}
	}
	r, err := w.cfg.Runner.Run(ctx, rs, out)
	if err == nil {
		return resultToProto(k, r), nil
	}
	var msg string
	switch {
	case ctx.Err() != nil:
		// Cancelled, or handed back: the master records nothing of it.
		msg = "the job was stopped"
	case errors.Is(err, runner.ErrBadSpec):
		// The job's own fault; the message names its files only.
		msg = err.Error()
	case errors.Is(err, runner.ErrNoToolchain):
		msg = "worker " + w.cfg.Name + ": " + err.Error()
	default:
		return nil, err
	}
	w.log.Warn("job could not run", "job", k.id, "attempt", k.n, "err", err)
	return &clusterpb.Result{Attempt: k.ref(), Error: msg}, nil
}

func specFromProto(p *clusterpb.JobSpec) *runner.Spec {
	s := &runner.Spec{
		Language: p.Language, Version: p.Version, Stdin: p.Stdin,
		Args: p.Args, CompileArgs: p.CompileArgs,
		Expected: p.ExpectedOutput, HasExpected: p.HasExpected,
		StopOnFailure: p.StopOnFailure,
	}
	for _, f := range p.Files {
		s.Files = append(s.Files, runner.File{Name: f.Name, Content: f.Content})
	}
	if l := p.Limits; l != nil {
		s.Limits = runner.Limits{
			CPU: msDuration(l.CpuMs), Wall: msDuration(l.WallMs),
			MemoryBytes: l.MemoryMb << 20, Processes: l.Processes, OutputBytes: l.OutputKb << 10, TotalOutputBytes: l.TotalOutputKb << 10,
		}
	}
	for _, t := range p.Tests {
		s.Tests = append(s.Tests, runner.Test{Stdin: t.Stdin, Expected: t.ExpectedOutput, HasExpected: t.HasExpected})
	}
	return s
}

func resultToProto(k attemptKey, r *runner.Result) *clusterpb.Result {
	p := &clusterpb.Result{Attempt: k.ref(), Verdict: r.Verdict, Version: r.Version}
	if c := r.Compile; c != nil {
		p.Compile = &clusterpb.Compile{
			ExitCode: int32(c.ExitCode), Stdout: c.Stdout, Stderr: c.Stderr,
			WallMs: c.Wall.Milliseconds(), Cached: c.Cached, Ran: true,
		}
	}
	if r.Run != nil {
		p.Run = execToProto(r.Run)
	}
	for i := range r.Tests {
		p.Tests = append(p.Tests, execToProto(&r.Tests[i]))
	}
	return p
}

func execToProto(e *runner.Exec) *clusterpb.RunResult {
	return &clusterpb.RunResult{
		ExitCode: int32(e.ExitCode), Signal: e.Signal, Stdout: e.Stdout, Stderr: e.Stderr,
		CpuMs: e.CPU.Milliseconds(), WallMs: e.Wall.Milliseconds(), MemoryKb: e.MemoryKB,
		OutputTruncated: e.OutputTruncated, Verdict: e.Verdict,
	}
}
