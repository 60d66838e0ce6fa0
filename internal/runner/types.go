package runner

import (
	"io"
	"syscall"
	"time"
)

// File is one source file of a job.
type File struct {
	Name    string
	Content []byte
}

// Limits bound each compile or run of a job. Zero means the runner's default.
type Limits struct {
	CPU         time.Duration
	Wall        time.Duration
	MemoryBytes int64
	Processes   int64
	OutputBytes int64 // each stream of each run
	// TotalOutputBytes is the whole job's output budget: the compile's
	// output and both streams of every run together. Past it the job
	// stops with the verdict output_limit. Compile limits ignore it.
	TotalOutputBytes int64
}

// Test is one test case: its own stdin, optionally an expected output.
type Test struct {
	Stdin       []byte
	Expected    []byte
	HasExpected bool
}

// Spec is what to run.
type Spec struct {
	Language    string
	Version     string // constraint; empty means any
	Files       []File
	Stdin       []byte
	Args        []string
	CompileArgs []string
	Limits      Limits
	Expected    []byte
	HasExpected bool
	// Tests, when set, replace the single run: compile once, run each.
	Tests         []Test
	StopOnFailure bool
	// Interactive, if set, connects the single run to a person (Tests
	// are then refused): Stdin replaces Spec.Stdin.
	Interactive *Interactive
}

// Interactive is what connects a run to a person as it runs.
type Interactive struct {
	// Stdin is the program's stdin as the person types it; its EOF is
	// the program's. The runner does not close it: its owner ends a Read
	// in progress once Run has returned.
	Stdin io.Reader
	// Signals are sent to every process of the program while it runs.
	Signals <-chan syscall.Signal
	// Stage, if set, hears each step begin: "compile" (languages that
	// compile), then "run".
	Stage func(stage string)
}

// Stages of an interactive job.
const (
	StageCompile = "compile"
	StageRun     = "run"
)

func (in *Interactive) stage(s string) {
	if in != nil && in.Stage != nil {
		in.Stage(s)
	}
}

// Compile is the compile step's outcome. A cached compile has Cached set,
// the original compiler's output and, as Wall, the time taken to copy the
// artifacts.
type Compile struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	Wall     time.Duration
	Cached   bool
}

// Exec is one run's outcome.
type Exec struct {
	Verdict string
	// ExitCode is the exit status, or 128+n when killed by signal n.
	ExitCode int
	// Signal names the signal that killed the program ("SIGSEGV"), if any.
	Signal          string
	Stdout          []byte
	Stderr          []byte
	OutputTruncated bool
	CPU             time.Duration
	Wall            time.Duration
	MemoryKB        int64
}

// Result is a job's outcome.
type Result struct {
	Verdict string
	Version string   // toolchain version that ran it
	Compile *Compile // nil when the language has no compile step
	Run     *Exec    // the single run, or the first failing / last test
	Tests   []Exec   // one per test case when Spec.Tests is set
}

// OutputFunc receives output as the program produces it. test is the index
// of the test case, or -1 for a job without tests.
type OutputFunc func(test int, stream string, data []byte)
