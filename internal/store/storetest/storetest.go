// Package storetest is the conformance suite for store.Store: the executable
// specification every implementation (sqlite, and postgres later) must pass.
// An implementation's own tests call Run, and RunPersistent if the store is
// durable:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openEmpty(t) })
//	}
//
// What the suite requires beyond the comments in package store:
//   - times round-trip to the microsecond (PostgreSQL's precision) and come
//     back in UTC; the zero time stays zero;
//   - nil and empty Labels, Request and Result are interchangeable (the
//     suite compares lengths and contents, not nil-ness);
//   - CountJobs reports every known status, zeros included;
//   - ListJobs with an unknown Before id is ErrNotFound;
//   - CreateToken for an unknown user is ErrNotFound; a duplicate token id
//     or hash is ErrConflict;
//   - PutUser over an existing user keeps that user's tokens;
//   - StartAttempt, RequeueAttempt and FinishAttempt refuse a WorkerRef
//     missing its name or identity.
//   - a token created with an empty Kind comes back as store.TokenAPI;
//   - SetPasswordHash deletes the user's login tokens and only them.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// Run runs the conformance suite, one subtest per behaviour. newStore must
// return a new, empty store on every call; the suite closes it when the
// subtest ends, so newStore must not.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	open := func(t *testing.T) store.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"CreateGetRoundTrip", testCreateGetRoundTrip},
		{"CreateMinimal", testCreateMinimal},
		{"CreateNotQueued", testCreateNotQueued},
		{"CreateDuplicate", testCreateDuplicate},
		{"IdempotencyKey", testIdempotencyKey},
		{"GetMissing", testGetMissing},
		{"CountJobsByOwner", testCountJobsByOwner},
		{"ListJobs", testListJobs},
		{"ListJobsPaging", testListJobsPaging},
		{"ListJobsLimits", testListJobsLimits},
		{"ListJobsOffset", testListJobsOffset},
		{"TallyJobs", testTallyJobs},
		{"ListJobsFilters", testListJobsFilters},
		{"Shares", testShares},
		{"Unfinished", testUnfinished},
		{"CountJobs", testCountJobs},
		{"StartAttempt", testStartAttempt},
		{"StartAttemptConflicts", testStartAttemptConflicts},
		{"RequeueAttempt", testRequeueAttempt},
		{"RequeueAttemptConflicts", testRequeueAttemptConflicts},
		{"FinishAttempt", testFinishAttempt},
		{"FinishAttemptExactlyOnce", testFinishAttemptExactlyOnce},
		{"FinishAttemptStale", testFinishAttemptStale},
		{"FinishAttemptConflicts", testFinishAttemptConflicts},
		{"AttemptOwnership", testAttemptOwnership},
		{"ReleasedAttempts", testReleasedAttempts},
		{"IncompleteWorkerRef", testIncompleteWorkerRef},
		{"FinishQueued", testFinishQueued},
		{"FinishQueuedConflicts", testFinishQueuedConflicts},
		{"ConcurrentFinish", testConcurrentFinish},
		{"ConcurrentStart", testConcurrentStart},
		{"ClaimStartsJobs", testClaimStartsJobs},
		{"ClaimJob", testClaimJob},
		{"ClaimPlacement", testClaimPlacement},
		{"ClaimFairOrder", testClaimFairOrder},
		{"ClaimRoundRobin", testClaimRoundRobin},
		{"Leases", testLeases},
		{"HeldBy", testHeldBy},
		{"WorkerDrain", testWorkerDrain},
		{"Secrets", testSecrets},
		{"Lead", testLead},
		{"Autoscaled", testAutoscaled},
		{"RescueGivesUp", testRescueGivesUp},
		{"Quota", testQuota},
		{"QueuedBefore", testQueuedBefore},
		{"QueuePosition", testQueuePosition},
		{"CountActive", testCountActive},
		{"Seq", testSeq},
		{"Workers", testWorkers},
		{"Users", testUsers},
		{"PutUserKeepsTokens", testPutUserKeepsTokens},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"Tokens", testTokens},
		{"WorkerIdentities", testWorkerIdentities},
		{"WorkerIdentityTakeover", testWorkerIdentityTakeover},
		{"WorkerIdentityRenewal", testWorkerIdentityRenewal},
		{"TokenConflicts", testTokenConflicts},
		{"TokenKindsAndExpiry", testTokenKindsAndExpiry},
		{"SetPasswordHash", testSetPasswordHash},
		{"DeleteExpiredTokens", testDeleteExpiredTokens},
		{"Audit", testAudit},
		{"StatsSamples", testStatsSamples},
		{"Batch", testBatch},
		{"BatchQuota", testBatchQuota},
		{"CallbackDelivery", testCallbackDelivery},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// RunPersistent checks that everything written survives Close and a new
// open. open must open the store at path, creating it when it does not
// exist; opening the same path again must reach the same data. path is
// chosen by the suite (a file name in a fresh t.TempDir()); a backend that
// is not a file, such as PostgreSQL, may map it to a database or schema
// name. The suite closes every store it opens.
func RunPersistent(t *testing.T, open func(t *testing.T, path string) store.Store) {
	t.Helper()
	t.Run("SurvivesReopen", func(t *testing.T) { testSurvivesReopen(t, open) })
}

// t0 is the suite's reference time: not UTC, and with microseconds, so a
// store that drops the zone conversion or the sub-second part is caught.
func t0() time.Time {
	return time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.FixedZone("UTC+2", 2*3600))
}

// at returns t0 plus n seconds.
func at(n int) time.Time { return t0().Add(time.Duration(n) * time.Second) }

// newJob returns a fresh queued job with the fields the master always sets.
func newJob(id, owner string, created time.Time) *store.Job {
	return &store.Job{
		ID:          id,
		Owner:       owner,
		Language:    "python",
		Version:     ">=3.10",
		Status:      store.StatusQueued,
		MaxAttempts: 3,
		Request:     []byte(`{"language":"python","source":"print(1)"}`),
		CreatedAt:   created,
	}
}

func mustCreate(t *testing.T, s store.Store, j *store.Job) {
	t.Helper()
	if err := s.CreateJob(t.Context(), j, 0); err != nil {
		t.Fatalf("CreateJob(%q): %v", j.ID, err)
	}
}

func mustGet(t *testing.T, s store.Store, id string) *store.Job {
	t.Helper()
	j, err := s.GetJob(t.Context(), id)
	if err != nil {
		t.Fatalf("GetJob(%q): %v", id, err)
	}
	return j
}

func mustStart(t *testing.T, s store.Store, id string, attempt int, worker string, when time.Time) {
	t.Helper()
	if err := s.StartAttempt(t.Context(), id, attempt, ref(worker), when); err != nil {
		t.Fatalf("StartAttempt(%q, %d): %v", id, attempt, err)
	}
}

func mustFinish(t *testing.T, s store.Store, id string, attempt int, worker string, f store.Finish) *store.Job {
	t.Helper()
	j, err := s.FinishAttempt(t.Context(), id, attempt, ref(worker), f)
	if err != nil {
		t.Fatalf("FinishAttempt(%q, %d): %v", id, attempt, err)
	}
	return j
}

// ref is the suite's worker: the name, under the identity lineage the
// suite gives that name. A worker of the same name under another identity
// (a revoked one's successor) is store.WorkerRef{Name: name, Identity: …}.
func ref(worker string) store.WorkerRef {
	return store.WorkerRef{Name: worker, Identity: "lineage-" + worker}
}

// finishErr keeps FinishAttempt's error, for the checks of refusals.
func finishErr(_ *store.Job, err error) error { return err }

// wantErr fails unless err wraps target; a nil target wants no error.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Errorf("%s: unexpected error %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Errorf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// checkJob reports every field of got that differs from want.
func checkJob(t *testing.T, got, want *store.Job) {
	t.Helper()
	for _, d := range diffJob(got, want) {
		t.Errorf("job %q: %s", want.ID, d)
	}
}

func diffJob(got, want *store.Job) []string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s = %q, want %q", name, g, w))
		}
	}
	num := func(name string, g, w int) {
		if g != w {
			d = append(d, fmt.Sprintf("%s = %d, want %d", name, g, w))
		}
	}
	str("ID", got.ID, want.ID)
	str("Owner", got.Owner, want.Owner)
	str("Language", got.Language, want.Language)
	str("Version", got.Version, want.Version)
	str("Status", got.Status, want.Status)
	str("Verdict", got.Verdict, want.Verdict)
	str("Error", got.Error, want.Error)
	num("Attempts", got.Attempts, want.Attempts)
	num("MaxAttempts", got.MaxAttempts, want.MaxAttempts)
	str("Worker", got.Worker, want.Worker)
	str("WorkerIdentity", got.WorkerIdentity, want.WorkerIdentity)
	num("Released", got.Released, want.Released)
	num("Priority", got.Priority, want.Priority)
	if !maps.Equal(got.Labels, want.Labels) {
		d = append(d, fmt.Sprintf("Labels = %v, want %v", got.Labels, want.Labels))
	}
	str("Master", got.Master, want.Master)
	d = append(d, diffTime("LeaseUntil", got.LeaseUntil, want.LeaseUntil)...)
	d = append(d, diffTime("CreatedAt", got.CreatedAt, want.CreatedAt)...)
	d = append(d, diffTime("StartedAt", got.StartedAt, want.StartedAt)...)
	d = append(d, diffTime("FinishedAt", got.FinishedAt, want.FinishedAt)...)
	if !bytes.Equal(got.Request, want.Request) {
		d = append(d, fmt.Sprintf("Request = %q, want %q", got.Request, want.Request))
	}
	if !bytes.Equal(got.Result, want.Result) {
		d = append(d, fmt.Sprintf("Result = %q, want %q", got.Result, want.Result))
	}
	return d
}

// diffTime wants the same instant, and UTC for any non-zero time.
func diffTime(name string, got, want time.Time) []string {
	var d []string
	if !got.Equal(want) {
		d = append(d, fmt.Sprintf("%s = %v, want %v", name, got, want))
	}
	if !got.IsZero() && got.Location() != time.UTC {
		d = append(d, fmt.Sprintf("%s location = %v, want UTC", name, got.Location()))
	}
	return d
}

func checkTime(t *testing.T, name string, got, want time.Time) {
	t.Helper()
	for _, d := range diffTime(name, got, want) {
		t.Error(d)
	}
}

// ids lists the jobs' ids, for order comparisons.
func ids(jobs []*store.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

// jobID is the suite's id scheme: sortable, so that expectations read well.
func jobID(i int) string { return fmt.Sprintf("job-%04d", i) }
