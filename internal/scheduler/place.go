// Package scheduler chooses a master's workers for new work. It is pure
// logic with no I/O: the master keeps its workers in an Index, updated as
// they change, and the store's claim asks it for the worker of each job
// (the store orders the jobs, fair between owners: store.FairOrder,
// store.Place).
//
// A worker takes work when it is up, has a free slot and is under the CPU
// and memory thresholds; the least loaded comes first, ties in a random
// order so that equal workers share the work.
package scheduler

import (
	"math/rand/v2"
	"strings"
)

// Requirements say what a worker must offer to run a job.
type Requirements struct {
	Language string
	Version  string // empty, an exact version, or a prefix ("3.11" matches "3.11.2")
	Labels   map[string]string
}

// Worker is a worker as the scheduler sees it.
type Worker struct {
	ID string
	// Languages maps a language name to the versions the worker runs.
	Languages map[string][]string
	Labels    map[string]string
	Slots     int
	Running   int
	// CPUPercent and MemoryPercent are the machine's load, 0–100.
	CPUPercent    float64
	MemoryPercent float64
	// Available is false for a worker that is draining, lost or not yet
	// welcomed: it keeps its running jobs but takes no new ones.
	Available bool
	// Testing maps a language name to the versions whose self-test the
	// worker is still running: no job is placed for them, but a job that
	// only they could run waits for them past its placement timeout.
	Testing map[string][]string
}

// Capable reports whether w can run jobs with these requirements at all,
// whatever its current load.
func (w *Worker) Capable(r Requirements) bool {
	versions, ok := w.Languages[r.Language]
	if !ok {
		return false
	}
	if r.Version != "" && !anyVersionMatches(versions, r.Version) {
		return false
	}
	for k, v := range r.Labels {
		if w.Labels[k] != v {
			return false
		}
	}
	return true
}

// VersionMatches reports whether an installed version satisfies a requested
// one: equal, or the request is a prefix ending at a dot ("3.11" matches
// "3.11.2", not "3.110").
func VersionMatches(installed, requested string) bool {
	if requested == "" || installed == requested {
		return true
	}
	return strings.HasPrefix(installed, requested) && installed[len(requested)] == '.'
}

func anyVersionMatches(installed []string, requested string) bool {
	for _, v := range installed {
		if VersionMatches(v, requested) {
			return true
		}
	}
	return false
}

// Options tune placement.
type Options struct {
	// MaxCPUPercent and MaxMemoryPercent skip workers above them; zero
	// means no threshold.
	MaxCPUPercent    float64
	MaxMemoryPercent float64
	// Rand breaks ties; nil uses the global source.
	Rand *rand.Rand
}

// offered reports whether w takes new work now: up, with a free slot,
// under the thresholds.
func (o *Options) offered(w *Worker) bool {
	if !w.Available || w.Running >= w.Slots {
		return false
	}
	if o.MaxCPUPercent > 0 && w.CPUPercent > o.MaxCPUPercent {
		return false
	}
	if o.MaxMemoryPercent > 0 && w.MemoryPercent > o.MaxMemoryPercent {
		return false
	}
	return true
}

// score is a worker's load, lower is better: mostly the share of its slots
// in use, which the master knows exactly, then its measured CPU and memory,
// which lag by a heartbeat.
func score(w *Worker) float64 {
	return 0.6*float64(w.Running)/float64(w.Slots) + 0.3*w.CPUPercent/100 + 0.1*w.MemoryPercent/100
}

// scoreEpsilon is the width of the bands of score that count as a tie
// (measurement noise), so equal workers share the work instead of the
// first one winning.
const scoreEpsilon = 0.02

// AnyCapable reports whether a worker runs jobs with these requirements,
// or may soon: one still self-testing their language counts, so that a
// worker that has just started (or a job that waited for one) does not
// see its jobs fail a moment before it announces their language.
func AnyCapable(workers []*Worker, r Requirements) bool {
	for _, w := range workers {
		if w.Capable(r) || (&Worker{Languages: w.Testing, Labels: w.Labels}).Capable(r) {
			return true
		}
	}
	return false
}
