// Package pgtest starts a throwaway PostgreSQL server for tests and makes
// fresh databases on it, so that the postgres store's tests (and later
// those of a master on PostgreSQL) run against a real server without any
// setup.
//
// A package's TestMain calls Start once and Stop at the end; each test
// calls Database for an empty database of its own, dropped when it ends:
//
//	var server *pgtest.Server
//
//	func TestMain(m *testing.M) {
//		var err error
//		server, err = pgtest.Start()
//		code := m.Run() // tests skip when server is nil, with err
//		server.Stop()
//		os.Exit(code)
//	}
//
// The server is PostgreSQL's own binaries (initdb, postgres) from the
// system's installation, run as the postgres OS user (initdb refuses
// root), listening on a unix socket only, in a temporary directory:
// nothing leaves the machine. It runs with fsync off, for speed: what it
// holds is thrown away. When GRAPPE_TEST_POSTGRES is set to a connection
// URL, Start uses that server instead (it must let the user create
// databases) and starts none.
//
// Start returns ErrUnavailable (wrapped, with the reason) when it cannot
// start a server here: not root, no postgres user, no binaries. Tests
// then skip rather than fail.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable that points the tests at an
// existing server.
const EnvURL = "GRAPPE_TEST_POSTGRES"

// ErrUnavailable is wrapped by Start's error when no server can be had
// here; a test skips on it.
var ErrUnavailable = errors.New("pgtest: no PostgreSQL server available")

// binDirs are where the server's binaries are looked for, newest first.
func binDirs() []string {
	return []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/14/bin", "/usr/local/pgsql/bin"}
}

// startTimeout bounds the wait for a new server to accept connections.
const startTimeout = 60 * time.Second

// Server is a running test server (or the one EnvURL names).
type Server struct {
	admin string // URL of its maintenance database
	dir   string // temporary directory, removed by Stop
	// The binaries and the OS user, for Restart.
	bin  string
	cred *syscall.Credential
	// The server process and its exit, when Start started one.
	proc   *os.Process
	exited chan error
}

// Start starts a server, or returns the one EnvURL names.
func Start() (*Server, error) {
	if u := os.Getenv(EnvURL); u != "" {
		return &Server{admin: u}, nil
	}
	bin := ""
	for _, d := range binDirs() {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			bin = d
			break
		}
	}
	if bin == "" {
		return nil, fmt.Errorf("%w: no postgres binaries in %v (set %s to use a server)", ErrUnavailable, binDirs(), EnvURL)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: not root, cannot run initdb as the postgres user (set %s to use a server)", ErrUnavailable, EnvURL)
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	uid, err1 := strconv.ParseUint(pgUser.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(pgUser.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: postgres user: %w", err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}

	// A short path: a unix socket's path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "grappe-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, bin: bin, cred: cred}
	if err := s.initdb(); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.start(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// port only names the socket file, in a directory of our own: any number
// does.
const port = "5432"

// env is the environment of the server's processes.
func (s *Server) env() []string {
	return []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + s.dir}
}

// initdb makes the server's data directory, s.dir/data.
func (s *Server) initdb() error {
	if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	initdb := exec.Command(filepath.Join(s.bin, "initdb"), "-D", filepath.Join(s.dir, "data"), "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--no-locale", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	initdb.Env = s.env()
	initdb.Dir = s.dir // the postgres user may not enter the caller's directory
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

// start starts the server on the data directory and waits until it
// accepts connections.
func (s *Server) start() error {
	// Appended to: a restarted server's log follows the first one's.
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"), "-k", s.dir, "-p", port,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=500")
	// Its own process group: a ^C to the test run reaches it only
	// through Stop, which shuts it down cleanly. Should the test binary
	// die without Stop (a panic, a -timeout), the kernel sends the
	// server SIGINT, a fast shutdown (Pdeathsig); that signal follows the
	// death of the thread that started it, so the thread is locked to a
	// goroutine that lives as long as the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGINT}
	cmd.Env = s.env()
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = log, log
	started := make(chan error, 1)
	s.exited = make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the server
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		s.exited = nil
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.proc = cmd.Process
	s.admin = (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/postgres",
		RawQuery: url.Values{"host": {s.dir}, "port": {port}}.Encode()}).String()

	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.admin)
		cancel()
		if err == nil {
			return c.Close(context.Background())
		}
		select {
		case werr := <-s.exited:
			s.exited <- werr // for Stop
			out, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			return fmt.Errorf("pgtest: postgres exited: %v\n%s", werr, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not accepting connections after %v: %w", startTimeout, err)
		}
	}
}

// stopTimeout bounds a fast shutdown before the server is killed.
const stopTimeout = 30 * time.Second

// ErrNotRestartable is returned by Restart for a server Start did not
// start (the one EnvURL names).
var ErrNotRestartable = errors.New("pgtest: the server was not started here and cannot be restarted")

// Restart shuts the server down (a fast shutdown, SIGINT: every
// connection is cut, open transactions roll back), waits down, and starts
// it again on the same data directory and socket: what was committed is
// still there, and the URLs stay valid. Not an immediate shutdown, which
// would be closer to a crash: with synchronous_commit off (for speed) it
// would lose the last commits, a loss no client could be blamed for. Not
// safe for use concurrently with Stop.
func (s *Server) Restart(down time.Duration) error {
	if s == nil || s.proc == nil {
		return ErrNotRestartable
	}
	s.halt(syscall.SIGINT)
	time.Sleep(down)
	return s.start()
}

// halt sends the server sig and waits for its end (killing it after
// stopTimeout).
func (s *Server) halt(sig syscall.Signal) {
	_ = s.proc.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = s.proc.Kill()
		<-s.exited
	}
	s.proc = nil
}

// Stop shuts down the server Start started (a fast shutdown: SIGINT) and
// removes its directory; for an EnvURL server, or a nil one, it does
// nothing.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	if s.proc != nil {
		s.halt(syscall.SIGINT)
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// AdminURL is the URL of the server's maintenance database (postgres).
func (s *Server) AdminURL() string { return s.admin }

// Database creates an empty database with a random name for t, dropped
// when t ends (after the cleanups t registers later, such as closing the
// stores on it), and returns its URL. It fails t if it cannot.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := "grappe_test_" + hex.EncodeToString(b[:])
	if err := s.CreateDatabase(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t's context is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := s.DropDatabase(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	url, err := s.DatabaseURL(name)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// DropDatabase drops the database name, closing the connections still
// open to it (a test that failed half-way may not have closed its own).
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return s.admin1(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
}

// checkName refuses a database name that would need quoting.
func checkName(name string) error {
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
		return fmt.Errorf("pgtest: database name %q: letters, digits and _ only", name)
	}
	return nil
}

// admin1 runs one statement on the maintenance database.
func (s *Server) admin1(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

// CreateDatabase creates the database name (a plain identifier: letters,
// digits and underscores).
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer c.Close(context.Background())
	// PostgreSQL 15 copies the template through the WAL by default, block
	// by block; a file copy is twice as fast here, where nothing is
	// synced, and tests make a database each.
	var version int
	if err := c.QueryRow(ctx, `SELECT current_setting('server_version_num')::INT`).Scan(&version); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	create := `CREATE DATABASE "` + name + `"`
	if version >= 150000 {
		create += ` STRATEGY = FILE_COPY`
	}
	if _, err := c.Exec(ctx, create); err != nil {
		return fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return nil
}

// DatabaseURL returns the URL of the database name on the server: the
// admin URL with its database replaced.
func (s *Server) DatabaseURL(name string) (string, error) {
	u, err := url.Parse(s.admin)
	if err != nil || u.Scheme == "" {
		// A key=value connection string: the last dbname wins.
		return s.admin + " dbname=" + name, nil
	}
	u.Path = "/" + name
	return u.String(), nil
}
