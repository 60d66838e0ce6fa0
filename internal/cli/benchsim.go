package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/simfleet"
)

// simFlags are grappe bench's flags for a simulated fleet.
type simFlags struct {
	workers, slots, startConc   int
	runTime, wait               time.Duration
	clusterAddr                 string
	joinToken, joinTokenFile    string
	labels, version, namePrefix string
	metricsTokenFile            string
}

func (s *simFlags) register(f *pflag.FlagSet) {
	f.IntVar(&s.workers, "simulate-workers", 0, "start this many simulated workers in this process (the real protocol, mTLS, no program run) and wait for the master to list them up before the run")
	f.IntVar(&s.slots, "sim-slots", 4, "slots of each simulated worker")
	f.DurationVar(&s.runTime, "sim-run-time", 0, "how long a simulated worker pretends to run a job (0: it answers at once)")
	f.DurationVar(&s.wait, "sim-wait", 10*time.Minute, "longest wait for the master to list the simulated workers up")
	f.IntVar(&s.startConc, "sim-start-concurrency", 64, "simulated workers joining and connecting at once while the fleet starts")
	f.StringVar(&s.clusterAddr, "cluster-addr", "", "the master's cluster address for the simulated workers (default $GRAPPE_CLUSTER_ADDR, else the host of --addr, port 7701)")
	f.StringVar(&s.joinToken, "join-token", "", "the cluster's join token for the simulated workers (default $GRAPPE_JOIN_TOKEN, else --join-token-file)")
	f.StringVar(&s.joinTokenFile, "join-token-file", "", "read the join token from this file (default: join-token beside the --ca file, the master's data directory)")
	f.StringVar(&s.labels, "sim-labels", "", "labels k=v,k=v of the simulated workers")
	f.StringVar(&s.version, "sim-version", "5.2", "the version of --lang the simulated workers announce")
	f.StringVar(&s.namePrefix, "sim-name-prefix", "", "simulated workers' names start with this (default sim-RANDOM-: a master refuses a name that has a live identity)")
	f.StringVar(&s.metricsTokenFile, "metrics-token-file", "", "token for the master's /metrics, to report its memory and CPU (default: the API token, then metrics-token beside the --ca file)")
}

// simRun is a simulated fleet serving one grappe bench run.
type simRun struct {
	fleet   *simfleet.Fleet
	cancel  context.CancelFunc
	done    chan error
	metrics *metricsReader
	names   map[string]bool
	// atStart is the master's process metrics when the run started.
	atStart    procMetrics
	haveStart  bool
	cpuAtStart float64 // this process's CPU-seconds then
}

// startSim starts the fleet, waits until the master lists every worker up,
// and prints how long that took and what the idle master holds.
func startSim(ctx context.Context, out io.Writer, s *simFlags, cfg client.Config, c *client.Client, lang string) (*simRun, error) {
	token, err := s.resolveJoinToken(cfg)
	if err != nil {
		return nil, err
	}
	addr, err := s.resolveClusterAddr(cfg)
	if err != nil {
		return nil, err
	}
	labels, err := parseLabels(s.labels)
	if err != nil {
		return nil, err
	}
	// The fleet's own events at WARN and above: thousands of workers.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := simfleet.New(simfleet.Config{
		Master: addr, JoinToken: token, Workers: s.workers, NamePrefix: s.namePrefix,
		Slots: s.slots, Languages: []*clusterpb.Language{{Name: lang, Version: s.version}}, Labels: labels,
		RunTime: s.runTime, StartConcurrency: s.startConc, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	r := &simRun{fleet: f, done: make(chan error, 1), metrics: newMetricsReader(cfg, s.metricsTokenFile), names: map[string]bool{}}
	for _, n := range f.Names() {
		r.names[n] = true
	}
	before, haveBefore := r.metrics.read(ctx)
	selfCPU0, _ := processCPU()
	fctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	fmt.Fprintf(out, "simulated fleet: %d workers × %d slots of %s %s, run time %s, against %s\n",
		s.workers, s.slots, lang, s.version, s.runTime, addr)
	t0 := time.Now()
	go func() { r.done <- f.Run(fctx) }()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	connected := false
	all := f.AllConnected()
	for {
		select {
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case err := <-r.done:
			r.done <- err
			r.stop()
			return nil, fmt.Errorf("simulated fleet ended: %v", err)
		case <-all:
			all, connected = nil, true // a closed channel is always ready
			st := f.Stats()
			fmt.Fprintf(out, "simulated fleet: %d connected (joined, welcomed), %d refused for good, in %s\n",
				int64(s.workers)-st.GaveUp, st.GaveUp, time.Since(t0).Round(time.Millisecond))
			continue
		case <-tick.C:
		}
		st := f.Stats()
		if time.Since(t0) > s.wait {
			r.stop()
			return nil, fmt.Errorf("simulated fleet: not all up after %s: %+v", s.wait, st)
		}
		if st.Errors > 0 && st.Joined == 0 && time.Since(t0) > 10*time.Second {
			r.stop()
			return nil, fmt.Errorf("simulated fleet: no worker could join (%d errors): check --cluster-addr and the join token", st.Errors)
		}
		cl, err := c.Cluster(ctx)
		if err != nil {
			continue
		}
		up := cl.Workers[api.WorkerUp]
		if connected && int64(up) >= int64(s.workers)-st.GaveUp {
			fmt.Fprintf(out, "master lists %d workers up after %s (fleet: %d reconnections, %d errors, longest gap between two heartbeats %s)\n",
				up, time.Since(t0).Round(time.Millisecond), st.Reconnects, st.Errors, st.MaxBeatGap.Round(time.Millisecond))
			if st.LastError != "" {
				fmt.Fprintf(out, "simulated fleet: last error: %s\n", st.LastError)
			}
			break
		}
		fmt.Fprintf(out, "  … %d connected, master lists %d up, %d lost (%s; fleet: %d reconnections, %d while beating, longest heartbeat gap %s: timer late %s, send %s)\n",
			st.Connected, up, cl.Workers[api.WorkerLost], time.Since(t0).Round(time.Second), st.Reconnects, st.EndedBeating,
			st.MaxBeatGap.Round(time.Millisecond), st.MaxBeatLate.Round(time.Millisecond), st.MaxBeatSend.Round(time.Millisecond))
	}
	after, haveAfter := r.metrics.read(ctx)
	// CPU per worker joined: what the join costs whatever else the
	// machine runs (the time to join depends on that).
	if selfCPU1, ok := processCPU(); ok {
		fmt.Fprintf(out, "CPU to join and connect: this process %.2f ms per worker", 1000*(selfCPU1-selfCPU0)/float64(s.workers))
		if haveBefore && haveAfter {
			fmt.Fprintf(out, ", the master %.2f ms per worker", 1000*(after.cpu-before.cpu)/float64(s.workers))
		}
		fmt.Fprintf(out, " (load average %s)\n", loadAverage())
	}
	if haveBefore && haveAfter {
		fmt.Fprintf(out, "master RSS: %.0f MB before the fleet, %.0f MB with it: %.1f KB per connected worker\n",
			before.rss/1e6, after.rss/1e6, (after.rss-before.rss)/1e3/float64(s.workers))
		// The idle master's CPU with the fleet connected: heartbeats,
		// pings and the sweeps.
		beats0 := f.Stats().Heartbeats
		time.Sleep(5 * time.Second)
		if idle, ok := r.metrics.read(ctx); ok {
			beats := f.Stats().Heartbeats - beats0
			fmt.Fprintf(out, "idle master with the fleet: %.0f%% of a core (over 5 s), %.0f MB RSS, %.2f CPU-seconds per 1,000 heartbeats (pings and sweeps included)\n",
				100*(idle.cpu-after.cpu)/idle.at.Sub(after.at).Seconds(), idle.rss/1e6, 1000*(idle.cpu-after.cpu)/float64(max(beats, 1)))
		}
	}
	printFleetCost(out, s.workers)
	return r, nil
}

// mark notes the master's metrics as the run starts.
func (r *simRun) mark(ctx context.Context) {
	r.atStart, r.haveStart = r.metrics.read(ctx)
	r.cpuAtStart, _ = processCPU()
}

// stop ends the fleet and waits for it.
func (r *simRun) stop() {
	r.cancel()
	<-r.done
}

// report prints the fleet's counters and the master's state after the run.
func (r *simRun) report(ctx context.Context, out io.Writer, c *client.Client, jobs int) {
	st := r.fleet.Stats()
	fmt.Fprintf(out, "simulated fleet: %d assigned, %d results sent, %d acknowledged, %d cancelled, %d reconnections, %d errors, longest gap between two heartbeats %s (timer late %s, send %s)\n",
		st.Assigned, st.Results, st.Acked, st.Cancelled, st.Reconnects, st.Errors, st.MaxBeatGap.Round(time.Millisecond),
		st.MaxBeatLate.Round(time.Millisecond), st.MaxBeatSend.Round(time.Millisecond))
	fmt.Fprintf(out, "simulated fleet: %d sessions ended by the master within two heartbeat intervals of a heartbeat (healthy workers dropped)\n", st.EndedBeating)
	if st.LastError != "" {
		fmt.Fprintf(out, "simulated fleet: last error: %s\n", st.LastError)
	}
	if cpu, ok := processCPU(); ok && r.haveStart {
		fmt.Fprintf(out, "this process (client and fleet): %.2f CPU-seconds per 1,000 jobs during the run\n", 1000*(cpu-r.cpuAtStart)/float64(jobs))
	}
	if m, ok := r.metrics.read(ctx); ok {
		fmt.Fprintf(out, "master after the run: %.0f MB RSS", m.rss/1e6)
		if r.haveStart {
			fmt.Fprintf(out, ", %.2f CPU-seconds per 1,000 jobs during it (heartbeats included)", 1000*(m.cpu-r.atStart.cpu)/float64(jobs))
		}
		fmt.Fprintf(out, ", %.0f submissions refused for backpressure (retried by the client)\n", m.refused)
	}
	ws, err := c.Workers(ctx)
	if err != nil {
		return
	}
	lost, up := 0, 0
	for _, w := range ws {
		if !r.names[w.Name] {
			continue
		}
		switch w.Status {
		case api.WorkerLost:
			lost++
		case api.WorkerUp:
			up++
		}
	}
	fmt.Fprintf(out, "simulated workers the master lists: %d up, %d lost (load average %s)\n", up, lost, loadAverage())
}

// printFleetCost prints what this process spends on the fleet.
func printFleetCost(out io.Writer, workers int) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(out, "fleet process: %d goroutines (%.1f per worker), %.0f MB from the OS (%.1f KB per worker)\n",
		runtime.NumGoroutine(), float64(runtime.NumGoroutine())/float64(workers),
		float64(ms.Sys)/1e6, float64(ms.Sys)/1e3/float64(workers))
}

// resolveJoinToken: the flag, the environment, the file given, then the
// master's data directory beside the CA file.
func (s *simFlags) resolveJoinToken(cfg client.Config) (string, error) {
	if s.joinToken != "" {
		return s.joinToken, nil
	}
	if t := strings.TrimSpace(os.Getenv("GRAPPE_JOIN_TOKEN")); t != "" {
		return t, nil
	}
	file := s.joinTokenFile
	if file == "" && cfg.CAFile != "" {
		file = filepath.Join(filepath.Dir(cfg.CAFile), master.JoinTokenFile)
	}
	if file == "" {
		return "", errors.New("--simulate-workers needs the join token: --join-token, $GRAPPE_JOIN_TOKEN or --join-token-file")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--simulate-workers needs the join token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// resolveClusterAddr: the flag, the environment, then the API's host on
// the cluster's default port.
func (s *simFlags) resolveClusterAddr(cfg client.Config) (string, error) {
	if s.clusterAddr != "" {
		return s.clusterAddr, nil
	}
	if a := strings.TrimSpace(os.Getenv("GRAPPE_CLUSTER_ADDR")); a != "" {
		return a, nil
	}
	u, err := client.ParseAddr(strings.Split(cfg.Addr, ",")[0])
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(u.Hostname(), "7701"), nil
}

// metricsReader reads the master's process metrics from /metrics.
type metricsReader struct {
	url    string
	tokens []string
	hc     *http.Client
}

type procMetrics struct {
	rss, cpu float64 // bytes, CPU-seconds
	// refused counts the submissions the master refused for backpressure
	// (grappe_submissions_refused_total, all reasons).
	refused float64
	at      time.Time
}

func newMetricsReader(cfg client.Config, tokenFile string) *metricsReader {
	r := &metricsReader{}
	u, err := client.ParseAddr(strings.Split(cfg.Addr, ",")[0])
	if err != nil {
		return r
	}
	r.url = u.String() + "/metrics"
	if cfg.Token != "" {
		r.tokens = append(r.tokens, cfg.Token)
	}
	if tokenFile == "" && cfg.CAFile != "" {
		tokenFile = filepath.Join(filepath.Dir(cfg.CAFile), master.MetricsTokenFile)
	}
	if b, err := os.ReadFile(tokenFile); err == nil && tokenFile != "" {
		r.tokens = append(r.tokens, strings.TrimSpace(string(b)))
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if pem, err := os.ReadFile(cfg.CAFile); err == nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tc.RootCAs = pool
	}
	r.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	return r
}

// read returns the master's RSS and CPU time, if /metrics answers.
func (r *metricsReader) read(ctx context.Context) (procMetrics, bool) {
	if r.hc == nil {
		return procMetrics{}, false
	}
	for _, tok := range r.tokens {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
		if err != nil {
			return procMetrics{}, false
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := r.hc.Do(req)
		if err != nil {
			return procMetrics{}, false
		}
		m, ok := procMetrics{at: time.Now()}, false
		if resp.StatusCode == http.StatusOK {
			m, ok = parseProcMetrics(resp.Body)
		}
		resp.Body.Close()
		if ok {
			return m, true
		}
	}
	return procMetrics{}, false
}

// parseProcMetrics picks the process collector's two lines out of the
// Prometheus text format.
func parseProcMetrics(body io.Reader) (procMetrics, bool) {
	m := procMetrics{at: time.Now()}
	found := 0
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch {
		case strings.HasPrefix(name, "grappe_submissions_refused_total"):
			if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
				m.refused += v
			}
			continue
		case name == "process_resident_memory_bytes":
			dst = &m.rss
		case name == "process_cpu_seconds_total":
			dst = &m.cpu
		default:
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			*dst = v
			found++
		}
	}
	return m, found == 2
}

// loadAverage is the first three fields of /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
