// Package sqlite is grappe's embedded durable store: store.Store on a single
// SQLite file, through the pure-Go modernc.org/sqlite driver (no cgo, so the
// one grappe binary still cross-compiles).
//
// Concurrency model. SQLite admits one writer at a time. Rather than let
// several pooled connections race for the write lock (SQLITE_BUSY, retries,
// busy_timeout sleeps that wreck latency under load), every write goes
// through one dedicated connection: writers queue in Go, in arrival order,
// and never see BUSY from each other. Reads use a separate pool; in WAL mode
// a reader works on the last committed snapshot and neither blocks the
// writer nor waits for it.
//
// Every job transition is a single conditional UPDATE, so the write path is
// one statement, one implicit transaction, one commit.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/grappe/grappe/internal/datadir"
	"github.com/grappe/grappe/internal/store"

	msqlite "modernc.org/sqlite" // registers the "sqlite" driver
	sqlitelib "modernc.org/sqlite/lib"
)

// Interface guard.
var _ store.Store = (*Store)(nil)

// Synchronous settings accepted in Config.
const (
	// SyncNormal: in WAL mode the database can never be corrupted, and a
	// commit survives a crash of the process (the master being killed or
	// restarted), but the last commits before an OS crash or power cut may
	// be lost. No fsync on commit, only at checkpoints.
	SyncNormal = "normal"
	// SyncFull: the WAL is fsynced at every commit, so anything a method
	// returned nil for survives a power cut, for one fsync per write.
	SyncFull = "full"
)

// busyTimeoutMS bounds how long a connection waits for a lock held by
// somebody else. Our own writes never contend (one write connection), but
// another process on the same file (a backup, the sqlite3 shell) or a WAL
// checkpoint can hold a lock for a moment.
const busyTimeoutMS = 5000

// Config configures New.
type Config struct {
	// Path is the database file, created if missing; its directory must
	// exist. It must be a real file: WAL mode and the two connection pools
	// need one (":memory:" is refused).
	Path string
	// Synchronous is SyncNormal (the default when empty) or SyncFull.
	Synchronous string
}

// Store is a store.Store on SQLite. Create it with New; it is safe for
// concurrent use.
type Store struct {
	w      *sql.DB // exactly one connection: every write
	r      *sql.DB // read pool
	writes *committer

	// Prepared once: the hot path (3 writes per job, GetJob per poll,
	// TokenByHash per request) must not re-parse SQL.
	createJob      *sql.Stmt
	jobByKey       *sql.Stmt
	startAttempt   *sql.Stmt
	requeueAttempt *sql.Stmt
	finishAttempt  *sql.Stmt
	finishQueued   *sql.Stmt
	upsertWorker   *sql.Stmt
	queuedByOwner  *sql.Stmt // on r
	getJob         *sql.Stmt // on r
	jobExists      *sql.Stmt // on r
	tokenByHash    *sql.Stmt // on r
	// The claim's statements (claims.go), on w: prepared once, as a
	// claim runs on every freed slot.
	claimRunning, claimOwners, claimCandidates, claimJob, claimServed *sql.Stmt
}

// New opens (creating if needed) the database at cfg.Path, applies the
// pending schema migrations and prepares the statements.
//
// Processes opening a new file at once race to switch it to WAL and to
// migrate it; SQLite answers some of those races with SQLITE_BUSY at once
// instead of waiting (a lock upgrade that could deadlock), so the loser
// starts over.
func New(cfg Config) (*Store, error) {
	for attempt := 1; ; attempt++ {
		s, err := open(cfg)
		var se *msqlite.Error
		if err == nil || attempt == 20 || !errors.As(err, &se) || se.Code()&0xff != sqlitelib.SQLITE_BUSY {
			return s, err
		}
		time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
	}
}

func open(cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: New: empty Path")
	}
	if cfg.Path == ":memory:" || strings.HasPrefix(cfg.Path, "file:") {
		return nil, fmt.Errorf("sqlite: New: Path %q must be a file path", cfg.Path)
	}
	syncMode := strings.ToLower(cfg.Synchronous)
	switch syncMode {
	case "":
		syncMode = SyncNormal
	case SyncNormal, SyncFull:
	default:
		return nil, fmt.Errorf("sqlite: New: Synchronous %q: want %q or %q", cfg.Synchronous, SyncNormal, SyncFull)
	}
	ctx := context.Background()
	if err := createPrivate(cfg.Path); err != nil {
		return nil, err
	}

	// Pragmas travel in the DSN so that every connection the pools ever open
	// (including after a reconnect) gets them, not just the first one.
	common := []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS),
		"foreign_keys(1)",
	}
	w, err := sql.Open("sqlite", dsn(cfg.Path, slices.Concat(common, []string{
		"journal_mode(WAL)",
		// After a checkpoint, shrink a WAL that a burst grew past 64 MiB
		// rather than keep the file at its high-water mark forever.
		"journal_size_limit(67108864)",
		"synchronous(" + strings.ToUpper(syncMode) + ")",
	}), "immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: New: open writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w}
	if err := s.checkWAL(ctx); err != nil {
		w.Close()
		return nil, err
	}
	// SQLite gives the -wal and -shm files the database file's mode, but
	// files an older version left keep theirs.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := datadir.PrivateFile(cfg.Path + suffix); err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: New: %w", err)
		}
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}

	// query_only makes a stray write through the read pool an error instead
	// of a second writer contending with w.
	r, err := sql.Open("sqlite", dsn(cfg.Path, slices.Concat(common, []string{"query_only(1)"}), ""))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: New: open readers: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n) // keep them: reopening re-runs every pragma
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	s.r = r

	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.writes = newCommitter(w)
	return s, nil
}

// createPrivate creates the database file with mode 0600 before SQLite
// does (SQLite would use 0644 less the umask), and makes an existing one
// 0600: it holds every user's sources and password hashes.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, datadir.FileMode)
	if err != nil {
		return fmt.Errorf("sqlite: New: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: New: %w", err)
	}
	if err := datadir.PrivateFile(path); err != nil {
		return fmt.Errorf("sqlite: New: %w", err)
	}
	return nil
}

// dsn builds a driver DSN. The path goes in a file: URI, escaped, so that a
// '?' or '#' in a directory name cannot be taken for parameters.
func dsn(path string, pragmas []string, txlock string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if txlock != "" {
		// BEGIN IMMEDIATE: a migration transaction takes the write lock at
		// once instead of upgrading later, which could fail with BUSY.
		q.Set("_txlock", txlock)
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// checkWAL fails New if the file is not in WAL mode: SQLite silently keeps
// the rollback journal where WAL is impossible (some network file systems),
// and then readers would block behind the writer, breaking the design.
func (s *Store) checkWAL(ctx context.Context) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: New: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: New: journal_mode is %q, WAL is required", mode)
	}
	return nil
}

func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		db   *sql.DB
		dst  **sql.Stmt
		text string
	}{
		{s.w, &s.createJob, sqlCreateJob},
		{s.r, &s.jobByKey, sqlJobByKey},
		{s.w, &s.startAttempt, sqlStartAttempt},
		{s.w, &s.requeueAttempt, sqlRequeueAttempt},
		{s.w, &s.finishAttempt, sqlFinishAttempt},
		{s.w, &s.finishQueued, sqlFinishQueued},
		{s.w, &s.upsertWorker, sqlUpsertWorker},
		{s.r, &s.queuedByOwner, sqlQueuedByOwner},
		{s.r, &s.getJob, sqlGetJob},
		{s.r, &s.jobExists, sqlJobExists},
		{s.r, &s.tokenByHash, sqlTokenByHash},
		{s.w, &s.claimRunning, sqlClaimRunning},
		{s.w, &s.claimOwners, sqlClaimOwners},
		{s.w, &s.claimCandidates, sqlClaimCandidates},
		{s.w, &s.claimJob, sqlClaim},
		{s.w, &s.claimServed, sqlClaimServed},
	} {
		st, err := p.db.PrepareContext(ctx, p.text)
		if err != nil {
			return fmt.Errorf("sqlite: New: prepare %q: %w", p.text, err)
		}
		*p.dst = st
	}
	return nil
}

// Close closes the prepared statements and both pools. The last connection
// to close checkpoints the WAL back into the main file.
func (s *Store) Close() error {
	if s.writes != nil {
		s.writes.close()
	}
	var errs []error
	for _, st := range []*sql.Stmt{
		s.createJob, s.jobByKey, s.startAttempt, s.requeueAttempt, s.finishAttempt,
		s.finishQueued, s.upsertWorker, s.queuedByOwner, s.getJob, s.jobExists, s.tokenByHash,
		s.claimRunning, s.claimOwners, s.claimCandidates, s.claimJob, s.claimServed,
	} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: Close: %w", err)
	}
	return nil
}

// constraintErr maps SQLite constraint violations to the store's sentinels:
// a duplicate key is a conflict, a dangling foreign key a missing parent.
// Other errors are returned unchanged.
func constraintErr(err error) error {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlitelib.SQLITE_CONSTRAINT_UNIQUE, sqlitelib.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %v", store.ErrConflict, err)
	case sqlitelib.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: %v", store.ErrNotFound, err)
	}
	return err
}
