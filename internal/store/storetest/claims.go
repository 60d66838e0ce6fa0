package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// offer is a worker of the suite offering free slots for python 3.11.2 and
// c 12.2.0, with labels.
func offer(worker string, free int, labels map[string]string) store.Offer {
	return store.Offer{
		Worker:    ref(worker),
		Languages: map[string][]string{"python": {"3.11.2"}, "c": {"12.2.0"}},
		Labels:    labels,
		Free:      free,
	}
}

// claimReq is a claim by master "m1" at at(10) with leases to at(40).
func claimReq(offers ...store.Offer) store.ClaimRequest {
	return store.ClaimRequest{Master: "m1", Placer: store.NewOfferList(offers...), At: at(10), LeaseUntil: at(40)}
}

func mustClaim(t *testing.T, s store.Store, r store.ClaimRequest) []store.Claim {
	t.Helper()
	claims, err := s.ClaimJobs(t.Context(), r)
	if err != nil {
		t.Fatalf("ClaimJobs: %v", err)
	}
	return claims
}

func claimedIDs(claims []store.Claim) []string {
	out := make([]string, len(claims))
	for i, c := range claims {
		out[i] = c.Job.ID
	}
	return out
}

// queue creates jobs owner/0, owner/1, … n of them, one second apart
// from start, and returns their ids.
func queue(t *testing.T, s store.Store, owner string, n, start int) []string {
	t.Helper()
	var out []string
	for i := range n {
		id := fmt.Sprintf("%s-%02d", owner, i)
		j := newJob(id, owner, at(start+i))
		j.Version = ""
		mustCreate(t, s, j)
		out = append(out, id)
	}
	return out
}

func testClaimStartsJobs(t *testing.T, s store.Store) {
	want := newJob(jobID(1), "alice", at(0))
	want.Version = "3.11"
	mustCreate(t, s, want)
	claims := mustClaim(t, s, claimReq(offer("w1", 1, nil)))
	if len(claims) != 1 || claims[0].Worker != ref("w1") {
		t.Fatalf("claims %+v, want job-0001 on w1", claims)
	}
	want.Status, want.Attempts, want.Worker, want.WorkerIdentity = store.StatusRunning, 1, "w1", ref("w1").Identity
	want.Master, want.LeaseUntil, want.StartedAt = "m1", at(40), at(10)
	checkJob(t, claims[0].Job, want)
	checkJob(t, mustGet(t, s, want.ID), want)
	if n, err := s.QueuedByOwner(t.Context(), "alice"); err != nil || n != 0 {
		t.Errorf("QueuedByOwner after the claim = %d, %v; want 0", n, err)
	}

	// Nothing left: a second claim takes nothing, and the attempt is
	// held like one StartAttempt began: the worker's result is taken.
	if claims := mustClaim(t, s, claimReq(offer("w2", 4, nil))); len(claims) != 0 {
		t.Fatalf("second claim took %v", claimedIDs(claims))
	}
	mustFinish(t, s, want.ID, 1, "w1", store.Finish{Status: store.StatusDone, Verdict: "ok", At: at(12)})

	// A requeued job is claimed for its next attempt; StartedAt stays.
	again := newJob(jobID(2), "alice", at(1))
	mustCreate(t, s, again)
	mustStart(t, s, again.ID, 1, "w1", at(5))
	if err := s.RequeueAttempt(t.Context(), again.ID, 1, ref("w1"), store.Requeue{Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	again.Version = "" // python ">=3.10" matches no installed version
	if _, err := s.ClaimJobs(t.Context(), claimReq(offer("w2", 1, nil))); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, again.ID)
	if got.Status != store.StatusQueued {
		t.Fatalf("job asking python >=3.10 was claimed for a worker with 3.11.2 (versions match by prefix): %+v", got)
	}
}

// testClaimJob: one named job claimed as ClaimJobs claims, once.
func testClaimJob(t *testing.T, s store.Store) {
	want := newJob(jobID(1), "alice", at(0))
	mustCreate(t, s, want)
	got, err := s.ClaimJob(t.Context(), want.ID, "m1", ref("w1"), at(10), at(40))
	if err != nil {
		t.Fatalf("ClaimJob: %v", err)
	}
	want.Status, want.Attempts, want.Worker, want.WorkerIdentity = store.StatusRunning, 1, "w1", ref("w1").Identity
	want.Master, want.LeaseUntil, want.StartedAt = "m1", at(40), at(10)
	checkJob(t, got, want)
	checkJob(t, mustGet(t, s, want.ID), want)
	if n, err := s.QueuedByOwner(t.Context(), "alice"); err != nil || n != 0 {
		t.Errorf("QueuedByOwner after the claim = %d, %v; want 0", n, err)
	}
	if _, err := s.ClaimJob(t.Context(), want.ID, "m2", ref("w2"), at(11), at(41)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second ClaimJob: %v, want ErrConflict", err)
	}
	if _, err := s.ClaimJob(t.Context(), "no-such-job", "m1", ref("w1"), at(11), at(41)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClaimJob of a missing job: %v, want ErrNotFound", err)
	}
	// Its lease expires like a claimed one's.
	rescued, err := s.RescueExpired(t.Context(), at(41), "lost", 10)
	if err != nil || len(rescued) != 1 || rescued[0].ID != want.ID {
		t.Fatalf("RescueExpired: %v, %v", rescued, err)
	}
}

func testClaimPlacement(t *testing.T, s store.Store) {
	job := func(id, lang, version string, labels map[string]string, sec int) {
		j := newJob(id, "alice", at(sec))
		j.Language, j.Version, j.Labels = lang, version, labels
		mustCreate(t, s, j)
	}
	job("py311", "python", "3.11", nil, 0)
	job("py312", "python", "3.12", nil, 1)                  // no offer runs it
	job("c-gpu", "c", "", map[string]string{"gpu": "1"}, 2) // only w2 has the label
	job("java", "java", "", nil, 3)                         // no offer runs it
	job("c-any", "c", "12", nil, 4)
	job("py-any", "python", "", nil, 5)

	// w1 is offered first (the master's preferred, least loaded worker):
	// each job goes to the offer that fits it with the smallest share of
	// its slots in use, ties to the earlier offer. c-any finds w1 half
	// used and w2 a third used; py-any then finds w1 the less used.
	claims := mustClaim(t, s, claimReq(offer("w1", 2, nil), offer("w2", 3, map[string]string{"gpu": "1"})))
	got := map[string]string{}
	for _, c := range claims {
		got[c.Job.ID] = c.Worker.Name
		if c.Job.Worker != got[c.Job.ID] {
			t.Errorf("%s: claim on %s but stored on worker %q", c.Job.ID, c.Worker.Name, c.Job.Worker)
		}
	}
	want := map[string]string{"py311": "w1", "c-gpu": "w2", "c-any": "w2", "py-any": "w1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("placements %v, want %v", got, want)
	}
	for _, id := range []string{"py312", "java"} {
		if j := mustGet(t, s, id); j.Status != store.StatusQueued {
			t.Errorf("%s: status %q, want it left queued", id, j.Status)
		}
	}

	// Limit, and offers with no free slot.
	job("more-1", "python", "", nil, 6)
	job("more-2", "python", "", nil, 7)
	r := claimReq(offer("w3", 5, nil))
	r.Limit = 1
	if claims := mustClaim(t, s, r); len(claims) != 1 || claims[0].Job.ID != "more-1" {
		t.Errorf("claim with Limit 1: %v, want [more-1]", claimedIDs(claims))
	}
	if claims := mustClaim(t, s, claimReq(offer("w3", 0, nil))); len(claims) != 0 {
		t.Errorf("claim with no free slot took %v", claimedIDs(claims))
	}
	if claims := mustClaim(t, s, claimReq()); len(claims) != 0 {
		t.Errorf("claim with no offer took %v", claimedIDs(claims))
	}
}

func testClaimFairOrder(t *testing.T, s store.Store) {
	alice := queue(t, s, "alice", 6, 0) // alice queues first, many
	bob := queue(t, s, "bob", 1, 10)
	carol := queue(t, s, "carol", 2, 20)
	// A priority job of alice's, queued last, comes first among hers.
	urgent := newJob("alice-urgent", "alice", at(30))
	urgent.Version, urgent.Priority = "", 5
	mustCreate(t, s, urgent)

	// Ranks: each owner's k-th job at k; ties by age, so alice's
	// urgent job, the newest, after the others' first ones.
	claims := mustClaim(t, s, claimReq(offer("w1", 4, nil)))
	want := []string{bob[0], carol[0], "alice-urgent", alice[0]}
	if got := claimedIDs(claims); !slices.Equal(got, want) {
		t.Errorf("first claim %v, want %v", got, want)
	}
	// Now alice runs 2, carol 1, bob 1 and has nothing left: carol's
	// next (rank 1) before alice's (rank 2).
	claims = mustClaim(t, s, claimReq(offer("w2", 2, nil)))
	want = []string{carol[1], alice[1]}
	if got := claimedIDs(claims); !slices.Equal(got, want) {
		t.Errorf("second claim %v, want %v", got, want)
	}
	for _, n := range []struct {
		owner string
		want  int
	}{{"alice", 4}, {"bob", 0}, {"carol", 0}, {"nobody", 0}} {
		if got, err := s.QueuedByOwner(t.Context(), n.owner); err != nil || got != n.want {
			t.Errorf("QueuedByOwner(%s) = %d, %v; want %d", n.owner, got, err, n.want)
		}
	}
}

// testClaimRoundRobin: with one slot freeing at a time, nobody runs
// anything at each claim; the owner served longest ago goes first, so a
// flood of one owner's jobs cannot starve another's single one.
func testClaimRoundRobin(t *testing.T, s store.Store) {
	alice := queue(t, s, "alice", 4, 0)
	var got []string
	claimOne := func() {
		t.Helper()
		claims := mustClaim(t, s, claimReq(offer("w1", 1, nil)))
		if len(claims) != 1 {
			t.Fatalf("claimed %v, want one job", claimedIDs(claims))
		}
		j := claims[0].Job
		got = append(got, j.ID)
		mustFinish(t, s, j.ID, j.Attempts, "w1", store.Finish{Status: store.StatusDone, At: at(40)})
	}
	claimOne() // alice's first, before bob submits
	bob := queue(t, s, "bob", 2, 10)
	for range 5 {
		claimOne()
	}
	want := []string{alice[0], bob[0], alice[1], bob[1], alice[2], alice[3]}
	if !slices.Equal(got, want) {
		t.Errorf("claims %v, want %v", got, want)
	}
}

func testWorkerDrain(t *testing.T, s store.Store) {
	ctx := t.Context()
	w := &store.Worker{Name: "w1", Master: "m1", Status: store.WorkerUp, LastHeartbeat: at(1)}
	if err := s.UpsertWorkers(ctx, []*store.Worker{w}); err != nil {
		t.Fatal(err)
	}
	drained := func() bool {
		t.Helper()
		ws, err := s.ListWorkers(ctx)
		if err != nil || len(ws) != 1 {
			t.Fatalf("ListWorkers: %v, %v", ws, err)
		}
		return ws[0].AdminDrain
	}
	if drained() {
		t.Fatal("a new row is drained")
	}
	// Asked through another master: the row keeps it across the holding
	// master's own writes, until undrained.
	if err := s.SetWorkerDrain(ctx, "w1", true); err != nil {
		t.Fatal(err)
	}
	w.LastHeartbeat = at(2)
	if err := s.UpsertWorkers(ctx, []*store.Worker{w}); err != nil {
		t.Fatal(err)
	}
	if !drained() {
		t.Fatal("the drain did not survive the holding master's write")
	}
	if err := s.SetWorkerDrain(ctx, "w1", false); err != nil || drained() {
		t.Fatalf("undrain: %v, drained %v", err, drained())
	}
	wantErr(t, "SetWorkerDrain of an unknown worker", s.SetWorkerDrain(ctx, "nobody", true), store.ErrNotFound)
}

func testHeldBy(t *testing.T, s store.Store) {
	queued := queue(t, s, "alice", 3, 0)
	mustClaim(t, s, claimReq(offer("w1", 2, nil))) // m1 holds the first two
	held := func(master string) string {
		t.Helper()
		h, err := s.HeldBy(t.Context(), master)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(h)
	}
	if got, want := held("m1"), fmt.Sprintf("map[%s:1 %s:1]", queued[0], queued[1]); got != want {
		t.Errorf("HeldBy(m1) = %s, want %s", got, want)
	}
	// Finished, or moved to another master by a renewal: no longer m1's.
	mustFinish(t, s, queued[0], 1, "w1", store.Finish{Status: store.StatusCancelled, At: at(11)})
	if got, want := held("m1"), fmt.Sprintf("map[%s:1]", queued[1]); got != want {
		t.Errorf("after a cancel: HeldBy(m1) = %s, want %s", got, want)
	}
	if _, err := s.RenewLeases(t.Context(), "m2", []store.WorkerRef{ref("w1")}, at(60)); err != nil {
		t.Fatal(err)
	}
	if got := held("m1"); got != "map[]" {
		t.Errorf("after the move: HeldBy(m1) = %s, want none", got)
	}
	if got, want := held("m2"), fmt.Sprintf("map[%s:1]", queued[1]); got != want {
		t.Errorf("HeldBy(m2) = %s, want %s", got, want)
	}
	// RunningOn: by worker and identity, whichever master holds it.
	on := func(w store.WorkerRef) string {
		t.Helper()
		r, err := s.RunningOn(t.Context(), w)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(r)
	}
	if got, want := on(ref("w1")), fmt.Sprintf("map[%s:1]", queued[1]); got != want {
		t.Errorf("RunningOn(w1) = %s, want %s", got, want)
	}
	if got := on(store.WorkerRef{Name: "w1", Identity: "another lineage"}); got != "map[]" {
		t.Errorf("RunningOn(w1 under another identity) = %s, want none", got)
	}
}

func testLeases(t *testing.T, s store.Store) {
	queued := queue(t, s, "alice", 3, 0)
	// w1 takes two, w2 one; an attempt StartAttempt began has no lease.
	mustClaim(t, s, claimReq(offer("w1", 2, nil)))
	mustClaim(t, s, claimReq(offer("w2", 1, nil)))
	other := newJob("unleased", "alice", at(5))
	mustCreate(t, s, other)
	mustStart(t, s, other.ID, 1, "w1", at(6))
	if got := mustGet(t, s, other.ID); !got.LeaseUntil.IsZero() || got.Master != "" {
		t.Errorf("StartAttempt: lease %v master %q, want none", got.LeaseUntil, got.Master)
	}

	// w1 reconnected to m2: its heartbeat there renews its attempts
	// and moves them to m2; an impostor identity renews nothing.
	n, err := s.RenewLeases(t.Context(), "m2", []store.WorkerRef{ref("w1"), {Name: "w2", Identity: "forged"}}, at(70))
	if err != nil || n != 3 {
		// w1 holds two claimed attempts and the unleased one.
		t.Fatalf("RenewLeases = %d, %v; want 3", n, err)
	}
	for _, id := range queued[:2] {
		if j := mustGet(t, s, id); j.Master != "m2" || !j.LeaseUntil.Equal(at(70)) {
			t.Errorf("%s after renewal: master %q lease %v, want m2 %v", id, j.Master, j.LeaseUntil, at(70))
		}
	}

	// At at(50) only w2's lease (at(40)) has expired: rescued once.
	rescued, err := s.RescueExpired(t.Context(), at(50), "worker lost", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(rescued); !slices.Equal(got, queued[2:]) {
		t.Fatalf("RescueExpired at 50: %v, want %v", got, queued[2:])
	}
	r := rescued[0]
	if r.Status != store.StatusQueued || r.Error != "worker lost" || r.Attempts != 1 || !r.LeaseUntil.IsZero() {
		t.Errorf("rescued job: status %q error %q attempts %d lease %v; want queued, the reason, 1, none",
			r.Status, r.Error, r.Attempts, r.LeaseUntil)
	}
	checkTime(t, "QueuedAt of the rescued job", r.QueuedAt, at(50))
	checkJob(t, mustGet(t, s, r.ID), r)
	if again, err := s.RescueExpired(t.Context(), at(50), "worker lost", 10); err != nil || len(again) != 0 {
		t.Errorf("second RescueExpired: %v, %v; want nothing", ids(again), err)
	}
	// The late worker's result is refused: the attempt is no longer its.
	wantErr(t, "w2's result after the rescue", finishErr(s.FinishAttempt(t.Context(), r.ID, 1, ref("w2"),
		store.Finish{Status: store.StatusDone, At: at(51)})), store.ErrConflict)
	if n, _ := s.QueuedByOwner(t.Context(), "alice"); n != 1 {
		t.Errorf("QueuedByOwner after the rescue = %d, want 1", n)
	}

	// Much later w1's leases expire too; limit bounds one call.
	rescued, err = s.RescueExpired(t.Context(), at(100), "worker lost", 1)
	if err != nil || len(rescued) != 1 {
		t.Fatalf("RescueExpired limit 1: %v, %v", ids(rescued), err)
	}
	rescued, err = s.RescueExpired(t.Context(), at(100), "worker lost", 10)
	if err != nil || len(rescued) != 2 {
		// The two claimed attempts, and the one StartAttempt began,
		// since the renewal gave it a lease.
		t.Fatalf("RescueExpired: %v, %v; want the other two", ids(rescued), err)
	}
}

func testRescueGivesUp(t *testing.T, s store.Store) {
	last := newJob("last-chance", "alice", at(0))
	last.MaxAttempts, last.Version = 1, ""
	mustCreate(t, s, last)
	// Two attempts of which one was given back unrun (a release): one
	// counts, so with two allowed the job goes back to the queue.
	released := newJob("released", "alice", at(1))
	released.MaxAttempts, released.Version = 2, ""
	mustCreate(t, s, released)
	mustStart(t, s, released.ID, 1, "w1", at(2))
	if err := s.RequeueAttempt(t.Context(), released.ID, 1, ref("w1"), store.Requeue{Reason: "shutting down", Released: true}); err != nil {
		t.Fatal(err)
	}
	if claims := mustClaim(t, s, claimReq(offer("w1", 2, nil))); len(claims) != 2 {
		t.Fatalf("claimed %v", claimedIDs(claims))
	}
	rescued, err := s.RescueExpired(t.Context(), at(41), "worker lost", 10)
	if err != nil || len(rescued) != 2 {
		t.Fatalf("RescueExpired: %v, %v", ids(rescued), err)
	}
	got := map[string]*store.Job{}
	for _, j := range rescued {
		got[j.ID] = j
	}
	if j := got["last-chance"]; j.Status != store.StatusFailed || j.Error != "worker lost; gave up after 1 attempts" || !j.FinishedAt.Equal(at(41)) {
		t.Errorf("last-chance: status %q error %q finished %v; want failed, gave up, %v", j.Status, j.Error, j.FinishedAt, at(41))
	}
	if j := got["released"]; j.Status != store.StatusQueued || j.Attempts != 2 || j.Released != 1 {
		t.Errorf("released: status %q attempts %d released %d; want queued 2 1", j.Status, j.Attempts, j.Released)
	}
}

func testQuota(t *testing.T, s store.Store) {
	create := func(id, owner string, maxQueued int) error {
		j := newJob(id, owner, at(0))
		return s.CreateJob(t.Context(), j, maxQueued)
	}
	for i := range 2 {
		if err := create(jobID(i), "alice", 2); err != nil {
			t.Fatalf("job %d of 2: %v", i, err)
		}
	}
	wantErr(t, "third queued job", create("over", "alice", 2), store.ErrQuota)
	if _, err := s.GetJob(t.Context(), "over"); err == nil {
		t.Error("the refused job was stored")
	}
	wantErr(t, "another owner", create("bob-1", "bob", 2), nil)
	wantErr(t, "no quota", create("unbounded", "alice", 0), nil)

	// A job leaving the queue frees a place; one coming back takes it.
	mustStart(t, s, jobID(0), 1, "w1", at(1))
	if err := s.FinishQueued(t.Context(), jobID(1), store.Finish{Status: store.StatusCancelled, At: at(2)}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.QueuedByOwner(t.Context(), "alice"); n != 1 {
		t.Errorf("QueuedByOwner = %d, want 1 (the unbounded job)", n)
	}
	wantErr(t, "after two left the queue", create("again", "alice", 2), nil)
	if err := s.RequeueAttempt(t.Context(), jobID(0), 1, ref("w1"), store.Requeue{Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.QueuedByOwner(t.Context(), "alice"); n != 3 {
		t.Errorf("QueuedByOwner after a requeue = %d, want 3", n)
	}
	wantErr(t, "over again", create("over-again", "alice", 3), store.ErrQuota)
}

func testSeq(t *testing.T, s store.Store) {
	var last int64
	for i := range 5 {
		created := newJob(jobID(i), "alice", at(i))
		mustCreate(t, s, created)
		j := mustGet(t, s, jobID(i))
		if j.Seq <= last {
			t.Errorf("job %d: Seq %d after %d, want increasing", i, j.Seq, last)
		}
		if created.Seq != j.Seq || !created.QueuedAt.Equal(at(i)) {
			t.Errorf("job %d: CreateJob set Seq %d QueuedAt %v, stored %d %v", i, created.Seq, created.QueuedAt, j.Seq, j.QueuedAt)
		}
		last = j.Seq
	}
}

func testWorkers(t *testing.T, s store.Store) {
	ctx := t.Context()
	w1 := &store.Worker{
		Name: "w1", Identity: "lineage-w1", Master: "m1", Address: "10.0.0.7:53122", Status: store.WorkerUp,
		Languages: map[string][]string{"python": {"3.11.2"}}, Labels: map[string]string{"gpu": "1"},
		Slots: 4, Running: 1, CPUPercent: 12.5, MemoryPercent: 31, JobsDone: 120, InfraFailures: 2,
		HealthReason: "", Sandbox: "cgroup-v2", Version: "1.2.3", ConnectedAt: at(1), LastHeartbeat: at(5),
		JobsFailed: 3, FailureRate: 0.025, LastError: "the sandbox failed", LastErrorAt: at(4),
	}
	w2 := &store.Worker{Name: "w2", Master: "m2", Status: store.WorkerDraining, LastHeartbeat: at(6)}
	if err := s.UpsertWorkers(ctx, []*store.Worker{w2, w1}); err != nil {
		t.Fatal(err)
	}
	list := func() map[string]*store.Worker {
		t.Helper()
		ws, err := s.ListWorkers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*store.Worker{}
		var names []string
		for _, w := range ws {
			out[w.Name] = w
			names = append(names, w.Name)
		}
		if !slices.IsSorted(names) {
			t.Errorf("ListWorkers order %v, want by name", names)
		}
		return out
	}
	got := list()
	if len(got) != 2 {
		t.Fatalf("ListWorkers: %d rows, want 2", len(got))
	}
	g := got["w1"]
	if fmt.Sprint(g.Languages, g.Labels, g.Slots, g.Running, g.CPUPercent, g.MemoryPercent, g.JobsDone, g.InfraFailures,
		g.Identity, g.Master, g.Address, g.Status, g.Sandbox, g.Version, g.JobsFailed, g.FailureRate, g.LastError) !=
		fmt.Sprint(w1.Languages, w1.Labels, w1.Slots, w1.Running, w1.CPUPercent, w1.MemoryPercent, w1.JobsDone, w1.InfraFailures,
			w1.Identity, w1.Master, w1.Address, w1.Status, w1.Sandbox, w1.Version, w1.JobsFailed, w1.FailureRate, w1.LastError) {
		t.Errorf("w1 round trip:\n got %+v\nwant %+v", g, w1)
	}
	checkTime(t, "ConnectedAt", g.ConnectedAt, at(1))
	checkTime(t, "LastHeartbeat", g.LastHeartbeat, at(5))
	checkTime(t, "LostAt", g.LostAt, time.Time{})
	checkTime(t, "LastErrorAt", g.LastErrorAt, at(4))

	// w1 reconnected to m2; m1, which has not noticed yet, then marks it
	// lost: m2's row stays. m2 itself may mark it lost.
	moved := *w1
	moved.Master, moved.LastHeartbeat = "m2", at(7)
	stale := *w1
	stale.Status, stale.LostAt = store.WorkerLost, at(8)
	if err := s.UpsertWorkers(ctx, []*store.Worker{&moved}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertWorkers(ctx, []*store.Worker{&stale}); err != nil {
		t.Fatal(err)
	}
	if g := list()["w1"]; g.Master != "m2" || g.Status != store.WorkerUp {
		t.Errorf("after m1's stale lost: master %q status %q, want m2 up", g.Master, g.Status)
	}
	lost := moved
	lost.Status, lost.LostAt = store.WorkerLost, at(9)
	if err := s.UpsertWorkers(ctx, []*store.Worker{&lost}); err != nil {
		t.Fatal(err)
	}
	if g := list()["w1"]; g.Status != store.WorkerLost {
		t.Errorf("after m2 marked it lost: status %q", g.Status)
	}

	// Only lost rows are deleted.
	if n, err := s.DeleteWorkers(ctx, []string{"w1", "w2", "nobody"}); err != nil || n != 1 {
		t.Errorf("DeleteWorkers = %d, %v; want 1", n, err)
	}
	if got := list(); len(got) != 1 || got["w2"] == nil {
		t.Errorf("after DeleteWorkers: %v, want w2 alone", got)
	}
}

func testQueuedBefore(t *testing.T, s store.Store) {
	queued := queue(t, s, "alice", 3, 0) // queued at 0, 1, 2
	got, err := s.QueuedBefore(t.Context(), at(2), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), queued[:2]) {
		t.Errorf("QueuedBefore(2) = %v, want %v", ids(got), queued[:2])
	}
	checkTime(t, "QueuedAt", got[0].QueuedAt, at(0))
	// A job back in the queue waits from its requeue; a running one is
	// not waiting.
	mustStart(t, s, queued[0], 1, "w1", at(3))
	if err := s.RequeueAttempt(t.Context(), queued[0], 1, ref("w1"), store.Requeue{Reason: "lost", At: at(10)}); err != nil {
		t.Fatal(err)
	}
	mustStart(t, s, queued[1], 1, "w1", at(3))
	if got, err := s.QueuedBefore(t.Context(), at(5), 0, 10); err != nil || !slices.Equal(ids(got), queued[2:]) {
		t.Errorf("QueuedBefore(5) = %v, %v; want %v", ids(got), err, queued[2:])
	}
	first, err := s.QueuedBefore(t.Context(), at(11), 0, 1)
	if err != nil || !slices.Equal(ids(first), queued[:1]) {
		t.Fatalf("QueuedBefore(11, limit 1) = %v, %v; want %v", ids(first), err, queued[:1])
	}
	// The next page starts after the last one's Seq.
	if got, err := s.QueuedBefore(t.Context(), at(11), first[0].Seq, 10); err != nil || !slices.Equal(ids(got), queued[2:]) {
		t.Errorf("QueuedBefore(11, after %d) = %v, %v; want %v", first[0].Seq, ids(got), err, queued[2:])
	}
}

func testQueuePosition(t *testing.T, s store.Store) {
	alice := queue(t, s, "alice", 3, 0)
	bob := queue(t, s, "bob", 1, 3)
	urgent := newJob("alice-urgent", "alice", at(4))
	urgent.Priority = 5
	mustCreate(t, s, urgent)
	pos := func(id string) int {
		t.Helper()
		n, err := s.QueuePosition(t.Context(), id)
		if err != nil {
			t.Fatalf("QueuePosition(%q): %v", id, err)
		}
		return n
	}
	// Inside an owner: priority first, then age; another owner's jobs
	// do not count.
	want := map[string]int{"alice-urgent": 1, alice[0]: 2, alice[1]: 3, alice[2]: 4, bob[0]: 1}
	for id, w := range want {
		if got := pos(id); got != w {
			t.Errorf("QueuePosition(%s) = %d, want %d", id, got, w)
		}
	}
	// A job that runs is not queued, and moves the ones behind it up.
	mustStart(t, s, alice[0], 1, "w1", at(5))
	if got := pos(alice[0]); got != 0 {
		t.Errorf("running job: position %d, want 0", got)
	}
	if got := pos(alice[1]); got != 2 {
		t.Errorf("after the start: position %d, want 2", got)
	}
	if _, err := s.QueuePosition(t.Context(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("QueuePosition(unknown) = %v, want ErrNotFound", err)
	}
}

func testCountActive(t *testing.T, s store.Store) {
	count := func() (int, int) {
		t.Helper()
		q, r, err := s.CountActive(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return q, r
	}
	if q, r := count(); q != 0 || r != 0 {
		t.Errorf("empty store: %d queued, %d running", q, r)
	}
	ids := queue(t, s, "alice", 3, 0)
	queue(t, s, "bob", 2, 3)
	mustStart(t, s, ids[0], 1, "w1", at(5))
	mustStart(t, s, ids[1], 1, "w1", at(5))
	mustFinish(t, s, ids[1], 1, "w1", store.Finish{Status: store.StatusDone, At: at(6)})
	if q, r := count(); q != 3 || r != 1 {
		t.Errorf("CountActive = %d queued, %d running; want 3, 1", q, r)
	}
	queued, running, err := s.CountActiveByOwner(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(queued) != "map[alice:1 bob:2]" || fmt.Sprint(running) != "map[alice:1]" {
		t.Errorf("CountActiveByOwner = %v queued, %v running; want alice 1 and bob 2, alice 1", queued, running)
	}
}
