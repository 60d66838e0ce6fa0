package postgres

import (
	"context"
	"crypto/md5" // a channel name, not a secret: see endedChannel
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
)

// Listen tells of the changes any master makes, as PostgreSQL notifies
// them at commit (migrations 4, 6, 10 and 12): see store.Changes; a job
// submitted is notified only while some master is Hungry, and a job's end
// only to the masters it concerns (endedChannel, Watch). It holds one
// connection of its own, reconnects when it is lost (notifications sent
// meanwhile are lost: the masters' polling covers them), and returns when
// ctx ends.
func (s *Store) Listen(ctx context.Context, c store.Changes) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, c)
		if ctx.Err() != nil {
			break
		}
		_ = err // the next attempt says more; the caller polls meanwhile
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return ctx.Err()
}

// Notification channels, as the triggers of migrations 4 and 6 send them.
const (
	chanQueued = "grappe_queued"
	chanEnded  = "grappe_ended"
	chanWorker = "grappe_worker"
	chanAccess = "grappe_access"
)

func (s *Store) listenOnce(ctx context.Context, c store.Changes) error {
	pc, err := s.db.Acquire(ctx)
	if err != nil {
		return errorf("postgres: Listen: %w", err)
	}
	// A listening connection must not go back to the pool.
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	mine := endedChannel(s.masterID)
	for _, ch := range []string{chanQueued, chanEnded, chanWorker, chanAccess, mine} {
		if ch == "" {
			continue
		}
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return errorf("postgres: Listen: %w", err)
		}
	}
	// What changed before the LISTEN, or while a lost connection was
	// replaced, was not notified: say that anything may have.
	call(c.Queued)
	call(c.Access)
	call(c.Resumed)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return errorf("postgres: Listen: %w", err)
		}
		switch n.Channel {
		case chanQueued:
			call(c.Queued)
		case chanEnded, mine:
			callWith(c.Ended, n.Payload)
		case chanWorker:
			callWith(c.Worker, n.Payload)
		case chanAccess:
			call(c.Access)
		}
	}
}

// Hungry says that master has free slots that the queue left empty, for
// d: until then every job submitted, through any master, is notified on
// grappe_queued (migration 10); past it, with no master hungry, a
// submission wakes no other master. A master refreshes it while it stays
// hungry; the rows of masters gone an hour are removed on the way.
func (s *Store) Hungry(ctx context.Context, master string, d time.Duration) error {
	_, err := s.db.Exec(ctx, `WITH gone AS (DELETE FROM hungry_masters WHERE until < now() - interval '1 hour')
	INSERT INTO hungry_masters (master, until) VALUES ($1, now() + $2 * interval '1 microsecond')
	ON CONFLICT (master) DO UPDATE SET until = excluded.until`, master, d.Microseconds())
	if err != nil {
		return errorf("postgres: Hungry %q: %w", master, err)
	}
	return nil
}

// endedChannel is the channel on which the master of that id hears of the
// ends that concern it (migration 12); none for a master with no id.
func endedChannel(masterID string) string {
	if masterID == "" {
		return ""
	}
	return fmt.Sprintf("%s_%x", chanEnded, md5.Sum([]byte(masterID)))
}

// Watch says that a master that neither accepted job id nor holds it has
// subscribers to it: its end is then told to every master (migration 12).
// A job already ended is left as it is; the caller reads it.
func (s *Store) Watch(ctx context.Context, id string) error {
	_, err := s.db.Exec(ctx, `UPDATE jobs SET watched = true
	WHERE id = $1 AND NOT watched AND status IN ('queued', 'running')`, id)
	if err != nil {
		return errorf("postgres: Watch %q: %w", id, err)
	}
	return nil
}

func call(f func()) {
	if f != nil {
		f()
	}
}

func callWith(f func(string), arg string) {
	if f != nil {
		f(arg)
	}
}
