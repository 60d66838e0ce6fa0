package postgres

import (
	"context"
	"time"
)

// Listen tells of the changes any master makes, as PostgreSQL notifies
// them at commit (migration 4): queued when a job enters the queue, ended
// with a job's id when it ends. It holds one connection of its own,
// reconnects when it is lost (notifications sent meanwhile are lost: the
// masters' polling covers them), and returns when ctx ends.
func (s *Store) Listen(ctx context.Context, queued func(), ended func(id string)) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, queued, ended)
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

func (s *Store) listenOnce(ctx context.Context, queued func(), ended func(id string)) error {
	pc, err := s.db.Acquire(ctx)
	if err != nil {
		return errorf("postgres: Listen: %w", err)
	}
	// A listening connection must not go back to the pool.
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	for _, ch := range []string{"grappe_queued", "grappe_ended"} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return errorf("postgres: Listen: %w", err)
		}
	}
	queued() // what was queued before the LISTEN is not notified
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return errorf("postgres: Listen: %w", err)
		}
		switch n.Channel {
		case "grappe_queued":
			queued()
		case "grappe_ended":
			ended(n.Payload)
		}
	}
}
