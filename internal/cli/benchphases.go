package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/bench"
)

// phases splits one job's latency as the client saw it, from the master's
// timestamps and the worker's measurements:
//   - queue: accepted → placed (created_at → started_at): the store commit
//     of the submission, the queue, the dispatch and the attempt's commit;
//   - exec: the compile and run wall times the worker measured;
//   - worker: started_at → finished_at minus exec: the gRPC hop both ways,
//     the work directory, the process start, the result's commit;
//   - client: the rest: TLS and HTTP, authentication, validation, the
//     answer's encoding, the client's own decoding.
type phases struct{ queue, exec, worker, client time.Duration }

// phaseLog collects the phases of the jobs of one benchmark.
type phaseLog struct {
	mu  sync.Mutex
	all []phases
}

func (l *phaseLog) add(job *api.Job, latency time.Duration) {
	if job.StartedAt == nil || job.FinishedAt == nil {
		return
	}
	var p phases
	p.queue = job.StartedAt.Sub(job.CreatedAt)
	if job.Compile != nil {
		p.exec += time.Duration(job.Compile.WallMs) * time.Millisecond
	}
	if job.Run != nil {
		p.exec += time.Duration(job.Run.WallMs) * time.Millisecond
	}
	p.worker = job.FinishedAt.Sub(*job.StartedAt) - p.exec
	p.client = latency - job.FinishedAt.Sub(job.CreatedAt)
	l.mu.Lock()
	l.all = append(l.all, p)
	l.mu.Unlock()
}

// print writes the median of each phase. Medians of parts do not add up to
// the median of the whole, but they show where a typical job's time goes.
func (l *phaseLog) print(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return
	}
	med := func(f func(phases) time.Duration) string {
		ds := make([]time.Duration, len(l.all))
		for i, p := range l.all {
			ds[i] = f(p)
		}
		slices.Sort(ds)
		return fmtMs(bench.Percentile(ds, 50))
	}
	fmt.Fprintf(w, "where a job's time goes (medians): client+HTTP %s, queue+dispatch %s, worker+hops %s, program (compile+run wall) %s\n",
		med(func(p phases) time.Duration { return p.client }),
		med(func(p phases) time.Duration { return p.queue }),
		med(func(p phases) time.Duration { return p.worker }),
		med(func(p phases) time.Duration { return p.exec }))
}

// localCompiler says how to build a compiled benchmark program once for the
// local baseline: the compiler and its flags (those of the catalogue).
func localCompiler(lang string) (string, []string) {
	switch lang {
	case "c":
		return "gcc", []string{"-O2", "-pipe", "-std=gnu17"}
	case "cpp":
		return "g++", []string{"-O2", "-pipe", "-std=gnu++17"}
	}
	return "", nil
}

// benchLocalCompiled compiles source once, then runs the binary n times at
// the given concurrency: the bare exec a sandboxed run is compared with.
func benchLocalCompiled(ctx context.Context, lang, source string, n, concurrency int) (bench.Stats, error) {
	cc, flags := localCompiler(lang)
	path, err := exec.LookPath(cc)
	if err != nil {
		return bench.Stats{}, err
	}
	dir, err := os.MkdirTemp("", "grappe-bench-")
	if err != nil {
		return bench.Stats{}, err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "main."+lang)
	if err := os.WriteFile(src, []byte(source), 0o600); err != nil {
		return bench.Stats{}, err
	}
	bin := filepath.Join(dir, "main")
	if out, err := exec.CommandContext(ctx, path, append(flags, "-o", bin, src)...).CombinedOutput(); err != nil {
		return bench.Stats{}, fmt.Errorf("%s: %v: %s", cc, err, out)
	}
	run := func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, bin)
		cmd.Dir = dir
		return cmd.Run()
	}
	return bench.Run(ctx, n, concurrency, run), nil
}
