package storetest

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

func testCreateGetRoundTrip(t *testing.T, s store.Store) {
	// Every byte value, and more than a page, so truncation or text
	// conversion of the documents shows.
	request := bytes.Repeat(func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}(), 4096)
	want := &store.Job{
		ID:          "job-full",
		Owner:       "alice",
		Language:    "cpp",
		Version:     "13.2.0",
		Status:      store.StatusQueued,
		Verdict:     "wrong_answer",
		Error:       "attempt 1: worker w1 lost",
		Attempts:    2,
		MaxAttempts: 5,
		Worker:      "w1",
		Priority:    -7,
		Labels:      map[string]string{"zone": "eu-west", "gpu": "", "ünï": "✓ \"quoted\""},
		CreatedAt:   at(0),
		StartedAt:   at(1),
		FinishedAt:  at(2),
		Request:     request,
		Result:      []byte("{\"run\":{\"stdout\":\"\\u0000\"}}\x00\xff"),
	}
	mustCreate(t, s, want)
	got := mustGet(t, s, want.ID)
	checkJob(t, got, want)

	// The caller owns what it got: changing it must not change the store.
	if got.Labels != nil {
		got.Labels["zone"] = "changed"
	}
	if len(got.Request) > 0 {
		got.Request[0] = 'X'
	}
	checkJob(t, mustGet(t, s, want.ID), want)
}

func testCreateMinimal(t *testing.T, s store.Store) {
	// Status empty means queued; unset times stay zero.
	mustCreate(t, s, &store.Job{ID: "job-min", Owner: "bob", Language: "c"})
	checkJob(t, mustGet(t, s, "job-min"), &store.Job{
		ID: "job-min", Owner: "bob", Language: "c", Status: store.StatusQueued,
	})
}

func testCreateNotQueued(t *testing.T, s store.Store) {
	for _, status := range []string{store.StatusRunning, store.StatusDone, store.StatusCancelled, store.StatusFailed, "bogus"} {
		j := newJob("job-"+status, "alice", at(0))
		j.Status = status
		if err := s.CreateJob(t.Context(), j, 0); err == nil {
			t.Errorf("CreateJob with status %q: no error, want one (a new job is queued)", status)
			continue
		}
		_, err := s.GetJob(t.Context(), j.ID)
		wantErr(t, "GetJob after refused create", err, store.ErrNotFound)
	}
}

func testCreateDuplicate(t *testing.T, s store.Store) {
	first := newJob(jobID(1), "alice", at(0))
	mustCreate(t, s, first)
	second := newJob(jobID(1), "mallory", at(1))
	second.Request = []byte(`{"evil":true}`)
	wantErr(t, "CreateJob duplicate", s.CreateJob(t.Context(), second, 0), store.ErrConflict)
	checkJob(t, mustGet(t, s, first.ID), first)
}

func testIdempotencyKey(t *testing.T, s store.Store) {
	first := newJob(jobID(1), "alice", at(0))
	first.IdempotencyKey = "key-1"
	mustCreate(t, s, first)
	// The same key for the same owner: conflict, and the lookup finds the
	// first job.
	retry := newJob(jobID(2), "alice", at(1))
	retry.IdempotencyKey = "key-1"
	wantErr(t, "CreateJob with a used key", s.CreateJob(t.Context(), retry, 0), store.ErrConflict)
	got, err := s.JobByIdempotencyKey(t.Context(), "alice", "key-1")
	if err != nil || got.ID != first.ID || got.IdempotencyKey != "key-1" {
		t.Fatalf("JobByIdempotencyKey = %+v, %v; want %s", got, err, first.ID)
	}
	if _, err := s.GetJob(t.Context(), jobID(2)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused retry was stored: %v", err)
	}
	// Keys are per owner, and jobs without a key never collide.
	other := newJob(jobID(3), "bob", at(2))
	other.IdempotencyKey = "key-1"
	mustCreate(t, s, other)
	mustCreate(t, s, newJob(jobID(4), "alice", at(3)))
	mustCreate(t, s, newJob(jobID(5), "alice", at(4)))
	for _, tc := range [][2]string{{"alice", "key-2"}, {"carol", "key-1"}, {"alice", ""}} {
		if _, err := s.JobByIdempotencyKey(t.Context(), tc[0], tc[1]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("JobByIdempotencyKey(%q, %q) = %v, want ErrNotFound", tc[0], tc[1], err)
		}
	}
}

func testCountJobsByOwner(t *testing.T, s store.Store) {
	if got, err := s.CountJobsByOwner(t.Context()); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v %v", got, err)
	}
	listFixture(t, s)
	got, err := s.CountJobsByOwner(t.Context())
	if err != nil || got["alice"] != 4 || got["bob"] != 4 || len(got) != 2 {
		t.Fatalf("CountJobsByOwner = %v, %v; want alice 4, bob 4", got, err)
	}
	for owner, want := range map[string]int{"alice": 4, "bob": 4, "carol": 0} {
		if n, err := s.CountOwnerJobs(t.Context(), owner); err != nil || n != want {
			t.Errorf("CountOwnerJobs(%s) = %d, %v; want %d", owner, n, err, want)
		}
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetJob(t.Context(), "no-such-job")
	wantErr(t, "GetJob missing", err, store.ErrNotFound)
}

// listFixture creates job-0001..job-0008, odd ones alice's and even ones
// bob's, and leaves them in these states:
//
//	1 queued  2 running  3 done  4 running  5 cancelled  6 queued  7 queued  8 queued
func listFixture(t *testing.T, s store.Store) {
	t.Helper()
	for i := 1; i <= 8; i++ {
		owner := "bob"
		if i%2 == 1 {
			owner = "alice"
		}
		mustCreate(t, s, newJob(jobID(i), owner, at(i)))
	}
	for _, i := range []int{2, 3, 4} {
		mustStart(t, s, jobID(i), 1, "w1", at(10+i))
	}
	mustFinish(t, s, jobID(3), 1, "w1", store.Finish{Status: store.StatusDone, Verdict: "ok", At: at(20)})
	if err := s.FinishQueued(t.Context(), jobID(5), store.Finish{Status: store.StatusCancelled, At: at(21)}); err != nil {
		t.Fatalf("FinishQueued: %v", err)
	}
}

func testListJobs(t *testing.T, s store.Store) {
	listFixture(t, s)
	for _, tc := range []struct {
		name   string
		filter store.ListFilter
		want   []int
	}{
		{"all", store.ListFilter{}, []int{8, 7, 6, 5, 4, 3, 2, 1}},
		{"owner", store.ListFilter{Owner: "alice"}, []int{7, 5, 3, 1}},
		{"other owner", store.ListFilter{Owner: "bob"}, []int{8, 6, 4, 2}},
		{"unknown owner", store.ListFilter{Owner: "nobody"}, nil},
		{"status running", store.ListFilter{Status: store.StatusRunning}, []int{4, 2}},
		{"status queued", store.ListFilter{Status: store.StatusQueued}, []int{8, 7, 6, 1}},
		{"status cancelled", store.ListFilter{Status: store.StatusCancelled}, []int{5}},
		{"status failed", store.ListFilter{Status: store.StatusFailed}, nil},
		{"owner and status", store.ListFilter{Owner: "bob", Status: store.StatusQueued}, []int{8, 6}},
		{"limit", store.ListFilter{Limit: 3}, []int{8, 7, 6}},
		{"limit with owner", store.ListFilter{Owner: "alice", Limit: 2}, []int{7, 5}},
		{"before", store.ListFilter{Before: jobID(6)}, []int{5, 4, 3, 2, 1}},
		{"before with owner", store.ListFilter{Before: jobID(6), Owner: "alice"}, []int{5, 3, 1}},
		{"before with status", store.ListFilter{Before: jobID(6), Status: store.StatusRunning}, []int{4, 2}},
		{"before with limit", store.ListFilter{Before: jobID(6), Limit: 2}, []int{5, 4}},
		{"before another owner's job", store.ListFilter{Before: jobID(4), Owner: "alice"}, []int{3, 1}},
		{"before the oldest", store.ListFilter{Before: jobID(1)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListJobs(t.Context(), tc.filter)
			if err != nil {
				t.Fatalf("ListJobs(%+v): %v", tc.filter, err)
			}
			want := make([]string, len(tc.want))
			for i, n := range tc.want {
				want[i] = jobID(n)
			}
			if !slices.Equal(ids(got), want) {
				t.Errorf("ListJobs(%+v) = %v, want %v", tc.filter, ids(got), want)
			}
		})
	}

	// Listed jobs are whole jobs, the same as GetJob's.
	all, err := s.ListJobs(t.Context(), store.ListFilter{})
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	for _, j := range all {
		checkJob(t, j, mustGet(t, s, j.ID))
	}

	_, err = s.ListJobs(t.Context(), store.ListFilter{Before: "no-such-job"})
	wantErr(t, "ListJobs before an unknown id", err, store.ErrNotFound)
}

func testListJobsPaging(t *testing.T, s store.Store) {
	const n, page = 23, 5
	for i := 1; i <= n; i++ {
		mustCreate(t, s, newJob(jobID(i), "alice", at(i)))
	}
	var got []string
	before := ""
	for range n {
		jobs, err := s.ListJobs(t.Context(), store.ListFilter{Limit: page, Before: before})
		if err != nil {
			t.Fatalf("ListJobs(before %q): %v", before, err)
		}
		if len(jobs) > page {
			t.Fatalf("ListJobs(limit %d) returned %d jobs", page, len(jobs))
		}
		got = append(got, ids(jobs)...)
		if len(jobs) < page {
			break
		}
		before = jobs[len(jobs)-1].ID
	}
	var want []string
	for i := n; i >= 1; i-- {
		want = append(want, jobID(i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("paging by %d gave %v, want %v", page, got, want)
	}
}

func testListJobsOffset(t *testing.T, s store.Store) {
	listFixture(t, s)
	for _, tc := range []struct {
		filter store.ListFilter
		want   []int
	}{
		{store.ListFilter{Offset: 2, Limit: 3}, []int{6, 5, 4}},
		{store.ListFilter{Owner: "alice", Offset: 1, Limit: 2}, []int{5, 3}},
		{store.ListFilter{Owner: "alice", Offset: 3}, []int{1}},
		{store.ListFilter{Offset: 8}, nil},
		{store.ListFilter{Offset: -5, Limit: 1}, []int{8}},
	} {
		jobs, err := s.ListJobs(t.Context(), tc.filter)
		if err != nil {
			t.Fatalf("ListJobs(%+v): %v", tc.filter, err)
		}
		var want []string
		for _, i := range tc.want {
			want = append(want, jobID(i))
		}
		if got := ids(jobs); !slices.Equal(got, want) {
			t.Errorf("ListJobs(%+v) = %v, want %v", tc.filter, got, want)
		}
	}
}

func testTallyJobs(t *testing.T, s store.Store) {
	tally, err := s.TallyJobs(t.Context(), time.Time{})
	if err != nil {
		t.Fatalf("TallyJobs on an empty store: %v", err)
	}
	if len(tally.Kinds) != 0 || len(tally.Days) != 0 {
		t.Errorf("TallyJobs on an empty store: %+v", tally)
	}
	listFixture(t, s) // 4 queued, 2 running, 1 done (ok), 1 cancelled; all python, on one day
	c := newJob(jobID(9), "carol", t0().Add(-48*time.Hour))
	c.Language = "c"
	mustCreate(t, s, c)

	tally, err = s.TallyJobs(t.Context(), t0().Add(-time.Hour))
	if err != nil {
		t.Fatalf("TallyJobs: %v", err)
	}
	got := map[store.KindCount]bool{}
	for _, k := range tally.Kinds {
		got[k] = true
	}
	want := map[store.KindCount]bool{
		{Language: "python", Status: store.StatusQueued, N: 4}:              true,
		{Language: "python", Status: store.StatusRunning, N: 2}:             true,
		{Language: "python", Status: store.StatusDone, Verdict: "ok", N: 1}: true,
		{Language: "python", Status: store.StatusCancelled, N: 1}:           true,
		{Language: "c", Status: store.StatusQueued, N: 1}:                   true,
	}
	if !maps.Equal(got, want) {
		t.Errorf("TallyJobs kinds = %v, want %v", tally.Kinds, want)
	}
	day := t0().UTC().Truncate(24 * time.Hour)
	if len(tally.Days) != 1 || tally.Days[day] != 8 {
		t.Errorf("TallyJobs days = %v, want 8 on %v (the job two days before since left out)", tally.Days, day)
	}
	if tally.Bytes <= 0 {
		t.Errorf("TallyJobs: database size %d", tally.Bytes)
	}
	queued, err := s.CountQueuedByLanguage(t.Context())
	if err != nil {
		t.Fatalf("CountQueuedByLanguage: %v", err)
	}
	if !maps.Equal(queued, map[string]int{"python": 4, "c": 1}) {
		t.Errorf("CountQueuedByLanguage = %v", queued)
	}
}

func testListJobsLimits(t *testing.T, s store.Store) {
	const n = 1005
	for i := 1; i <= n; i++ {
		mustCreate(t, s, &store.Job{ID: jobID(i), Owner: "alice", Language: "c", CreatedAt: at(i)})
	}
	for _, tc := range []struct {
		limit, want int
	}{
		{0, 100}, // default
		{-1, 100},
		{1, 1},
		{999, 999},
		{1000, 1000},
		{1001, 1000}, // capped
		{1 << 30, 1000},
	} {
		jobs, err := s.ListJobs(t.Context(), store.ListFilter{Limit: tc.limit})
		if err != nil {
			t.Fatalf("ListJobs(limit %d): %v", tc.limit, err)
		}
		if len(jobs) != tc.want {
			t.Errorf("ListJobs(limit %d) returned %d jobs, want %d", tc.limit, len(jobs), tc.want)
		}
		if len(jobs) > 0 && jobs[0].ID != jobID(n) {
			t.Errorf("ListJobs(limit %d) starts with %q, want the newest %q", tc.limit, jobs[0].ID, jobID(n))
		}
	}
}

func testUnfinished(t *testing.T, s store.Store) {
	got, err := s.Unfinished(t.Context())
	if err != nil {
		t.Fatalf("Unfinished on an empty store: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Unfinished on an empty store = %v, want none", ids(got))
	}

	for i := 1; i <= 7; i++ {
		mustCreate(t, s, newJob(jobID(i), "alice", at(i)))
	}
	// 1 queued, 2 running, 3 done, 4 cancelled, 5 re-queued, 6 failed,
	// 7 running a second attempt.
	for _, i := range []int{2, 3, 5, 6, 7} {
		mustStart(t, s, jobID(i), 1, "w1", at(10))
	}
	mustFinish(t, s, jobID(3), 1, "w1", store.Finish{Status: store.StatusDone, Verdict: "ok", At: at(11)})
	if err := s.FinishQueued(t.Context(), jobID(4), store.Finish{Status: store.StatusCancelled, At: at(11)}); err != nil {
		t.Fatalf("FinishQueued: %v", err)
	}
	for _, i := range []int{5, 7} {
		if err := s.RequeueAttempt(t.Context(), jobID(i), 1, ref("w1"), store.Requeue{Reason: "worker lost"}); err != nil {
			t.Fatalf("RequeueAttempt: %v", err)
		}
	}
	mustStart(t, s, jobID(7), 2, "w2", at(12))
	mustFinish(t, s, jobID(6), 1, "w1", store.Finish{Status: store.StatusFailed, Error: "boom", At: at(11)})

	got, err = s.Unfinished(t.Context())
	if err != nil {
		t.Fatalf("Unfinished: %v", err)
	}
	want := []string{jobID(1), jobID(2), jobID(5), jobID(7)} // oldest first
	if !slices.Equal(ids(got), want) {
		t.Fatalf("Unfinished = %v, want %v", ids(got), want)
	}
	for _, j := range got {
		checkJob(t, j, mustGet(t, s, j.ID))
	}
}

func testCountJobs(t *testing.T, s store.Store) {
	all := []string{store.StatusQueued, store.StatusRunning, store.StatusDone, store.StatusCancelled, store.StatusFailed}
	counts, err := s.CountJobs(t.Context())
	if err != nil {
		t.Fatalf("CountJobs: %v", err)
	}
	for _, st := range all {
		if n, ok := counts[st]; !ok || n != 0 {
			t.Errorf("CountJobs on an empty store: %s = %d (present %v), want 0 and present", st, n, ok)
		}
	}

	listFixture(t, s) // 4 queued, 2 running, 1 done, 1 cancelled
	mustCreate(t, s, newJob(jobID(9), "carol", at(9)))
	mustStart(t, s, jobID(9), 1, "w1", at(10))
	mustFinish(t, s, jobID(9), 1, "w1", store.Finish{Status: store.StatusFailed, Error: "boom", At: at(11)})

	counts, err = s.CountJobs(t.Context())
	if err != nil {
		t.Fatalf("CountJobs: %v", err)
	}
	want := map[string]int{
		store.StatusQueued: 4, store.StatusRunning: 2, store.StatusDone: 1,
		store.StatusCancelled: 1, store.StatusFailed: 1,
	}
	for _, st := range all {
		if counts[st] != want[st] {
			t.Errorf("CountJobs()[%s] = %d, want %d", st, counts[st], want[st])
		}
	}
	if len(counts) != len(want) {
		t.Errorf("CountJobs() = %v, want exactly %v", counts, want)
	}
}
