package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/postgres/pgtest"
	"github.com/grappe/grappe/internal/store/storetest"
)

// The package's server: started once by TestMain; nil, with the reason in
// serverErr, when none can run here (the tests then skip).
var (
	server    *pgtest.Server
	serverErr error
)

func TestMain(m *testing.M) {
	server, serverErr = pgtest.Start()
	if serverErr != nil && !errors.Is(serverErr, pgtest.ErrUnavailable) {
		// A server that should have started and did not is a failure,
		// not a skip.
		fmt.Fprintln(os.Stderr, serverErr)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

// needServer skips t when there is no server: at the top of a test, so
// that a suite skips once, not once per subtest.
func needServer(t testing.TB) {
	t.Helper()
	if server == nil {
		t.Skipf("skipping: %v", serverErr)
	}
}

// newDatabase returns the URL of a new, empty database, or skips t.
func newDatabase(t testing.TB) string {
	t.Helper()
	needServer(t)
	return server.Database(t)
}

func openTest(t testing.TB, url string) *Store {
	t.Helper()
	s, err := New(t.Context(), Config{URL: url})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	needServer(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, newDatabase(t))
	})
}

func TestShared(t *testing.T) {
	needServer(t)
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		url := newDatabase(t)
		return openTest(t, url), openTest(t, url)
	})
}

// TestPersistent maps the suite's path to a database of its own: the
// first open of a path creates it, a reopen connects to it again.
func TestPersistent(t *testing.T) {
	needServer(t)
	var (
		mu  sync.Mutex
		dbs = map[string]string{} // path → URL
	)
	storetest.RunPersistent(t, func(t *testing.T, path string) store.Store {
		mu.Lock()
		defer mu.Unlock()
		url, ok := dbs[path]
		if !ok {
			url = newDatabase(t)
			dbs[path] = url
		}
		return openTest(t, url)
	})
}

// Masters starting together on a new database take turns at the
// migrations: every one opens, and the schema is applied once.
func TestConcurrentMigrations(t *testing.T) {
	url := newDatabase(t)
	const masters = 8
	stores := make([]*Store, masters)
	errs := make([]error, masters)
	var wg sync.WaitGroup
	for i := range masters {
		wg.Go(func() { stores[i], errs[i] = New(t.Context(), Config{URL: url}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("New %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var n, maxV int
	if err := stores[0].db.QueryRow(t.Context(), `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations()) || maxV != len(migrations()) {
		t.Errorf("schema_migrations: %d rows, version %d; want %d, %d", n, maxV, len(migrations()), len(migrations()))
	}
}

// A database whose schema is newer than the program's is refused.
func TestNewerSchemaRefused(t *testing.T) {
	url := newDatabase(t)
	s := openTest(t, url)
	if _, err := s.db.Exec(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := New(t.Context(), Config{URL: url}); err == nil {
		s.Close()
		t.Fatal("New on a newer schema: no error")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("New on a newer schema: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := New(context.Background(), Config{}); err == nil {
		t.Error("New with an empty URL: no error")
	}
}
