package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// historyFixture creates job-0001..job-0006 for the history filters:
//
//	1 python ok            "print('needle')"   at(1)
//	2 c      compile_error "int main(){}"      at(2)
//	3 python wrong_answer  "print(2)"          at(3)
//	4 c      ok            "puts(\"needle\")"  at(4), bob's
//	5 python queued        "print(5)"          at(5)
//	6 python ok            "x = 1\nprint(x)"   at(6)
func historyFixture(t *testing.T, s store.Store) {
	t.Helper()
	for i, c := range []struct {
		lang, verdict, source string
	}{
		{"python", "ok", `print('needle')`},
		{"c", "compile_error", `int main(){}`},
		{"python", "wrong_answer", `print(2)`},
		{"c", "ok", `puts(\"needle\")`},
		{"python", "", `print(5)`},
		{"python", "ok", `x = 1\nprint(x)`},
	} {
		n := i + 1
		owner := "alice"
		if n == 4 {
			owner = "bob"
		}
		j := newJob(jobID(n), owner, at(n))
		j.Language = c.lang
		j.Request = []byte(`{"language":"` + c.lang + `","source":"` + c.source + `"}`)
		mustCreate(t, s, j)
		if c.verdict != "" {
			mustStart(t, s, j.ID, 1, "w1", at(10+n))
			mustFinish(t, s, j.ID, 1, "w1", store.Finish{Status: store.StatusDone, Verdict: c.verdict, At: at(20 + n)})
		}
	}
}

// testListJobsFilters: the history's filters (language, verdict, a
// creation window, a search in the id and the submission) combine with
// each other, with the owner and with the cursor.
func testListJobsFilters(t *testing.T, s store.Store) {
	historyFixture(t, s)
	for _, tc := range []struct {
		name   string
		filter store.ListFilter
		want   []int
	}{
		{"language", store.ListFilter{Language: "c"}, []int{4, 2}},
		{"verdict", store.ListFilter{Verdict: "ok"}, []int{6, 4, 1}},
		{"language and verdict", store.ListFilter{Language: "python", Verdict: "ok"}, []int{6, 1}},
		{"unknown language", store.ListFilter{Language: "cobol"}, nil},
		{"since", store.ListFilter{Since: at(4)}, []int{6, 5, 4}},
		{"until", store.ListFilter{Until: at(3)}, []int{2, 1}},
		{"window", store.ListFilter{Since: at(2), Until: at(4)}, []int{3, 2}},
		{"window in another zone", store.ListFilter{Since: at(2).UTC(), Until: at(4).In(time.FixedZone("x", -5*3600))}, []int{3, 2}},
		{"search source", store.ListFilter{Search: "needle"}, []int{4, 1}},
		{"search source with owner", store.ListFilter{Search: "needle", Owner: "alice"}, []int{1}},
		{"search id", store.ListFilter{Search: "0003"}, []int{3}},
		{"search nothing", store.ListFilter{Search: "haystack"}, nil},
		{"search with a LIKE wildcard", store.ListFilter{Search: "%"}, nil},
		{"search with a quote", store.ListFilter{Search: `'needle'`}, []int{1}},
		{"filters and cursor", store.ListFilter{Language: "python", Before: jobID(5), Limit: 1}, []int{3}},
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
}

// testShares: one share per job, found by its hash, replaced by a new
// one, revoked, refused for an unknown job or a hash already in use.
func testShares(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, newJob(jobID(1), "alice", at(1)))
	mustCreate(t, s, newJob(jobID(2), "alice", at(2)))

	_, err := s.JobShare(ctx, jobID(1))
	wantErr(t, "JobShare before any", err, store.ErrNotFound)
	_, err = s.ShareByHash(ctx, "h1")
	wantErr(t, "ShareByHash before any", err, store.ErrNotFound)

	first := store.Share{JobID: jobID(1), Hash: "h1", CreatedBy: "alice", CreatedAt: at(3)}
	if err := s.PutShare(ctx, first); err != nil {
		t.Fatalf("PutShare: %v", err)
	}
	for _, get := range []func() (*store.Share, error){
		func() (*store.Share, error) { return s.JobShare(ctx, jobID(1)) },
		func() (*store.Share, error) { return s.ShareByHash(ctx, "h1") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("reading the share: %v", err)
		}
		if got.JobID != first.JobID || got.Hash != "h1" || got.CreatedBy != "alice" || !got.CreatedAt.Equal(at(3)) || got.CreatedAt.Location() != time.UTC {
			t.Errorf("share = %+v, want %+v (in UTC)", got, first)
		}
	}

	err = s.PutShare(ctx, store.Share{JobID: jobID(2), Hash: "h1", CreatedAt: at(4)})
	wantErr(t, "PutShare with another job's hash", err, store.ErrConflict)
	err = s.PutShare(ctx, store.Share{JobID: "no-such-job", Hash: "h9", CreatedAt: at(4)})
	wantErr(t, "PutShare of an unknown job", err, store.ErrNotFound)
	if err := s.PutShare(ctx, store.Share{JobID: jobID(1)}); err == nil {
		t.Error("PutShare without a hash succeeded")
	}

	// A new link replaces the old one: the old hash no longer opens it.
	if err := s.PutShare(ctx, store.Share{JobID: jobID(1), Hash: "h2", CreatedBy: "alice", CreatedAt: at(5)}); err != nil {
		t.Fatalf("PutShare again: %v", err)
	}
	_, err = s.ShareByHash(ctx, "h1")
	wantErr(t, "ShareByHash of a replaced link", err, store.ErrNotFound)
	if got, err := s.ShareByHash(ctx, "h2"); err != nil || got.JobID != jobID(1) || !got.CreatedAt.Equal(at(5)) {
		t.Errorf("ShareByHash(h2) = %+v, %v", got, err)
	}

	if err := s.DeleteShare(ctx, jobID(1)); err != nil {
		t.Fatalf("DeleteShare: %v", err)
	}
	_, err = s.ShareByHash(ctx, "h2")
	wantErr(t, "ShareByHash after revocation", err, store.ErrNotFound)
	err = s.DeleteShare(ctx, jobID(1))
	wantErr(t, "DeleteShare twice", err, store.ErrNotFound)
	if _, err := s.JobShare(ctx, jobID(2)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("job 2 has a share: %v", err)
	}
}
