package postgres

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
)

// TestSharedStress runs every multi-master race at once on two handles
// for a while: submissions under a quota, claims, finishes, requeues,
// cancels of queued jobs and rescues of expired leases. Nothing may fail
// but the compare-and-sets (ErrConflict) and the quota (ErrQuota), no
// attempt may be claimed twice, the trigger's queued counts must match
// the jobs, and the lock order must leave PostgreSQL no deadlock to break.
func TestSharedStress(t *testing.T) {
	url := newDatabase(t)
	s := [2]*Store{openTest(t, url), openTest(t, url)}
	defer s[0].Close()
	defer s[1].Close()
	ctx := t.Context()
	const (
		owners = 4
		quota  = 15
	)
	stop := time.Now().Add(2 * time.Second)
	var (
		mu      sync.Mutex
		claimed = map[string]string{} // "id/attempt" → claimer
		errs    []error
		nJobs   int
		nClaims int
	)
	fail := func(what string, err error) {
		mu.Lock()
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
		mu.Unlock()
	}
	allowed := func(err error) bool {
		return err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrQuota)
	}
	var wg sync.WaitGroup
	for g := range 4 { // submitters
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				j := &store.Job{ID: fmt.Sprintf("job-%d-%d", g, i), Owner: fmt.Sprintf("u%d", i%owners),
					Language: "python", MaxAttempts: 2, CreatedAt: time.Now(), Priority: i % 3}
				if err := s[g%2].CreateJob(ctx, j, quota); !allowed(err) {
					fail("CreateJob", err)
				} else if err == nil {
					mu.Lock()
					nJobs++
					mu.Unlock()
				}
			}
		})
	}
	for c := range 6 { // claimers, each with two workers
		wg.Go(func() {
			h := s[c%2]
			for time.Now().Before(stop) {
				var offers []store.Offer
				for w := range 2 {
					name := fmt.Sprintf("w%d-%d", c, w)
					offers = append(offers, store.Offer{Worker: store.WorkerRef{Name: name, Identity: "id-" + name},
						Languages: map[string][]string{"python": {"3.12"}}, Free: 1 + rand.IntN(3)})
				}
				now := time.Now()
				cs, err := h.ClaimJobs(ctx, store.ClaimRequest{Master: fmt.Sprintf("m%d", c%2), Placer: store.NewOfferList(offers...),
					At: now, LeaseUntil: now.Add(time.Duration(rand.IntN(30)) * time.Millisecond)})
				if err != nil {
					fail("ClaimJobs", err)
					continue
				}
				for _, cl := range cs {
					key := fmt.Sprintf("%s/%d", cl.Job.ID, cl.Job.Attempts)
					mu.Lock()
					nClaims++
					if prev, ok := claimed[key]; ok {
						errs = append(errs, fmt.Errorf("%s claimed by %s and %d", key, prev, c))
					}
					claimed[key] = fmt.Sprint(c)
					mu.Unlock()
					w := cl.Worker
					var err error
					switch rand.IntN(3) {
					case 0:
						_, err = s[rand.IntN(2)].FinishAttempt(ctx, cl.Job.ID, cl.Job.Attempts, w,
							store.Finish{Status: store.StatusDone, At: time.Now()})
					case 1:
						err = s[rand.IntN(2)].RequeueAttempt(ctx, cl.Job.ID, cl.Job.Attempts, w,
							store.Requeue{Reason: "lost", At: time.Now()})
					} // 2: left to expire
					if !allowed(err) {
						fail("finish or requeue", err)
					}
				}
			}
		})
	}
	for r := range 2 { // rescuers
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := s[r].RescueExpired(ctx, time.Now(), "lease expired", 5); err != nil {
					fail("RescueExpired", err)
				}
			}
		})
	}
	for k := range 2 { // cancellers of queued jobs
		wg.Go(func() {
			for time.Now().Before(stop) {
				js, err := s[k].ListJobs(ctx, store.ListFilter{Status: store.StatusQueued, Limit: 5})
				if err != nil {
					fail("ListJobs", err)
					continue
				}
				for _, j := range js {
					if rand.IntN(4) > 0 {
						continue
					}
					err := s[1-k].FinishQueued(ctx, j.ID, store.Finish{Status: store.StatusCancelled, At: time.Now()})
					if !allowed(err) {
						fail("FinishQueued", err)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	t.Logf("%d jobs submitted, %d attempts claimed", nJobs, nClaims)
	if nClaims == 0 {
		t.Error("nothing was claimed")
	}

	// The trigger's counts are the queue's.
	rows, err := s[0].db.Query(ctx, `SELECT q.owner, q.n, (SELECT COUNT(*) FROM jobs j WHERE j.owner = q.owner AND j.status = 'queued')
	FROM queued_counts q`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			owner    string
			n, count int64
		)
		if err := rows.Scan(&owner, &n, &count); err != nil {
			t.Fatal(err)
		}
		// (Requeues and rescues may take an owner past the quota: it
		// bounds submissions only.)
		if n != count {
			t.Errorf("owner %s: queued_counts %d, queued jobs %d", owner, n, count)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// A backend reports its statistics when it exits at the latest: the
	// handles' connections are closed before the deadlocks are read.
	rows.Close()
	s[0].Close()
	s[1].Close()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var deadlocks int64
	if err := c.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&deadlocks); err != nil {
		t.Fatal(err)
	}
	if deadlocks != 0 {
		t.Errorf("PostgreSQL broke %d deadlocks", deadlocks)
	}
}
