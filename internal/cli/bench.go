package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/bench"
)

// localInterpreter says how to run a benchmark program directly on this
// machine, for the baseline: the interpreter given the source file.
// Compiled languages have no baseline (their cost is the compiler's).
func localInterpreter(lang string) string {
	switch lang {
	case "bash":
		return "bash"
	case "sh":
		return "sh"
	case "python":
		return "python3"
	case "javascript":
		return "node"
	case "ruby":
		return "ruby"
	case "perl":
		return "perl"
	}
	return ""
}

func newBenchCmd() *cobra.Command {
	var (
		jobs, concurrency int
		lang, source      string
		timeout           time.Duration
		noLocal, spread   bool
		sim               simFlags
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the cluster's throughput and latency against a bare local exec",
		Long: `Bench submits --jobs trivial jobs, --concurrency at a time, each with
?wait=true, and reports jobs per second and the latency percentiles. In the
same run it executes the same program directly on this machine the same number
of times at the same concurrency (bash FILE for bash), so the two columns show
what the cluster adds to running the program at all.

With --spread and several comma-separated addresses (masters sharing one
PostgreSQL database), job i goes to master i mod n, one client each, instead
of all to the first that answers.

With --simulate-workers N it first starts N simulated workers in this process
(package simfleet: the real join, mTLS, heartbeats; no program is run, each
job answers with exit code 0 after --sim-run-time), waits until the master
lists them up, and reports the time that took and the master's memory (from
its /metrics) before the run; there is no local baseline then. The cluster
address is --cluster-addr, the join token --join-token (or the master's
DIR/join-token beside --ca).`,
		Args: cobra.NoArgs,
	}
	cf := addConnFlags(cmd)
	f := cmd.Flags()
	f.IntVar(&jobs, "jobs", 200, "number of jobs")
	f.IntVar(&concurrency, "concurrency", 8, "jobs in flight at once")
	f.StringVar(&lang, "lang", "bash", "language of the program")
	f.StringVar(&source, "source", "exit 0", "the program")
	f.DurationVar(&timeout, "timeout", time.Minute, "longest wait for one job")
	f.BoolVar(&noLocal, "no-local", false, "skip the local exec baseline")
	f.BoolVar(&spread, "spread", false, "send job i to the i mod n-th of the comma-separated addresses, not all to the first that answers")
	sim.register(f)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if jobs < 1 || concurrency < 1 {
			return errors.New("--jobs and --concurrency must be at least 1")
		}
		sp, err := newSpreader(cf, spread)
		if err != nil {
			return err
		}
		defer sp.Close()
		ctx := cmd.Context()
		out := cmd.OutOrStdout()
		req := &api.JobRequest{Language: lang, Source: source}
		var fleet *simRun
		if sim.workers > 0 {
			cfg, err := cf.config()
			if err != nil {
				return err
			}
			if fleet, err = startSim(ctx, out, &sim, cfg, sp.clients[0], lang); err != nil {
				return err
			}
			defer fleet.stop()
			noLocal = true // the fleet runs nothing: no baseline to compare
		}
		var log phaseLog
		measure := false
		runJob := func(ctx context.Context) error {
			start := time.Now()
			job, err := benchJob(ctx, sp.next(), req, timeout)
			if err == nil && measure {
				log.add(job, time.Since(start))
			}
			return err
		}

		fmt.Fprintf(out, "grappe bench: %d jobs of %s %q, concurrency %d, %s\n", jobs, lang, source, concurrency, sp.describe())
		// One job first on each master: it opens the connection, warms
		// the workers' caches, and stops the run early when the job
		// cannot succeed.
		for range sp.len() {
			t0 := time.Now()
			if err := runJob(ctx); err != nil {
				return fmt.Errorf("warm-up job: %w", err)
			}
			fmt.Fprintf(out, "warm-up job: %s\n", fmtMs(time.Since(t0)))
		}
		measure = true
		if fleet != nil {
			fleet.mark(ctx)
		}
		cpu0, haveCPU := readCPUTimes()
		cluster := bench.Run(ctx, jobs, concurrency, runJob)
		cpu1, _ := readCPUTimes()

		var local *bench.Stats
		localNote := ""
		localName := interpName(lang)
		switch interp := localInterpreter(lang); {
		case noLocal:
		case interp == "":
			cc, _ := localCompiler(lang)
			if cc == "" {
				localNote = "no local baseline for " + lang
				break
			}
			localName = "local exec"
			s, err := benchLocalCompiled(ctx, lang, source, jobs, concurrency)
			if err != nil {
				localNote = "no local baseline: " + err.Error()
			} else {
				local = &s
			}
		default:
			s, err := benchLocal(ctx, interp, source, jobs, concurrency)
			if err != nil {
				localNote = "no local baseline: " + err.Error()
			} else {
				local = &s
			}
		}
		if ctx.Err() != nil {
			return &exitError{code: exitInterrupted}
		}
		printBench(out, cluster, local, localName)
		log.print(out)
		if haveCPU {
			printCPU(out, "cluster", cpu0, cpu1, jobs)
		}
		if fleet != nil {
			fleet.report(ctx, out, sp.clients[0], jobs)
		}
		if localNote != "" {
			fmt.Fprintln(out, localNote)
		}
		if cluster.Errors > 0 {
			return fmt.Errorf("%d of %d jobs failed; the first: %w", cluster.Errors, cluster.N, cluster.FirstErr)
		}
		return nil
	}
	return cmd
}

func interpName(lang string) string {
	if i := localInterpreter(lang); i != "" {
		return "local " + i
	}
	return "local"
}

// benchJob runs one job to its end and checks that it succeeded.
func benchJob(ctx context.Context, c *client.Client, req *api.JobRequest, timeout time.Duration) (*api.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	job, err := c.SubmitWait(ctx, req, timeout)
	if err != nil {
		return nil, err
	}
	if !job.Terminal() {
		if job, err = c.Wait(ctx, job.ID); err != nil {
			return nil, err
		}
	}
	if job.Status != api.StatusDone || job.Verdict != api.VerdictOK {
		return nil, fmt.Errorf("job %s: %s %s %s", job.ID, job.Status, job.Verdict, job.Error)
	}
	return job, nil
}

// benchLocal runs `interp FILE` n times at the given concurrency, FILE
// holding source, and returns the statistics.
func benchLocal(ctx context.Context, interp, source string, n, concurrency int) (bench.Stats, error) {
	path, err := exec.LookPath(interp)
	if err != nil {
		return bench.Stats{}, err
	}
	dir, err := os.MkdirTemp("", "grappe-bench-")
	if err != nil {
		return bench.Stats{}, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "prog")
	if err := os.WriteFile(file, []byte(source), 0o600); err != nil {
		return bench.Stats{}, err
	}
	run := func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, path, file)
		cmd.Dir = dir
		return cmd.Run() // stdin, stdout, stderr: /dev/null, as in a sandbox
	}
	if err := run(ctx); err != nil {
		return bench.Stats{}, fmt.Errorf("%s %s: %w", interp, file, err)
	}
	return bench.Run(ctx, n, concurrency, run), nil
}

// printBench prints the cluster's and the local statistics side by side.
func printBench(w io.Writer, cluster bench.Stats, local *bench.Stats, localName string) {
	tw := tableWriter(w)
	fmt.Fprintf(tw, "\tcluster")
	if local != nil {
		fmt.Fprintf(tw, "\t%s", localName)
	}
	fmt.Fprintln(tw)
	row := func(name string, f func(s bench.Stats) string) {
		fmt.Fprintf(tw, "%s\t%s", name, f(cluster))
		if local != nil {
			fmt.Fprintf(tw, "\t%s", f(*local))
		}
		fmt.Fprintln(tw)
	}
	row("ok / failed", func(s bench.Stats) string { return fmt.Sprintf("%d / %d", s.N-s.Errors, s.Errors) })
	row("elapsed", func(s bench.Stats) string { return s.Elapsed.Round(time.Millisecond).String() })
	row("throughput", func(s bench.Stats) string { return fmt.Sprintf("%.1f jobs/s", s.Throughput) })
	row("p50", func(s bench.Stats) string { return fmtMs(s.P50) })
	row("p95", func(s bench.Stats) string { return fmtMs(s.P95) })
	row("p99", func(s bench.Stats) string { return fmtMs(s.P99) })
	row("max", func(s bench.Stats) string { return fmtMs(s.Max) })
	tw.Flush()
	if local != nil && local.P50 > 0 {
		fmt.Fprintf(w, "p50 added by the cluster: %+.2f ms (%.1fx the local exec)\n",
			float64(cluster.P50-local.P50)/float64(time.Millisecond), float64(cluster.P50)/float64(local.P50))
	}
}

func fmtMs(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
