// Package master wires grappe's master: the durable store, the job queue
// and scheduler, the gRPC endpoint workers connect to, and the HTTPS REST
// API. The master runs no user code: it validates, persists, schedules and
// relays.
package master

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/attach"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/autoscale"
	"github.com/grappe/grappe/internal/callback"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/connlimit"
	"github.com/grappe/grappe/internal/datadir"
	"github.com/grappe/grappe/internal/httpapi"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/pki"
	"github.com/grappe/grappe/internal/scheduler"
	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/postgres"
	"github.com/grappe/grappe/internal/store/sqlite"
	"github.com/grappe/grappe/internal/web"
	"github.com/grappe/grappe/internal/workerlink"
)

// linkReadBuffer is each worker connection's read buffer: none, the TLS
// connection under it already holds a whole record (issue 16: 8 KiB less
// per connected worker).
const linkReadBuffer = 0

// The worker link's flow-control windows (see grpcSrv); the worker sets
// the same.
const (
	streamWindow = 4 << 20
	connWindow   = 8 << 20
)

// Config configures a master. Zero values take the defaults below.
type Config struct {
	// DataDir holds the database, the CA and the tokens.
	DataDir string
	// Listen serves the REST API (default 127.0.0.1:7700; use port 0 in tests).
	Listen string
	// ClusterListen serves the workers' gRPC (default :7701).
	ClusterListen string
	// TLSHosts are extra names and IPs for the master's certificate.
	TLSHosts []string
	// TLSCertFile and TLSKeyFile, when set, are the operator's certificate
	// for the REST API (one a public CA signed, say) instead of one from
	// the cluster CA. The worker link always uses the cluster CA: workers
	// pin it through their join token.
	TLSCertFile, TLSKeyFile string
	// InsecureHTTP serves the REST API without TLS. Refused unless Listen
	// is a loopback address (a local reverse proxy terminating TLS).
	InsecureHTTP bool
	// Catalogue validates languages; default the embedded one.
	Catalogue *lang.Catalogue
	// Database, when set, is a PostgreSQL connection string
	// (postgres://USER@HOST/DB): the store is that database, which
	// several masters may share, instead of SQLite in DataDir.
	Database string
	// Synchronous is SQLite's durability: "normal" (default: survives a
	// crash of the master process) or "full" (also a power loss).
	Synchronous string
	// LoginTTL is how long a token made by a password login (grappe
	// login, the web UI) is valid; default 30 days.
	LoginTTL time.Duration
	// MetricsListen, if set, also serves /metrics there, over plain HTTP
	// and without a token: for a monitoring network the operator keeps
	// apart. On Listen, /metrics always needs the scrape token
	// (DIR/metrics-token) or an admin's.
	MetricsListen string
	// Pprof also serves the Go runtime's profiles (/debug/pprof/) on
	// MetricsListen, which it requires.
	Pprof bool
	// MaxConnsPerAddr caps the connections one client IP address holds on
	// each listener (default 256: clients behind one NAT share an
	// address); past it a new connection is closed at once.
	MaxConnsPerAddr int
	// MaxConns caps the connections of all listeners together (default:
	// three quarters of the open-file limit, so the master keeps
	// descriptors for its database and for /healthz).
	MaxConns int

	HeartbeatInterval time.Duration // default 1s
	WorkerTimeout     time.Duration // silent this long → lost; default 5s
	PlacementTimeout  time.Duration // no capable worker this long → failed; default 60s
	RecoveryGrace     time.Duration // after a restart, for workers to re-adopt; default 15s
	ForgetLostAfter   time.Duration // lost workers leave the list; default 1h
	MaxAttempts       int           // default 3
	// InteractiveIdle ends an interactive run that had neither input
	// nor output for that long (default attach.DefaultIdle).
	InteractiveIdle time.Duration
	// ResultGrace bounds how long an attempt a reconnecting worker
	// announced as finished waits for its result (renewed by each piece)
	// before it is queued again; default 1m.
	ResultGrace time.Duration
	// MaxResultBytes is the largest result the master takes from a worker
	// (its encoding); a larger one fails its job. Default 64 MiB.
	MaxResultBytes int64
	// MaxResultBufferBytes bounds the bytes of results in pieces buffered
	// for one worker session at once. Default 64 MiB.
	MaxResultBufferBytes int64
	// Workers whose machine is above these loads get no new job. CPU is
	// off by default (100): a worker busy with its own jobs is already
	// bounded by its slots, and on a shared machine the skip would idle
	// free slots. Memory defaults to 95.
	MaxCPUPercent    float64
	MaxMemoryPercent float64

	// MaxQueuedPerUser caps one user's waiting jobs (default 10,000);
	// past it a submission answers 429.
	MaxQueuedPerUser int
	// MaxQueueDepth and MaxDispatchLag are the backpressure (admission.go):
	// with this many jobs queued in the cluster (default 100,000), or a
	// dispatch round awaited longer than this (default 2s), submissions
	// answer 503 with Retry-After. Negative: no such limit.
	MaxQueueDepth  int
	MaxDispatchLag time.Duration
	// RequestsPerSecond bounds one user's API requests (default 1,000,
	// with bursts of twice that); past it a request answers 429.
	RequestsPerSecond float64

	DefaultLimits api.Limits
	MaxLimits     api.Limits
	MaxBodyBytes  int64

	// AnonymousUser, if set, runs the requests of the Piston and Judge0
	// APIs that carry no token as this user (created with role user if
	// missing; its rate limits and quotas apply): npm's Piston clients
	// cannot send a header. Empty: those APIs need a token too.
	AnonymousUser string

	// MaxBatch caps the jobs of one batch (default 500).
	MaxBatch int
	// Callbacks configures the delivery of callback_url.
	Callbacks CallbackConfig

	// Autoscale lets the master start and stop workers with the load.
	Autoscale AutoscaleConfig

	// MasterID names this master in the store (the workers table, the
	// attempts it holds); unique among the masters sharing a database.
	// Default: the host name and the data directory.
	MasterID string

	Logger *slog.Logger
}

// Validate fills in the defaults and checks the configuration, so that a
// mistake is reported before anything is opened or bound. New calls it.
func (c *Config) Validate() error {
	c.setDefaults()
	switch {
	case c.DataDir == "":
		return errors.New("master: DataDir is required")
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return errors.New("master: --tls-cert and --tls-key go together")
	case c.Pprof && c.MetricsListen == "":
		return errors.New("master: --pprof needs --metrics-listen")
	case c.InsecureHTTP && !loopback(c.Listen):
		return fmt.Errorf("master: --insecure-http is only allowed on a loopback address, not %q", c.Listen)
	case c.HeartbeatInterval < 0 || c.WorkerTimeout < 0 || c.PlacementTimeout < 0 || c.RecoveryGrace < 0 ||
		c.ForgetLostAfter < 0 || c.ResultGrace < 0 || c.LoginTTL < 0 || c.InteractiveIdle < 0:
		return errors.New("master: durations must not be negative")
	case c.WorkerTimeout <= c.HeartbeatInterval:
		return fmt.Errorf("master: the worker timeout (%s) must be longer than the heartbeat interval (%s)", c.WorkerTimeout, c.HeartbeatInterval)
	case c.MaxAttempts < 0 || c.MaxQueuedPerUser < 0 || c.MaxConnsPerAddr < 0 || c.MaxConns < 0:
		return errors.New("master: counts must not be negative")
	}
	for _, addr := range []string{c.Listen, c.ClusterListen, c.MetricsListen} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("master: listen address %q: %w", addr, err)
		}
	}
	return nil
}

// loopback reports whether addr's host is a loopback name or address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7700"
	}
	if c.ClusterListen == "" {
		c.ClusterListen = ":7701"
	}
	def(&c.HeartbeatInterval, time.Second)
	def(&c.WorkerTimeout, 5*time.Second)
	def(&c.PlacementTimeout, 60*time.Second)
	def(&c.RecoveryGrace, 15*time.Second)
	def(&c.InteractiveIdle, attach.DefaultIdle)
	def(&c.ForgetLostAfter, time.Hour)
	def(&c.ResultGrace, time.Minute)
	if c.MaxResultBytes <= 0 {
		c.MaxResultBytes = 64 << 20
	}
	if c.MaxResultBufferBytes <= 0 {
		c.MaxResultBufferBytes = 64 << 20
	}
	// One result alone must fit the session's buffer, or it could never
	// be delivered nor refused.
	c.MaxResultBytes = min(c.MaxResultBytes, c.MaxResultBufferBytes)
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.MaxConnsPerAddr == 0 {
		c.MaxConnsPerAddr = 256
	}
	if c.MaxConns == 0 {
		c.MaxConns = connlimit.DefaultTotal(connlimit.FileLimit())
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.MaxQueuedPerUser == 0 {
		c.MaxQueuedPerUser = 10000
	}
	if c.MaxQueueDepth == 0 {
		c.MaxQueueDepth = 100000
	}
	def(&c.MaxDispatchLag, 2*time.Second)
	if c.RequestsPerSecond <= 0 {
		c.RequestsPerSecond = 1000
	}
	if c.MaxCPUPercent == 0 {
		c.MaxCPUPercent = 100
	}
	if c.MaxMemoryPercent == 0 {
		c.MaxMemoryPercent = 95
	}
	if c.DefaultLimits == (api.Limits{}) {
		c.DefaultLimits = api.Limits{CPUMs: 5000, WallMs: 10000, MemoryMB: 256, Processes: 64, OutputKB: 1024}
	}
	if c.MaxLimits == (api.Limits{}) {
		c.MaxLimits = api.Limits{CPUMs: 60000, WallMs: 120000, MemoryMB: 4096, Processes: 1024, OutputKB: 64 << 10}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MasterID == "" {
		c.MasterID = defaultMasterID(c.DataDir)
	}
}

// Master is a running master. Create it with New, start it with Run.
type Master struct {
	cfg Config
	log *slog.Logger
	// audit carries the security-relevant events (joins, refusals,
	// revocations, rotations) with audit=true, for log pipelines to route.
	audit     *slog.Logger
	store     store.Store
	auth      *auth.Authenticator
	catalogue *lang.Catalogue
	ca        *pki.CA
	joinToken string
	broker    *broker
	// attached are the interactive jobs whose client attached here.
	attached  attachedSessions
	metrics   *metrics
	stats     statsRing
	schedOpts scheduler.Options

	// callbacks delivers the callbacks' outbox (callbacks.go), with the
	// policy submissions are checked with and the users' secrets.
	callbacks       *callback.Deliverer
	callbackPolicy  *callback.Policy
	callbackSecrets callback.Secrets

	// autoscaler is nil unless Config.Autoscale is set.
	autoscaler *autoscale.Autoscaler

	// refusals rate-limits the audit lines of refused worker messages.
	refusals auditLimiter

	apiLn, clusterLn net.Listener
	httpSrv          *http.Server
	grpcSrv          *grpc.Server

	// conns is the connection budget the listeners share.
	conns *connlimit.Budget
	// metricsLn and metricsSrv serve Config.MetricsListen; nil without.
	metricsLn    net.Listener
	metricsSrv   *http.Server
	metricsToken string

	kickc chan struct{}
	// admission refuses submissions while the master is behind.
	admission admission
	// backlog: the last dispatch may have left jobs queued that a worker
	// could take (a heartbeat then asks for another).
	backlog atomic.Bool
	// core is the job lifecycle over the store (links.go adapts it).
	core *jobs.Core
	// started is when New ran; sweepAfter is where the next sweep's page
	// of waiting jobs starts (waiting.go), sweeps counts the sweeps (the
	// sweep loop alone uses both).
	started    time.Time
	sweepAfter int64
	sweeps     int
	// renewedAt is when the leases were last renewed (leases.go; the
	// workers-table flush alone uses it).
	renewedAt time.Time
	// unrecorded: results the store failed to record, recorded again by
	// the sweep (unrecorded.go).
	unrecorded unrecordedResults
	// sweepc asks the sweep loop for a sweep now, and notified says what
	// other masters changed (notified.go).
	sweepc   chan struct{}
	notified notified
	// recording holds the jobs whose result this master is recording
	// (id → attempt): the store's notification of such an end is its
	// own, which it publishes itself. Under mu.
	recording map[string]int
	// outage: the database's unavailability, for the logs (outage.go).
	outage outage
	// The roles this master may lead (leader.go).
	sweeper, autoscaleRole role
	// leaseStoreFailedAt is when a renewal or a rescue of the leases last
	// failed for want of the store, leaseStoreBackAt when one succeeded
	// after it (0: none yet); unix nanoseconds, written by the flush and
	// the sweep. See rescueExpired.
	leaseStoreFailedAt, leaseStoreBackAt atomic.Int64

	mu      sync.Mutex
	jobs    map[string]*liveJob
	workers map[string]*workerEntry
	// index holds the workers for placement (placer.go): every change
	// to what placement sees of a worker updates it (reindex).
	index *scheduler.Index
	// dirtyRows are the workers whose row the next flush writes
	// (workertable.go).
	dirtyRows map[string]struct{}

	closeOnce sync.Once
}

// Files in the data directory that the contract names.
const (
	CAFile         = "ca.pem"
	AdminTokenFile = "admin-token"
	JoinTokenFile  = "join-token"
	// MetricsTokenFile holds the token that may read /metrics and nothing
	// else (mode 0600), for Prometheus's credentials_file.
	MetricsTokenFile = "metrics-token"
	dbFile           = "grappe.db"
)

// New opens the store, creates the CA and tokens on first start, rebuilds
// the queue and binds both listeners, so Addr and ClusterAddr are known
// before Run.
func New(cfg Config) (*Master, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := datadir.Ensure(cfg.DataDir, cfg.Logger); err != nil {
		return nil, fmt.Errorf("master: data dir: %w", err)
	}
	m := &Master{
		cfg: cfg, log: cfg.Logger, audit: cfg.Logger.With("audit", true), catalogue: cfg.Catalogue,
		broker: newBroker(), kickc: make(chan struct{}, 1), sweepc: make(chan struct{}, 1),
		jobs: map[string]*liveJob{}, recording: map[string]int{}, workers: map[string]*workerEntry{}, started: time.Now(),
		attached:  attachedSessions{byJob: map[string]*attach.Session{}},
		dirtyRows: map[string]struct{}{},
		sweeper:   role{name: store.RoleSweeper}, autoscaleRole: role{name: store.RoleAutoscaler},
		schedOpts: scheduler.Options{MaxCPUPercent: cfg.MaxCPUPercent, MaxMemoryPercent: cfg.MaxMemoryPercent},
	}
	m.index = scheduler.NewIndex(m.schedOpts)
	m.admission.maxDepth, m.admission.maxLag = cfg.MaxQueueDepth, cfg.MaxDispatchLag
	if m.catalogue == nil {
		c, err := lang.Default()
		if err != nil {
			return nil, fmt.Errorf("master: catalogue: %w", err)
		}
		m.catalogue = c
	}
	m.metrics = newMetrics(m)
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	var err error
	if m.store, err = openStore(cfg); err != nil {
		return nil, fmt.Errorf("master: store: %w", err)
	}
	ctx := context.Background()
	if err := m.loadIdentity(ctx); err != nil {
		return nil, err
	}
	m.core, err = jobs.New(jobs.Config{
		MasterID: cfg.MasterID, Store: m.store, Links: links{m}, Events: events{m}, Log: cfg.Logger,
		LeaseTTL: m.leaseFor(), PlacementTimeout: cfg.PlacementTimeout, MaxAttempts: cfg.MaxAttempts,
		MaxQueuedPerUser: cfg.MaxQueuedPerUser, ClaimBatch: claimBatch,
	})
	if err != nil {
		return nil, fmt.Errorf("master: job core: %w", err)
	}
	m.auth = auth.New(m.store, auth.Config{LoginTTL: cfg.LoginTTL})
	if err := m.auth.EnsureAdmin(ctx, filepath.Join(cfg.DataDir, AdminTokenFile)); err != nil {
		return nil, fmt.Errorf("master: admin token: %w", err)
	}
	if cfg.AnonymousUser != "" {
		u, err := m.auth.EnsureUser(ctx, cfg.AnonymousUser, auth.RoleUser)
		if err != nil {
			return nil, fmt.Errorf("master: anonymous user: %w", err)
		}
		// Requests without a token must never act as an admin.
		if u.Role != auth.RoleUser {
			return nil, fmt.Errorf("master: anonymous user %q has role %s: it must be a plain user", u.Name, u.Role)
		}
	}
	if err := m.setupCallbacks(); err != nil {
		return nil, err
	}
	if err := m.recover(ctx); err != nil {
		return nil, err
	}
	if err := m.listen(); err != nil {
		return nil, err
	}
	if err := m.setupAutoscaler(); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// loadIdentity loads the cluster's CA and tokens: the database's when it
// has them (written into --data), else those of --data or new ones,
// which it then stores for the other masters (secrets.go).
func (m *Master) loadIdentity(ctx context.Context) error {
	if err := m.takeIdentity(ctx); err != nil {
		return err
	}
	for range 2 {
		var err error
		if m.ca, err = pki.LoadOrCreate(m.cfg.DataDir); err != nil {
			return fmt.Errorf("master: CA: %w", err)
		}
		// The admin token file is created here; its user and token rows
		// are made once the authenticator exists.
		if _, err := auth.ReadSecretFile(filepath.Join(m.cfg.DataDir, AdminTokenFile)); errors.Is(err, os.ErrNotExist) {
			tok, err := auth.NewToken()
			if err != nil {
				return err
			}
			if err := auth.WriteSecretFile(filepath.Join(m.cfg.DataDir, AdminTokenFile), tok); err != nil {
				return err
			}
		}
		if m.joinToken, err = m.loadJoinToken(); err != nil {
			return err
		}
		if m.metricsToken, err = loadMetricsToken(filepath.Join(m.cfg.DataDir, MetricsTokenFile)); err != nil {
			return err
		}
		took, err := m.shareIdentity(ctx)
		if err != nil || !took {
			return err
		}
		// Another master stored its identity first: load that one.
	}
	return nil
}

// openStore opens the store cfg names: PostgreSQL at cfg.Database, else
// SQLite in the data directory.
func openStore(cfg Config) (store.Store, error) {
	if cfg.Database != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := postgres.New(ctx, postgres.Config{URL: cfg.Database, MasterID: cfg.MasterID})
		if err != nil {
			return nil, err // not a nil *postgres.Store in an interface
		}
		return s, nil
	}
	s, err := sqlite.New(sqlite.Config{Path: filepath.Join(cfg.DataDir, dbFile), Synchronous: cfg.Synchronous})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (m *Master) joinTokenPath() string { return filepath.Join(m.cfg.DataDir, JoinTokenFile) }

func (m *Master) loadJoinToken() (string, error) {
	path := m.joinTokenPath()
	tok, err := auth.ReadSecretFile(path)
	if err == nil {
		if _, perr := pki.ParseJoinToken(tok); perr != nil {
			return "", fmt.Errorf("master: %s: %w", path, perr)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("master: join token: %w", err)
	}
	if tok, err = pki.NewJoinToken(m.ca); err != nil {
		return "", fmt.Errorf("master: join token: %w", err)
	}
	if err := auth.WriteSecretFile(path, tok); err != nil {
		return "", fmt.Errorf("master: join token: %w", err)
	}
	return tok, nil
}

func (m *Master) listen() error {
	hosts := append([]string{}, m.cfg.TLSHosts...)
	for _, addr := range []string{m.cfg.Listen, m.cfg.ClusterListen} {
		if h, _, err := net.SplitHostPort(addr); err == nil && h != "" {
			hosts = append(hosts, h)
		}
	}
	cert, err := m.ca.IssueServer(hosts)
	if err != nil {
		return fmt.Errorf("master: server certificate: %w", err)
	}
	tlsCfg := pki.ServerTLS(cert)
	apiTLS, err := m.apiTLS(tlsCfg)
	if err != nil {
		return err
	}
	if m.apiLn, err = net.Listen("tcp", m.cfg.Listen); err != nil {
		return fmt.Errorf("master: listen %s: %w", m.cfg.Listen, err)
	}
	if m.clusterLn, err = net.Listen("tcp", m.cfg.ClusterListen); err != nil {
		return fmt.Errorf("master: cluster listen %s: %w", m.cfg.ClusterListen, err)
	}
	// Both capped below TLS: a refused connection costs no handshake.
	m.conns = connlimit.NewBudget(m.cfg.MaxConns)
	m.apiLn = m.limitConns(m.apiLn, "api")
	m.clusterLn = m.limitConns(m.clusterLn, "cluster")
	handler := httpapi.New(httpapi.Config{
		Service: m, Auth: m.auth, Users: m.auth, Revoker: m.auth, Logger: m.log,
		MaxBodyBytes: m.cfg.MaxBodyBytes, Metrics: m.metrics.handler(), MetricsToken: m.metricsToken,
		Limits: httpapi.RateLimits{PerUser: m.cfg.RequestsPerSecond, Burst: int(2 * m.cfg.RequestsPerSecond)},
		Web:    web.Handler(web.Config{}),
		Compat: httpapi.Compat{Aliases: m.aliases, DefaultLimits: m.cfg.DefaultLimits, MaxLimits: m.cfg.MaxLimits,
			AnonymousUser: m.cfg.AnonymousUser},
		Audit: m.store, History: m, MaxQueuedPerUser: m.cfg.MaxQueuedPerUser,
		MaxBatch: m.cfg.MaxBatch,
	})
	m.httpSrv = &http.Server{
		Handler:           handler,
		TLSConfig:         apiTLS,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
	}
	if apiTLS != nil {
		m.apiLn = tls.NewListener(m.apiLn, apiTLS)
	}
	// Workers present their certificate on Connect; Join is the one call
	// made without one, so certificates are checked if given here and
	// required by the handlers.
	grpcTLS := tlsCfg.Clone()
	grpcTLS.ClientAuth = tls.VerifyClientCertIfGiven
	grpcTLS.ClientCAs = m.ca.Pool()
	m.grpcSrv = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(grpcTLS)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// A connection that never completes its handshake, or holds no
		// call for minutes, is closed: a worker always holds its stream.
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute}),
		grpc.MaxRecvMsgSize(64<<20),
		grpc.MaxSendMsgSize(64<<20),
		// Fixed flow-control windows: left dynamic, gRPC measures the
		// bandwidth-delay product with a PING after data frames, extra
		// round trips on a link that carries small messages.
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		// An idle worker's link should cost little (issue 16: thousands
		// of them): no read buffer of gRPC's own (32 KiB by default) over
		// the TLS connection's, and the write buffer taken from a pool for
		// each flush rather than kept by every connection. Results arrive
		// in pieces of 1 MiB at most either way.
		grpc.ReadBufferSize(linkReadBuffer),
		grpc.SharedWriteBuffer(true),
		// Each connection carries one stream, whose headers are sent
		// once: a dynamic HPACK table would only hold them for nothing.
		grpc.HeaderTableSize(0),
		// Lets a worker's link end its stream without a goroutine
		// waiting to do it (workerlink.Link).
		grpc.InTapHandle(workerlink.InTap),
	)
	links, err := workerlink.New(workerlink.Config{
		Hub: linkHub{m}, HeartbeatInterval: m.cfg.HeartbeatInterval, Lease: m.cfg.WorkerTimeout,
		MaxResultBytes: m.cfg.MaxResultBytes, MaxResultBufferBytes: m.cfg.MaxResultBufferBytes, Logger: m.log,
	})
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	clusterpb.RegisterClusterServer(m.grpcSrv, links)
	return m.listenMetrics()
}

// aliases are a language's other names in the catalogue.
func (m *Master) aliases(language string) []string {
	if e, ok := m.catalogue.Lookup(language); ok {
		return e.Aliases
	}
	return nil
}

// limitConns caps a listener's connections per client address and draws
// them from the master's budget.
func (m *Master) limitConns(ln net.Listener, name string) net.Listener {
	return connlimit.NewListener(ln, connlimit.Config{PerAddr: m.cfg.MaxConnsPerAddr, Total: m.conns, Name: name, Logger: m.log})
}

// apiTLS is the REST API's TLS configuration: the operator's certificate
// if given, else the cluster one; nil for --insecure-http on loopback.
func (m *Master) apiTLS(cluster *tls.Config) (*tls.Config, error) {
	if m.cfg.InsecureHTTP {
		// Validate refused it anywhere but on loopback.
		m.log.Warn("REST API served WITHOUT TLS on loopback", "listen", m.cfg.Listen)
		return nil, nil
	}
	if m.cfg.TLSCertFile == "" && m.cfg.TLSKeyFile == "" {
		return cluster, nil
	}
	cert, err := tls.LoadX509KeyPair(m.cfg.TLSCertFile, m.cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("master: --tls-cert/--tls-key: %w", err)
	}
	return pki.ServerTLS(cert), nil
}

// URLScheme is https, or http with InsecureHTTP.
func (m *Master) urlScheme() string {
	if m.cfg.InsecureHTTP {
		return "http"
	}
	return "https"
}

// Addr is the REST API's address.
func (m *Master) Addr() string { return m.apiLn.Addr().String() }

// URL is the REST API's base URL.
func (m *Master) URL() string { return m.urlScheme() + "://" + m.Addr() }

// ClusterAddr is where workers connect.
func (m *Master) ClusterAddr() string { return m.clusterLn.Addr().String() }

// JoinToken is the token workers present to join.
func (m *Master) JoinToken() string { return m.currentJoinToken() }

// CAPEM is the cluster CA certificate.
func (m *Master) CAPEM() []byte { return m.ca.CertPEM() }

// DataDir is where the master keeps its files.
func (m *Master) DataDir() string { return m.cfg.DataDir }

// Run serves until ctx is cancelled, then shuts down gracefully.
func (m *Master) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := m.httpSrv.Serve(m.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("master: http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := m.grpcSrv.Serve(m.clusterLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("master: grpc: %w", err)
		}
		return nil
	})
	if m.metricsSrv != nil {
		g.Go(func() error {
			if err := m.metricsSrv.Serve(m.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("master: metrics: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error { m.dispatchLoop(gctx); return nil })
	g.Go(func() error { m.followNotifications(gctx); return nil })
	g.Go(func() error { m.sweepLoop(gctx); return nil })
	g.Go(func() error { m.statsLoop(gctx); return nil })
	g.Go(func() error { m.workerRowsLoop(gctx); return nil })
	g.Go(func() error { m.callbacks.Run(gctx); return nil })
	if m.autoscaler != nil {
		g.Go(func() error { return m.autoscaler.Run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		m.shutdown()
		return nil
	})
	err := g.Wait()
	m.Close()
	return err
}

func (m *Master) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Stop the worker streams first: they are long-lived and would hold
	// GracefulStop forever. Workers keep their jobs and reconnect later.
	stopped := make(chan struct{})
	go func() { m.grpcSrv.GracefulStop(); close(stopped) }()
	m.mu.Lock()
	for _, w := range m.workers {
		if w.session != nil {
			w.session.Close()
		}
	}
	m.mu.Unlock()
	select {
	case <-stopped:
	case <-ctx.Done():
		m.grpcSrv.Stop()
	}
	m.closeSessions() // hijacked connections: Shutdown does not wait for them
	_ = m.httpSrv.Shutdown(ctx)
	if m.metricsSrv != nil {
		_ = m.metricsSrv.Shutdown(ctx)
	}
	m.resign(ctx)
}

// Close releases everything; it is safe to call more than once.
func (m *Master) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.grpcSrv != nil {
			m.grpcSrv.Stop()
		}
		for _, srv := range []*http.Server{m.httpSrv, m.metricsSrv} {
			if srv != nil {
				_ = srv.Close()
			}
		}
		for _, ln := range []net.Listener{m.apiLn, m.clusterLn, m.metricsLn} {
			if ln != nil {
				_ = ln.Close()
			}
		}
		if m.store != nil {
			err = m.store.Close()
		}
	})
	return err
}
