package worker

import (
	"context"
	"errors"

	"github.com/grappe/grappe/api/clusterpb"
	"github.com/grappe/grappe/internal/runner"
)

// start runs an assigned attempt in its own goroutine.
func (w *Worker) start(a *clusterpb.Assign) {
	if a.Attempt == nil || a.Spec == nil {
		return
	}
	k := attemptKey{a.Attempt.JobId, a.Attempt.Attempt}
	ctx, cancel := context.WithCancel(context.Background())
	w.mu.Lock()
	if _, dup := w.running[k]; dup {
		w.mu.Unlock()
		cancel()
		return
	}
	j := &runningJob{cancel: cancel}
	w.running[k] = j
	w.wg.Add(1)
	w.mu.Unlock()
	w.log.Debug("attempt started", "job", k.id, "attempt", k.n)
	go func() {
		defer w.wg.Done()
		defer cancel()
		res := w.run(ctx, k, a.Spec)
		w.mu.Lock()
		delete(w.running, k)
		handedBack := j.handedBack
		if !handedBack {
			w.pending[k] = res
		}
		w.idle.Broadcast()
		w.mu.Unlock()
		if !handedBack {
			w.emit(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Result{Result: res}})
		}
	}()
}

func (w *Worker) run(ctx context.Context, k attemptKey, spec *clusterpb.JobSpec) *clusterpb.Result {
	out := func(test int, stream string, data []byte) {
		w.emit(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Output{Output: &clusterpb.Output{
			Attempt: k.ref(), Stream: stream, Data: append([]byte(nil), data...), Test: int32(test),
		}}})
	}
	res, err := w.cfg.Runner.Run(ctx, specFromProto(spec), out)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, runner.ErrNoToolchain) {
			msg = "worker " + w.cfg.Name + ": " + msg
		}
		w.log.Warn("job could not run", "job", k.id, "attempt", k.n, "err", err)
		return &clusterpb.Result{Attempt: k.ref(), Error: msg}
	}
	return resultToProto(k, res)
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
