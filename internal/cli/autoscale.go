package cli

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/grappe/grappe/internal/autoscale"
	"github.com/grappe/grappe/internal/master"
)

// autoscaleFlags are the --autoscale* flags of `grappe master` and
// `grappe up`.
type autoscaleFlags struct {
	mode                              string
	min, max, maxJobs, maxStarts      int
	idle, wait, backlog, joinTimeout  time.Duration
	upCooldown, downCooldown, stopped time.Duration
	languages, workerArgs             []string
	startCmd, stopCmd                 string
	binary, masterAddr                string
	// noSandbox passes --insecure-no-sandbox to local workers (`up`).
	noSandbox bool
}

func (f *autoscaleFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.mode, "autoscale", "", "start and stop workers with the load: local (grappe worker processes on this machine) or exec (--autoscale-start-cmd/--autoscale-stop-cmd)")
	fl.IntVar(&f.min, "autoscale-min", 1, "fewest workers the autoscaler keeps started")
	fl.IntVar(&f.max, "autoscale-max", 4, "most workers the autoscaler starts (workers started by hand are not counted)")
	fl.DurationVar(&f.idle, "autoscale-idle", time.Minute, "a started worker idle this long is drained, then stopped")
	fl.IntVar(&f.maxJobs, "autoscale-max-jobs", 1, "slots (--max-jobs) of each started worker")
	fl.DurationVar(&f.wait, "autoscale-wait", 10*time.Second, "scale up when a queued job has waited this long and the queue exceeds the free slots")
	fl.DurationVar(&f.backlog, "autoscale-backlog", 3*time.Second, "scale up when the queue has exceeded the free slots this long")
	fl.DurationVar(&f.upCooldown, "autoscale-cooldown", 10*time.Second, "least time between two scale-ups caused by load")
	fl.DurationVar(&f.downCooldown, "autoscale-down-cooldown", 30*time.Second, "least time after a scale-up or scale-down before the next scale-down")
	fl.IntVar(&f.maxStarts, "autoscale-max-starts", 10, "most workers started per minute")
	fl.DurationVar(&f.joinTimeout, "autoscale-join-timeout", 2*time.Minute, "a started worker not connected after this long (or disconnected this long) is stopped and replaced")
	fl.DurationVar(&f.stopped, "autoscale-stop-timeout", 45*time.Second, "local: a stopped worker that has not exited after this long is killed")
	fl.StringSliceVar(&f.languages, "autoscale-languages", nil, "languages started workers run (default: learned from the first one that joins)")
	fl.StringVar(&f.startCmd, "autoscale-start-cmd", "", "exec: shell command that starts a worker (env GRAPPE_WORKER_NAME, GRAPPE_MASTER, GRAPPE_JOIN_TOKEN, GRAPPE_MAX_JOBS…)")
	fl.StringVar(&f.stopCmd, "autoscale-stop-cmd", "", "exec: shell command that stops the worker GRAPPE_WORKER_NAME")
	fl.StringVar(&f.binary, "autoscale-worker-binary", "", "local: the grappe binary to run (default: this one)")
	fl.StringSliceVar(&f.workerArgs, "autoscale-worker-args", nil, "local: extra arguments of the worker command, comma-separated (e.g. --labels=zone=a)")
	fl.StringVar(&f.masterAddr, "autoscale-master-addr", "", "cluster address started workers dial (default: --cluster-listen, 127.0.0.1 or this host's name for an unspecified host)")
}

// config is the master's autoscale section; catalogue and logLevel are
// the master's, which local workers share, and data its data directory.
func (f *autoscaleFlags) config(catalogue, logLevel, data string) master.AutoscaleConfig {
	if f.mode == "" {
		return master.AutoscaleConfig{}
	}
	var args []string
	if f.mode == "local" {
		if catalogue != "" {
			// Absolute: a worker runs in its own directory.
			if abs, err := filepath.Abs(catalogue); err == nil {
				catalogue = abs
			}
			args = append(args, "--catalogue", catalogue)
		}
		if logLevel != "" {
			args = append(args, "--log-level", logLevel)
		}
		if f.noSandbox {
			args = append(args, "--insecure-no-sandbox")
		}
		// One toolchain cache for the machine's workers: a worker started
		// for load announces at once what the first one tested.
		args = append(args, "--toolchain-cache", toolchainCacheDir(data))
		args = append(args, f.workerArgs...)
	}
	var langs []string
	for _, l := range f.languages {
		if l = strings.TrimSpace(l); l != "" {
			langs = append(langs, l)
		}
	}
	return master.AutoscaleConfig{
		Provisioner: f.mode,
		Policy: autoscale.Policy{
			Min: f.min, Max: f.max, SlotsPerWorker: f.maxJobs,
			Wait: f.wait, Backlog: f.backlog, Idle: f.idle,
			UpCooldown: f.upCooldown, DownCooldown: f.downCooldown,
			MaxStartsPerMinute: f.maxStarts, JoinTimeout: f.joinTimeout, Languages: langs,
		},
		WorkerBinary: f.binary, WorkerArgs: args,
		StartCmd: f.startCmd, StopCmd: f.stopCmd,
		MasterAddr: f.masterAddr, StopTimeout: f.stopped,
	}
}

// toolchainCacheDir is where the workers `grappe up` and the local
// autoscaler start keep their self-test results and toolchain cache seeds
// (worker --toolchain-cache): one directory for the machine, under the
// master's data directory.
func toolchainCacheDir(data string) string {
	if abs, err := filepath.Abs(data); err == nil {
		data = abs
	}
	return filepath.Join(data, "toolchains")
}
