package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
)

// Exit codes of grappe run besides the program's own.
const (
	// exitTimeLimit is what timeout(1) returns when it kills a command.
	exitTimeLimit = 124
	// exitInterrupted is a shell's code for a command stopped by Ctrl-C.
	exitInterrupted = 130
)

// jobFlags are the flags describing a submission, shared by run and submit.
type jobFlags struct {
	lang, version, stdin string
	limits               api.Limits
	compileArgs          []string
	priority             int
	labels               map[string]string
	json                 bool
}

func addJobFlags(cmd *cobra.Command) *jobFlags {
	jf := &jobFlags{}
	f := cmd.Flags()
	f.StringVarP(&jf.lang, "lang", "l", "", "language (default: guessed from the first file's extension)")
	f.StringVar(&jf.version, "version", "", "toolchain version constraint, e.g. 3.11")
	f.StringVar(&jf.stdin, "stdin", "", "file to give the program as its stdin (- for grappe's own stdin)")
	f.Int64Var(&jf.limits.CPUMs, "cpu-ms", 0, "CPU time limit in ms (0: the cluster's default)")
	f.Int64Var(&jf.limits.WallMs, "wall-ms", 0, "wall time limit in ms (0: the cluster's default)")
	f.Int64Var(&jf.limits.MemoryMB, "memory-mb", 0, "memory limit in MB (0: the cluster's default)")
	f.Int64Var(&jf.limits.Processes, "processes", 0, "process limit (0: the cluster's default)")
	f.Int64Var(&jf.limits.OutputKB, "output-kb", 0, "output limit in KB (0: the cluster's default)")
	f.Int64Var(&jf.limits.TotalOutputKB, "total-output-kb", 0, "the whole job's output budget in KB: compile, every test, both streams (0: the cluster's default)")
	f.StringArrayVar(&jf.compileArgs, "compile-arg", nil, "extra compiler argument (repeatable)")
	f.IntVar(&jf.priority, "priority", 0, "priority among your own jobs (higher first)")
	f.StringToStringVar(&jf.labels, "label", nil, "worker label the job requires, k=v (repeatable)")
	f.BoolVar(&jf.json, "json", false, "print the whole job as JSON")
	return jf
}

// request builds the job request from the source files, the program's
// arguments and the flags; stdin is grappe's own (for --stdin -).
func (jf *jobFlags) request(files, args []string, stdin io.Reader) (*api.JobRequest, error) {
	if len(files) == 0 {
		return nil, errors.New("no source file given")
	}
	req := &api.JobRequest{
		Language:    jf.lang,
		Version:     jf.version,
		Args:        args,
		CompileArgs: jf.compileArgs,
		Limits:      jf.limits,
		Priority:    jf.priority,
		Labels:      jf.labels,
	}
	if req.Language == "" {
		if req.Language = languageOf(files[0]); req.Language == "" {
			return nil, fmt.Errorf("cannot tell the language of %s from its extension: use --lang", files[0])
		}
	}
	seen := map[string]bool{}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		base := filepath.Base(name)
		if seen[base] {
			return nil, fmt.Errorf("two source files named %s", base)
		}
		seen[base] = true
		f := api.File{Name: base, Content: string(b)}
		if !utf8.Valid(b) {
			f.Content, f.Encoding = base64.StdEncoding.EncodeToString(b), api.EncodingBase64
		}
		req.Files = append(req.Files, f)
	}
	// One text file goes as "source": the catalogue then names it the way
	// its toolchain expects (Main.java, main.c…), whatever the file is called
	// here. Several files, or a binary one, keep their names.
	if len(req.Files) == 1 && req.Files[0].Encoding == "" {
		req.Source, req.Files = req.Files[0].Content, nil
	}
	if jf.stdin != "" {
		var b []byte
		var err error
		if jf.stdin == "-" {
			b, err = io.ReadAll(stdin)
		} else {
			b, err = os.ReadFile(jf.stdin)
		}
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		req.Stdin = string(b)
		if !utf8.Valid(b) {
			req.Stdin, req.StdinEncoding = base64.StdEncoding.EncodeToString(b), api.EncodingBase64
		}
	}
	return req, nil
}

// splitDash separates source files from the program's arguments (after --).
func splitDash(cmd *cobra.Command, args []string) (files, progArgs []string) {
	if i := cmd.ArgsLenAtDash(); i >= 0 {
		return args[:i], args[i:]
	}
	return args, nil
}

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run FILE... [-- ARGS...]",
		Short: "Run a program on the cluster and print its output",
		Long: `Run submits the source files as one job, waits for it, prints the
program's stdout and stderr byte for byte, and exits with the program's exit
code: 128+N when a signal N killed it, 1 on a compile error (the compiler's
output goes to stderr) or a failed job, 124 on a time limit, 1 on other
limits, 130 when interrupted (the job is then cancelled).

With --json the whole job is printed instead, and the exit code is 0 once the
job has finished, whatever the program did.

With --interactive the program reads grappe's own stdin as it comes (type
into it; its end is the program's EOF) and its output is written as it
comes: an interactive job (README: Interactive runs).`,
		Args: cobra.MinimumNArgs(1),
	}
	cf := addConnFlags(cmd)
	jf := addJobFlags(cmd)
	interactive := cmd.Flags().BoolP("interactive", "i", false, "give the program grappe's stdin as it comes, and write its output as it comes")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *interactive && jf.stdin != "" {
			return errors.New("--stdin and --interactive do not go together: with --interactive the program reads grappe's stdin")
		}
		c, req, err := jobClient(cmd, args, cf, jf)
		if err != nil {
			return err
		}
		defer c.Close()
		if *interactive {
			job, err := runInteractive(cmd.Context(), c, req, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if jf.json {
				return emitJSON(cmd.OutOrStdout(), job)
			}
			return reportInteractive(job, cmd.ErrOrStderr())
		}
		job, err := runAndWait(cmd.Context(), c, req, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		if jf.json {
			return emitJSON(cmd.OutOrStdout(), job)
		}
		return reportJob(job, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

// runAndWait submits req and waits for the job to finish, showing its
// progress when stderr is a terminal. It submits first and then waits,
// rather than holding one ?wait=true request open, so that it has the job's
// id from the start: the wait then rides through a master restart, and
// Ctrl-C can cancel the job.
func runAndWait(ctx context.Context, c *client.Client, req *api.JobRequest, stderr io.Writer) (*api.Job, error) {
	var show func(*api.Job)
	if fd, ok := terminalFD(stderr); ok {
		p := &runProgress{w: stderr, fd: fd}
		defer p.clear()
		show = p.show
	}
	job, err := c.Submit(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &exitError{code: exitInterrupted}
		}
		return nil, err
	}
	if job.Terminal() {
		return job, nil
	}
	if show != nil {
		show(job)
	}
	return waitOrCancel(ctx, c, job.ID, show)
}

// waitOrCancel waits for job id; when ctx ends first (Ctrl-C) it cancels
// the job on the cluster, so an abandoned run does not hold a slot.
func waitOrCancel(ctx context.Context, c *client.Client, id string, onState func(*api.Job)) (*api.Job, error) {
	job, err := c.WaitFunc(ctx, id, onState)
	if err == nil || ctx.Err() == nil {
		return job, err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, cerr := c.Cancel(cctx, id); cerr != nil && !client.IsConflict(cerr) {
		return nil, fmt.Errorf("interrupted; cancelling job %s: %w", id, cerr)
	}
	return nil, &exitError{code: exitInterrupted}
}

// runProgress shows a job's state on one line of a terminal, rewritten in place.
type runProgress struct {
	w    io.Writer
	fd   int
	last string
}

func (p *runProgress) show(j *api.Job) {
	var s string
	switch j.Status {
	case api.StatusQueued:
		s = "job " + j.ID + ": queued"
		if j.QueuePosition > 0 {
			s += fmt.Sprintf(", position %d", j.QueuePosition)
		}
	case api.StatusRunning:
		s = "job " + j.ID + ": running"
		if j.Worker != "" {
			s += " on " + j.Worker
		}
		if j.Attempts > 1 {
			s += fmt.Sprintf(" (attempt %d)", j.Attempts)
		}
	default:
		s = "job " + j.ID + ": " + j.Status
	}
	// A line wider than the terminal would wrap, and \r would then only
	// go back to the start of its last row.
	if w, _, err := term.GetSize(p.fd); err == nil && w > 1 && len(s) >= w {
		s = s[:w-1]
	}
	if s == p.last {
		return
	}
	p.last = s
	fmt.Fprint(p.w, "\r\x1b[2K"+s)
}

func (p *runProgress) clear() {
	if p.last != "" {
		fmt.Fprint(p.w, "\r\x1b[2K")
		p.last = ""
	}
}

// reportJob prints a finished job's output the way running the program
// locally would, and returns an *exitError carrying the exit code to use
// (nil for 0).
func reportJob(job *api.Job, stdout, stderr io.Writer) error {
	switch job.Status {
	case api.StatusFailed:
		fmt.Fprintf(stderr, "grappe: job %s failed: %s\n", job.ID, defaultString(job.Error, "no reason given"))
		return &exitError{code: 1}
	case api.StatusCancelled:
		fmt.Fprintf(stderr, "grappe: job %s was cancelled\n", job.ID)
		return &exitError{code: 1}
	case api.StatusDone:
	default:
		return fmt.Errorf("job %s is still %s", job.ID, job.Status)
	}
	if job.Verdict == api.VerdictCompileError {
		if cp := job.Compile; cp != nil {
			if err := writeProgramOutput(stderr, cp.Stdout, cp.StdoutEncoding); err != nil {
				return err
			}
			if err := writeProgramOutput(stderr, cp.Stderr, cp.StderrEncoding); err != nil {
				return err
			}
		}
		fmt.Fprintln(stderr, "grappe: compile error")
		return &exitError{code: 1}
	}
	run := job.Run
	if run == nil && len(job.Tests) > 0 {
		run = &job.Tests[len(job.Tests)-1].Run
	}
	if run == nil {
		fmt.Fprintf(stderr, "grappe: job %s finished (%s) without a run\n", job.ID, defaultString(job.Verdict, "no verdict"))
		return &exitError{code: 1}
	}
	if err := writeProgramOutput(stdout, run.Stdout, run.StdoutEncoding); err != nil {
		return err
	}
	if err := writeProgramOutput(stderr, run.Stderr, run.StderrEncoding); err != nil {
		return err
	}
	code := runExitCode(job, run)
	if msg := verdictMessage(job, run); msg != "" {
		fmt.Fprintln(stderr, "grappe: "+msg)
	}
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}

// exitCode is the code grappe run exits with for a finished job.
func runExitCode(job *api.Job, run *api.Run) int {
	switch job.Verdict {
	case api.VerdictTimeLimit:
		return exitTimeLimit
	case api.VerdictMemoryLimit, api.VerdictOutputLimit:
		return 1
	}
	if run.Signal != "" {
		if n := signalNumber(run.Signal); n > 0 {
			return 128 + n
		}
		return 1
	}
	if job.Verdict == api.VerdictWrongAnswer && run.ExitCode == 0 {
		return 1
	}
	if run.ExitCode < 0 || run.ExitCode > 255 {
		return 1
	}
	return run.ExitCode
}

// verdictMessage is the one line grappe run adds on stderr, or "".
func verdictMessage(job *api.Job, run *api.Run) string {
	switch job.Verdict {
	case api.VerdictTimeLimit:
		return fmt.Sprintf("time limit exceeded (cpu %d ms, wall %d ms)", run.CPUMs, run.WallMs)
	case api.VerdictMemoryLimit:
		return fmt.Sprintf("memory limit exceeded (peak %d KB)", run.MemoryKB)
	case api.VerdictOutputLimit:
		return "output limit exceeded (output truncated)"
	case api.VerdictWrongAnswer:
		return "wrong answer"
	}
	if run.Signal != "" {
		return "program killed by " + signalName(run.Signal)
	}
	return ""
}

// writeOutput writes program output byte for byte, decoding base64 output.
func writeProgramOutput(w io.Writer, s, encoding string) error {
	if s == "" {
		return nil
	}
	if encoding == api.EncodingBase64 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("decode program output: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	_, err := io.WriteString(w, s)
	return err
}

// linuxSignals numbers the signals by their Linux numbers: workers run
// Linux, whatever the client's system is.
func linuxSignals() map[string]int {
	return map[string]int{
		"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7,
		"FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13,
		"ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19,
		"TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25,
		"VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "PWR": 30, "SYS": 31,
	}
}

// signalNumber parses "SIGSEGV", "SEGV", "segv" or "11"; 0 if unknown.
func signalNumber(s string) int {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 128 {
		return n
	}
	return linuxSignals()[strings.TrimPrefix(strings.ToUpper(s), "SIG")]
}

// signalName renders a signal as SIGxxx when it can.
func signalName(s string) string {
	n := signalNumber(s)
	for name, num := range linuxSignals() {
		if num == n {
			return "SIG" + name
		}
	}
	return s
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func newSubmitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "submit FILE... [-- ARGS...]",
		Short: "Submit a program and print the job's id without waiting",
		Args:  cobra.MinimumNArgs(1),
	}
	cf := addConnFlags(cmd)
	jf := addJobFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, req, err := jobClient(cmd, args, cf, jf)
		if err != nil {
			return err
		}
		defer c.Close()
		job, err := c.Submit(cmd.Context(), req)
		if err != nil {
			return err
		}
		if jf.json {
			return emitJSON(cmd.OutOrStdout(), job)
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), job.ID)
		return err
	}
	return cmd
}

// jobClient builds the submission of run and submit from the files and
// flags, and opens the client that sends it.
func jobClient(cmd *cobra.Command, args []string, cf *connFlags, jf *jobFlags) (*client.Client, *api.JobRequest, error) {
	files, progArgs := splitDash(cmd, args)
	req, err := jf.request(files, progArgs, cmd.InOrStdin())
	if err != nil {
		return nil, nil, err
	}
	c, err := cf.client()
	if err != nil {
		return nil, nil, err
	}
	return c, req, nil
}
