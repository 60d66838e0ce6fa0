package pgtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store/postgres/pgtest"
)

// TestRestart: a restarted server keeps its databases and what they hold,
// at the same URL; connections of before are cut.
func TestRestart(t *testing.T) {
	server, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrUnavailable) {
		t.Skipf("no PostgreSQL server here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Stop)
	url := server.Database(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE kept (v INT); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	err = server.Restart(100 * time.Millisecond)
	if errors.Is(err, pgtest.ErrNotRestartable) {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("a connection of before the restart still works")
	}
	c2, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect after the restart: %v", err)
	}
	defer c2.Close(ctx)
	var v int
	if err := c2.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after the restart: %d, %v; want 42", v, err)
	}
}
