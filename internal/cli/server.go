package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/grappe/grappe/internal/attach"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/callback"
	"github.com/grappe/grappe/internal/connlimit"
	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/sandbox"
	"github.com/grappe/grappe/internal/worker"
)

// version is grappe's version, reported by workers.
const version = "0.1.0-dev"

// masterFlags are shared by `grappe master` and `grappe up`.
type masterFlags struct {
	data, listen, clusterListen string
	catalogue, sync, logLevel   string
	tlsHosts                    []string
	tlsCert, tlsKey             string
	insecureHTTP                bool
	heartbeat, workerTimeout    time.Duration
	placementTimeout            time.Duration
	interactiveIdle             time.Duration
	maxCPU, maxMem              float64
	rateLimit                   float64
	loginTTL                    time.Duration
	metricsListen               string
	masterID                    string
	maxQueuedPerUser            int
	maxQueueDepth               int
	pprof                       bool
	maxDispatchLag              time.Duration
	database                    string
	maxConnsPerIP, maxConns     int
	anonymousUser               string
	maxBatch                    int
	callbackAllow               prefixList
	callbackTimeout             time.Duration
	callbackRetryFor            time.Duration
	autoscale                   autoscaleFlags
}

// tuneGC makes the garbage collector run at four times the live heap
// instead of twice, unless GOGC says otherwise: a server's live heap is
// tens of MB while it allocates for every request (JSON, TLS records,
// gRPC frames), and each collection cycle costs CPU that jobs need more.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

func (f *masterFlags) register(cmd *cobra.Command, listenDefault, clusterDefault string) {
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", defaultDataDir(), "data directory (database, CA, tokens)")
	fl.StringVar(&f.listen, "listen", listenDefault, "address of the REST API and web UI (HTTPS)")
	fl.StringVar(&f.clusterListen, "cluster-listen", clusterDefault, "address workers connect to (gRPC over TLS)")
	fl.StringVar(&f.catalogue, "catalogue", "", "YAML file of extra or overriding language entries")
	fl.StringVar(&f.sync, "sync", "normal", "SQLite durability: normal (survives a master crash) or full (also a power loss)")
	fl.StringSliceVar(&f.tlsHosts, "tls-host", nil, "extra host names or IPs for the master's certificate")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate (chain) for the REST API instead of one from the cluster CA")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fl.BoolVar(&f.insecureHTTP, "insecure-http", false, "serve the REST API without TLS (loopback addresses only, behind a TLS proxy)")
	fl.DurationVar(&f.heartbeat, "heartbeat", time.Second, "worker heartbeat interval")
	fl.DurationVar(&f.workerTimeout, "worker-timeout", 5*time.Second, "a worker silent this long is declared lost")
	fl.DurationVar(&f.placementTimeout, "placement-timeout", time.Minute, "a job no connected worker can run fails after this long")
	fl.DurationVar(&f.interactiveIdle, "interactive-idle", attach.DefaultIdle, "an interactive run with neither input nor output for this long is cancelled")
	fl.Float64Var(&f.maxCPU, "max-cpu", 100, "give no new job to workers above this CPU percent (100: never skip)")
	fl.Float64Var(&f.maxMem, "max-mem", 95, "give no new job to workers above this memory percent")
	fl.Float64Var(&f.rateLimit, "rate-limit", 1000, "API requests per second per user, in bursts of up to twice that; past it 429")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "also serve /metrics on this address over plain HTTP WITHOUT a token (for a monitoring network); on --listen it needs the token in DIR/metrics-token or an admin's")
	fl.BoolVar(&f.pprof, "pprof", false, "also serve the Go runtime's profiles (/debug/pprof/) on --metrics-listen, which it needs")
	fl.IntVar(&f.maxConnsPerIP, "max-conns-per-ip", 256, "connections one client IP address may hold open on each listener; past it new ones are closed at once")
	fl.IntVar(&f.maxConns, "max-conns", 0, "connections of all listeners together (0: three quarters of the open-file limit)")
	fl.DurationVar(&f.loginTTL, "login-ttl", auth.DefaultLoginTTL, "how long a token made by a password login (grappe login, the web UI) stays valid")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.database, "database", os.Getenv("GRAPPE_DATABASE"), "PostgreSQL connection string (postgres://USER@HOST/DB; also GRAPPE_DATABASE): the store, which several masters may share, instead of SQLite in --data")
	fl.IntVar(&f.maxQueuedPerUser, "max-queued-per-user", 10000, "jobs one user may have waiting; past it submissions get 429")
	fl.IntVar(&f.maxQueueDepth, "max-queue-depth", 100000, "jobs waiting in the whole cluster past which submissions get 503 with Retry-After (-1: no limit)")
	fl.DurationVar(&f.maxDispatchLag, "max-dispatch-lag", 2*time.Second, "while a dispatch round has been awaited longer than this (the master behind), submissions get 503 with Retry-After (-1s: no limit)")
	fl.StringVar(&f.masterID, "master-id", "", "this master's name in the database, unique among the masters sharing it (default: the host name and --data)")
	fl.StringVar(&f.anonymousUser, "anonymous-user", "", "run Piston (/api/v2/) and Judge0 (/judge0/) requests that carry no token as this user, created with role user if missing (its rate limits and quotas apply); off by default")
	fl.IntVar(&f.maxBatch, "max-batch", 500, "jobs one batch may hold (POST /api/v1/batches, Judge0's batches)")
	fl.Var(&f.callbackAllow, "callback-allow", "CIDR,… that callbacks may reach although forbidden by default (loopback, private, link-local, unspecified and this host's networks)")
	fl.DurationVar(&f.callbackTimeout, "callback-timeout", callback.DefaultTimeout, "bound of one callback delivery attempt")
	fl.DurationVar(&f.callbackRetryFor, "callback-retry-for", callback.DefaultRetryFor, "how long a failing callback is retried (with exponential backoff) before it is given up")
	f.autoscale.register(fl)
}

// prefixList is a flag of comma-separated CIDR prefixes (or addresses),
// parsed when the flags are.
type prefixList []netip.Prefix

var _ pflag.Value = (*prefixList)(nil)

func (l *prefixList) Set(v string) error {
	ps, err := callback.ParsePrefixes(strings.Split(v, ","))
	if err != nil {
		return err
	}
	*l = append(*l, ps...)
	return nil
}

func (l *prefixList) String() string {
	var out []string
	for _, p := range *l {
		out = append(out, p.String())
	}
	return strings.Join(out, ",")
}

func (l *prefixList) Type() string { return "CIDRs" }

func (f *masterFlags) config(log *slog.Logger, cat *lang.Catalogue) master.Config {
	return master.Config{
		DataDir: f.data, Listen: f.listen, ClusterListen: f.clusterListen,
		TLSHosts: f.tlsHosts, TLSCertFile: f.tlsCert, TLSKeyFile: f.tlsKey, InsecureHTTP: f.insecureHTTP,
		Catalogue: cat, Synchronous: f.sync, LoginTTL: f.loginTTL, MetricsListen: f.metricsListen,
		MasterID: f.masterID, Database: f.database, MaxQueuedPerUser: f.maxQueuedPerUser,
		MaxQueueDepth: f.maxQueueDepth, MaxDispatchLag: f.maxDispatchLag, Pprof: f.pprof,
		MaxConnsPerAddr: f.maxConnsPerIP, MaxConns: f.maxConns,
		HeartbeatInterval: f.heartbeat, WorkerTimeout: f.workerTimeout, PlacementTimeout: f.placementTimeout,
		InteractiveIdle: f.interactiveIdle,
		MaxCPUPercent:   f.maxCPU, MaxMemoryPercent: f.maxMem, RequestsPerSecond: f.rateLimit, Logger: log,
		Autoscale: f.autoscale.config(f.catalogue, f.logLevel, f.data), AnonymousUser: f.anonymousUser,
		MaxBatch:  f.maxBatch,
		Callbacks: master.CallbackConfig{Allow: f.callbackAllow, Timeout: f.callbackTimeout, RetryFor: f.callbackRetryFor},
	}
}

// printMetrics says where Prometheus scrapes, and with what.
func printMetrics(out io.Writer, m *master.Master, data string) {
	if a := m.MetricsAddr(); a != "" {
		fmt.Fprintf(out, "metrics: http://%s/metrics (no token)\n", a)
		return
	}
	fmt.Fprintf(out, "metrics: %s/metrics with the bearer token in %s\n", m.URL(), filepath.Join(data, master.MetricsTokenFile))
}

// raiseFileLimit lifts the open-file soft limit to the hard one: a master
// holds a descriptor per client and per worker, a worker several per job.
func raiseFileLimit(log *slog.Logger) {
	n, err := connlimit.RaiseFileLimit()
	if err != nil {
		log.Warn("could not raise the open-file limit", "limit", n, "err", err)
		return
	}
	log.Debug("open-file limit", "limit", n)
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "grappe")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "grappe")
	}
	return "grappe-data"
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func loadCatalogue(path string) (*lang.Catalogue, error) {
	c, err := lang.Default()
	if err != nil {
		return nil, err
	}
	if path != "" {
		return lang.Load(c, path)
	}
	return c, nil
}

func newMasterCmd() *cobra.Command {
	var f masterFlags
	cmd := &cobra.Command{
		Use:   "master",
		Short: "Run the master alone (REST API, web UI, scheduler); workers join it with `grappe worker`",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			log, err := newLogger(cmd.ErrOrStderr(), f.logLevel)
			if err != nil {
				return err
			}
			raiseFileLimit(log)
			cat, err := loadCatalogue(f.catalogue)
			if err != nil {
				return err
			}
			m, err := master.New(f.config(log, cat))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "grappe master serving %s\n", m.URL())
			fmt.Fprintf(out, "workers join at %s with the token in %s\n", m.ClusterAddr(), filepath.Join(f.data, master.JoinTokenFile))
			fmt.Fprintf(out, "admin token: %s; CA: %s\n", filepath.Join(f.data, master.AdminTokenFile), filepath.Join(f.data, master.CAFile))
			printMetrics(out, m, f.data)
			fmt.Fprintln(out, "grappe master is ready")
			return m.Run(cmd.Context())
		},
	}
	f.register(cmd, ":7700", ":7701")
	return cmd
}

func newUpCmd() *cobra.Command {
	var f masterFlags
	var workers, maxJobs, workTmpfsMB int
	var insecure bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a whole cluster on this machine: a master and local workers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			ctx := cmd.Context()
			log, err := newLogger(cmd.ErrOrStderr(), f.logLevel)
			if err != nil {
				return err
			}
			raiseFileLimit(log)
			cat, err := loadCatalogue(f.catalogue)
			if err != nil {
				return err
			}
			// With an autoscaler, its workers replace the fixed ones
			// unless --workers asks for both.
			if f.autoscale.mode != "" && !cmd.Flags().Changed("workers") {
				workers = 0
			}
			f.autoscale.noSandbox = insecure
			m, err := master.New(f.config(log, cat))
			if err != nil {
				return err
			}
			defer m.Close()
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error { return m.Run(gctx) })
			// One sandbox and one toolbox for all the local workers: they
			// share its pool and its range of uids. None without local
			// workers: autoscaled ones have their own, and self-tests
			// nobody uses would take the CPU from the jobs.
			var tb *worker.Toolbox
			if workers > 0 {
				sb, err := openSandbox(insecure, filepath.Join(f.data, "workers", "sandbox"), 0, workers*maxJobs, log)
				if err != nil {
					return err
				}
				defer closeSandbox(sb)
				var closeToolbox func()
				tb, closeToolbox, err = openToolbox(gctx, filepath.Join(f.data, "workers"), toolchainCacheDir(f.data), cat, sb, workTmpfsMB, log)
				if err != nil {
					return err
				}
				defer closeToolbox()
				waitQuick(gctx, tb)
			}
			for i := 1; i <= workers; i++ {
				name := fmt.Sprintf("worker-%d", i)
				w, err := worker.New(worker.Config{
					Master: m.ClusterAddr(), JoinToken: m.JoinToken(), CAPEM: m.CAPEM(),
					DataDir: filepath.Join(f.data, "workers", name), Name: name, Slots: maxJobs,
					Languages: tb, Sandbox: tb.Sandbox, Runner: tb.Runner,
					DrainTimeout: 5 * time.Second, Version: version,
					Logger: log, Repair: tb.Repair,
				})
				if err != nil {
					return err
				}
				g.Go(func() error { return w.Run(gctx) })
			}
			out := cmd.OutOrStdout()
			data, _ := filepath.Abs(f.data)
			fmt.Fprintf(out, "grappe is serving %s (%d workers × %d slots)\n", m.URL(), workers, maxJobs)
			if a := f.autoscale; a.mode != "" {
				fmt.Fprintf(out, "autoscaler: %s workers of %d slots, %d to %d\n", a.mode, a.maxJobs, a.min, a.max)
			}
			fmt.Fprintf(out, "admin token: %s\n", filepath.Join(data, master.AdminTokenFile))
			fmt.Fprintf(out, "use it with:\n  export GRAPPE_ADDR=%s GRAPPE_CA=%s GRAPPE_TOKEN=$(cat %s)\n",
				m.URL(), filepath.Join(data, master.CAFile), filepath.Join(data, master.AdminTokenFile))
			fmt.Fprintf(out, "web UI: %s\n", m.URL())
			if link, err := m.SignInLink(); err == nil {
				fmt.Fprintf(out, "sign in as admin (this link works once, for %s): %s\n", master.SignInLinkTTL, link)
			} else {
				log.Warn("no sign-in link", "err", err)
			}
			printMetrics(out, m, data)
			if tb != nil && tb.Sandbox == "none" {
				fmt.Fprintln(out, "WARNING: workers run programs WITHOUT a sandbox (insecure)")
			}
			fmt.Fprintln(out, "grappe is ready; Ctrl-C stops it")
			if tb != nil {
				go reportSelfTests(gctx, out, tb)
			}
			err = g.Wait()
			fmt.Fprintln(out, "grappe stopped")
			return err
		},
	}
	f.register(cmd, "127.0.0.1:7700", "127.0.0.1:0")
	cmd.Flags().IntVar(&workers, "workers", 2, "number of local workers")
	cmd.Flags().IntVar(&maxJobs, "max-jobs", runtime.NumCPU(), "jobs each worker runs at once")
	cmd.Flags().BoolVar(&insecure, "insecure-no-sandbox", false, "run programs without isolation (development only)")
	workTmpfsFlag(cmd.Flags(), &workTmpfsMB)
	return cmd
}

func newWorkerCmd() *cobra.Command {
	var masterAddr, joinToken, joinTokenFile, name, data, labels, caFile, catalogue, logLevel, toolchainCache string
	var maxJobs, uidBase, workTmpfsMB int
	var drain time.Duration
	var insecure bool
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker that joins a master and runs its jobs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			ctx := cmd.Context()
			log, err := newLogger(cmd.ErrOrStderr(), logLevel)
			if err != nil {
				return err
			}
			raiseFileLimit(log)
			if joinToken == "" && joinTokenFile != "" {
				b, err := os.ReadFile(joinTokenFile)
				if err != nil {
					return fmt.Errorf("--join-token-file: %w", err)
				}
				joinToken = strings.TrimSpace(string(b))
			}
			if joinToken == "" {
				joinToken = os.Getenv("GRAPPE_JOIN_TOKEN")
			}
			if masterAddr == "" {
				return fmt.Errorf("--master is required (and --join-token, or GRAPPE_JOIN_TOKEN, the first time)")
			}
			if name == "" {
				h, _ := os.Hostname()
				name = h
			}
			lbls, err := parseLabels(labels)
			if err != nil {
				return err
			}
			var caPEM []byte
			if caFile != "" {
				if caPEM, err = os.ReadFile(caFile); err != nil {
					return fmt.Errorf("--ca: %w", err)
				}
			}
			cat, err := loadCatalogue(catalogue)
			if err != nil {
				return err
			}
			sb, err := openSandbox(insecure, filepath.Join(data, "sandbox"), uidBase, maxJobs, log)
			if err != nil {
				return err
			}
			defer closeSandbox(sb)
			tb, closeToolbox, err := openToolbox(ctx, data, toolchainCache, cat, sb, workTmpfsMB, log)
			if err != nil {
				return err
			}
			defer closeToolbox()
			waitQuick(ctx, tb)
			w, err := worker.New(worker.Config{
				Master: masterAddr, JoinToken: joinToken, CAPEM: caPEM, DataDir: data, Name: name, Slots: maxJobs,
				Labels: lbls, Languages: tb, Sandbox: tb.Sandbox, Runner: tb.Runner,
				DrainTimeout: drain, Version: version, Logger: log,
				Repair: tb.Repair,
			})
			if err != nil {
				return err
			}
			log.Info("worker starting", "name", name, "master", masterAddr, "slots", maxJobs, "sandbox", tb.Sandbox)
			return w.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&masterAddr, "master", "", "the master's cluster address, host:port; several, comma-separated, for masters sharing a database: the worker moves to the next when its master goes away")
	fl.StringVar(&joinToken, "join-token", "", "the cluster's join token (see the master's DIR/join-token)")
	fl.StringVar(&joinTokenFile, "join-token-file", "", "read the join token from this file")
	fl.StringVar(&name, "name", "", "worker name (default: the host name)")
	fl.StringVar(&data, "data", filepath.Join(os.TempDir(), "grappe-worker"), "work directories and compile cache")
	fl.StringVar(&labels, "labels", "", "labels k=v,k=v that jobs can require")
	fl.StringVar(&caFile, "ca", "", "CA certificate to trust instead of the token's fingerprint")
	fl.StringVar(&catalogue, "catalogue", "", "YAML file of extra or overriding language entries")
	fl.StringVar(&toolchainCache, "toolchain-cache", "", "directory of the self-test results and toolchain cache seeds, which the workers of one machine may share (default: --data); remove it to run every self-test again")
	fl.IntVar(&maxJobs, "max-jobs", runtime.NumCPU(), "jobs run at once")
	fl.DurationVar(&drain, "drain-timeout", 30*time.Second, "on SIGTERM, wait this long for running jobs before handing them back")
	fl.BoolVar(&insecure, "insecure-no-sandbox", false, "run programs without isolation (development only)")
	workTmpfsFlag(fl, &workTmpfsMB)
	fl.IntVar(&uidBase, "uid-base", 0, "first of the 1,000 uids the sandbox runs jobs as; 0 picks a range from the worker's sandbox id, one no other worker on this machine holds (a range in use is refused either way)")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// openSandbox makes the Linux sandbox every job runs in, or returns nil
// (the unisolated executor) with --insecure-no-sandbox. A worker refuses
// to start when the sandbox does not work: running strangers' code
// unconfined must be asked for, never fallen into.
//
// The pool holds one prepared sandbox per slot, so that no run waits for
// one to be built.
func openSandbox(insecure bool, root string, uidBase, slots int, log *slog.Logger) (sandbox.Sandbox, error) {
	if insecure {
		log.Warn("running programs WITHOUT a sandbox (--insecure-no-sandbox): development only")
		return nil, nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	// The sandbox's id and lock live beside it in the data directory: they
	// must outlive a restart (the worker then finds what it left) and be
	// this worker's alone (they tell its cgroups from its neighbours').
	sb, err := sandbox.New(sandbox.Config{Root: abs, StateDir: abs, UIDBase: uidBase, PoolSize: min(max(slots, 2), 64), Logger: log})
	if errors.Is(err, sandbox.ErrInUse) {
		return nil, err // a neighbour's: the hint below would mislead
	}
	if err != nil {
		return nil, fmt.Errorf("%w\n(the sandbox needs Linux and root; --insecure-no-sandbox runs programs unconfined, for development only)", err)
	}
	log.Info("sandbox ready", "kind", sb.Kind())
	return sb, nil
}

func workTmpfsFlag(fl *pflag.FlagSet, mb *int) {
	fl.IntVar(mb, "work-tmpfs-mb", 2048, "with the sandbox, keep the jobs' work directories on a private tmpfs of this many MiB (what a job writes counts against its memory limit); 0 keeps them on disk")
}

// openToolbox prepares a worker machine's toolbox in dir, its work
// directories on a tmpfs of workTmpfsMB when there is a sandbox (whose
// absence also means no root to mount it), its self-test results and
// toolchain cache seeds in shared (empty: in dir). The returned close
// waits for the self-tests, which use the sandbox, then unmounts: defer
// it after the sandbox's own close, so that it runs first.
func openToolbox(ctx context.Context, dir, shared string, cat *lang.Catalogue, sb sandbox.Sandbox, workTmpfsMB int, log *slog.Logger) (*worker.Toolbox, func(), error) {
	cfg := worker.ToolboxConfig{DataDir: dir, Catalogue: cat, Sandbox: sb, Logger: log}
	if shared != "" {
		abs, err := filepath.Abs(shared)
		if err != nil {
			return nil, nil, err
		}
		cfg.TestCacheDir, cfg.ToolCacheDir = filepath.Join(abs, "selftest"), filepath.Join(abs, "toolcache")
	}
	if sb != nil && workTmpfsMB > 0 {
		cfg.ScratchBytes = int64(workTmpfsMB) << 20
	}
	tb, err := worker.PrepareToolbox(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return tb, func() {
		waitSelfTests(tb)
		tb.Close()
	}, nil
}

// reportSelfTests says when the last language of the local workers is
// ready: compiled languages are announced as their self-tests pass (at
// once when the self-test cache knows them), and benchmarks should start
// after this line.
func reportSelfTests(ctx context.Context, out io.Writer, tb *worker.Toolbox) {
	select {
	case <-tb.Tested():
		langs, _ := tb.Languages()
		fmt.Fprintf(out, "self-tests done: %d languages ready\n", len(langs))
	case <-ctx.Done():
	}
}

// waitSelfTests waits for the toolbox's self-tests, which stop early once
// the command's context is cancelled, so that nothing still uses the
// sandbox when it closes.
func waitSelfTests(tb *worker.Toolbox) {
	select {
	case <-tb.Tested():
	case <-time.After(30 * time.Second):
	}
}

func closeSandbox(sb sandbox.Sandbox) {
	if c, ok := sb.(interface{ Close() error }); ok && sb != nil {
		c.Close()
	}
}

func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels: %q is not k=v", kv)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// waitQuick lets the interpreters' self-tests (milliseconds) finish before
// a worker first connects, so its first hello already offers them;
// compiled languages are announced later, as their self-tests pass.
func waitQuick(ctx context.Context, tb *worker.Toolbox) {
	select {
	case <-tb.Quick():
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
}
