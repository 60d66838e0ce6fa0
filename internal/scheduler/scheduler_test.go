package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func worker(id string, slots int, langs ...string) *Worker {
	w := &Worker{ID: id, Slots: slots, Available: true, Languages: map[string][]string{}, Labels: map[string]string{}}
	for _, l := range langs {
		w.Languages[l] = []string{"1.0.0"}
	}
	return w
}

func job(id, owner string, prio int, seq int64, lang string) *Job {
	return &Job{ID: id, Owner: owner, Priority: prio, Seq: seq, Req: Requirements{Language: lang}, Since: time.Unix(0, 0)}
}

func TestVersionMatches(t *testing.T) {
	for _, tc := range []struct {
		installed, requested string
		want                 bool
	}{
		{"3.11.2", "", true},
		{"3.11.2", "3.11.2", true},
		{"3.11.2", "3.11", true},
		{"3.11.2", "3", true},
		{"3.110.1", "3.11", false},
		{"3.11.2", "3.12", false},
		{"17.0.15", "17", true},
		{"1", "1.0", false},
	} {
		if got := VersionMatches(tc.installed, tc.requested); got != tc.want {
			t.Errorf("VersionMatches(%q, %q) = %v, want %v", tc.installed, tc.requested, got, tc.want)
		}
	}
}

func TestEligibility(t *testing.T) {
	base := func() *Worker {
		w := worker("w", 2, "python")
		w.Languages["python"] = []string{"3.11.2"}
		w.Labels["gpu"] = "yes"
		return w
	}
	opts := Options{MaxCPUPercent: 90, MaxMemoryPercent: 80}
	for _, tc := range []struct {
		name   string
		mutate func(*Worker)
		req    Requirements
		want   bool
	}{
		{"plain", nil, Requirements{Language: "python"}, true},
		{"other language", nil, Requirements{Language: "c"}, false},
		{"version prefix", nil, Requirements{Language: "python", Version: "3.11"}, true},
		{"version mismatch", nil, Requirements{Language: "python", Version: "3.12"}, false},
		{"label match", nil, Requirements{Language: "python", Labels: map[string]string{"gpu": "yes"}}, true},
		{"label mismatch", nil, Requirements{Language: "python", Labels: map[string]string{"gpu": "no"}}, false},
		{"label missing", nil, Requirements{Language: "python", Labels: map[string]string{"zone": "a"}}, false},
		{"full", func(w *Worker) { w.Running = 2 }, Requirements{Language: "python"}, false},
		{"draining", func(w *Worker) { w.Available = false }, Requirements{Language: "python"}, false},
		{"cpu over", func(w *Worker) { w.CPUPercent = 95 }, Requirements{Language: "python"}, false},
		{"cpu at threshold", func(w *Worker) { w.CPUPercent = 90 }, Requirements{Language: "python"}, true},
		{"memory over", func(w *Worker) { w.MemoryPercent = 81 }, Requirements{Language: "python"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := base()
			if tc.mutate != nil {
				tc.mutate(w)
			}
			if got := opts.eligible(w, tc.req); got != tc.want {
				t.Errorf("eligible = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScheduleRespectsSlots(t *testing.T) {
	q := NewQueue()
	for i := range 4 {
		q.Push(job(fmt.Sprint(i), "alice", 0, int64(i), "c"))
	}
	w := worker("w1", 3, "c")
	got := q.Schedule([]*Worker{w}, Options{})
	if len(got) != 3 {
		t.Fatalf("placed %d jobs on a 3-slot worker, want 3", len(got))
	}
	if q.Len() != 1 || !q.Has("3") {
		t.Fatalf("the fourth job should wait; queue has %d jobs", q.Len())
	}
	if got := q.Schedule([]*Worker{w}, Options{}); len(got) != 0 {
		t.Fatalf("placed %d jobs on a full worker", len(got))
	}
	w.Running--
	if got := q.Schedule([]*Worker{w}, Options{}); len(got) != 1 || got[0].Job.ID != "3" {
		t.Fatalf("freed slot should take job 3, got %v", got)
	}
}

func TestScheduleRoutesByLanguage(t *testing.T) {
	q := NewQueue()
	q.Push(job("py", "a", 0, 1, "python"))
	q.Push(job("c", "a", 0, 2, "c"))
	q.Push(job("java", "a", 0, 3, "java"))
	wp := worker("wp", 4, "python")
	wc := worker("wc", 4, "c")
	got := q.Schedule([]*Worker{wp, wc}, Options{})
	where := map[string]string{}
	for _, p := range got {
		where[p.Job.ID] = p.Worker.ID
	}
	if where["py"] != "wp" || where["c"] != "wc" {
		t.Fatalf("placements %v, want py→wp and c→wc", where)
	}
	if _, ok := where["java"]; ok || !q.Has("java") {
		t.Fatalf("java has no worker and must stay queued")
	}
}

func TestScheduleFairBetweenOwners(t *testing.T) {
	q := NewQueue()
	for i := range 1000 {
		q.Push(job(fmt.Sprint("a", i), "alice", 0, int64(i), "c"))
	}
	q.Push(job("b0", "bob", 0, 5000, "c"))
	q.Push(job("b1", "bob", 0, 5001, "c"))
	w := worker("w", 4, "c")
	got := q.Schedule([]*Worker{w}, Options{})
	owners := map[string]int{}
	for _, p := range got {
		owners[p.Job.Owner]++
	}
	if owners["bob"] != 2 || owners["alice"] != 2 {
		t.Fatalf("4 slots shared %v, want 2 each", owners)
	}
}

func TestSchedulePriorityInsideOwner(t *testing.T) {
	q := NewQueue()
	q.Push(job("old-low", "a", 0, 1, "c"))
	q.Push(job("new-high", "a", 5, 2, "c"))
	q.Push(job("older-high", "a", 5, 0, "c"))
	w := worker("w", 1, "c")
	var order []string
	for range 3 {
		got := q.Schedule([]*Worker{w}, Options{})
		if len(got) != 1 {
			t.Fatalf("want one placement, got %d", len(got))
		}
		order = append(order, got[0].Job.ID)
		w.Running = 0
	}
	want := []string{"older-high", "new-high", "old-low"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestScheduleHeadOfLineDoesNotBlockOwner(t *testing.T) {
	// An owner's best job may need a language nobody runs; its other jobs
	// must still run.
	q := NewQueue()
	q.Push(job("rust", "a", 9, 1, "rust"))
	q.Push(job("c", "a", 0, 2, "c"))
	got := q.Schedule([]*Worker{worker("w", 1, "c")}, Options{})
	if len(got) != 1 || got[0].Job.ID != "c" {
		t.Fatalf("got %v, want the c job placed", got)
	}
}

func TestSchedulePrefersLeastLoaded(t *testing.T) {
	busy := worker("busy", 4, "c")
	busy.Running = 2
	hot := worker("hot", 4, "c")
	hot.CPUPercent = 90
	idle := worker("idle", 4, "c")
	q := NewQueue()
	q.Push(job("j", "a", 0, 1, "c"))
	got := q.Schedule([]*Worker{busy, hot, idle}, Options{})
	if len(got) != 1 || got[0].Worker.ID != "idle" {
		t.Fatalf("got %v, want the idle worker", got)
	}
}

func TestScheduleSpreadsTiesAtRandom(t *testing.T) {
	counts := map[string]int{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		ws := []*Worker{worker("a", 2, "c"), worker("b", 2, "c"), worker("c", 2, "c")}
		q := NewQueue()
		q.Push(job(fmt.Sprint(i), "o", 0, 1, "c"))
		got := q.Schedule(ws, Options{Rand: r})
		counts[got[0].Worker.ID]++
	}
	for _, id := range []string{"a", "b", "c"} {
		if counts[id] < 60 {
			t.Fatalf("ties not spread evenly: %v", counts)
		}
	}
}

func TestScheduleBalancesAcrossWorkers(t *testing.T) {
	ws := []*Worker{worker("a", 1, "c"), worker("b", 1, "c"), worker("c", 1, "c")}
	q := NewQueue()
	for i := range 9 {
		q.Push(job(fmt.Sprint(i), "o", 0, int64(i), "c"))
	}
	got := q.Schedule(ws, Options{})
	used := map[string]bool{}
	for _, p := range got {
		used[p.Worker.ID] = true
	}
	if len(got) != 3 || len(used) != 3 {
		t.Fatalf("placed %d on %d workers, want 3 on 3", len(got), len(used))
	}
}

func TestRemoveAndPosition(t *testing.T) {
	q := NewQueue()
	q.Push(job("1", "a", 0, 1, "c"))
	q.Push(job("2", "a", 0, 2, "python"))
	q.Push(job("3", "a", 1, 3, "c"))
	q.Push(job("x", "b", 0, 0, "c"))
	if p := q.Position("3"); p != 1 {
		t.Errorf("position of high-priority job = %d, want 1", p)
	}
	if p := q.Position("2"); p != 3 {
		t.Errorf("position of job 2 = %d, want 3", p)
	}
	if !q.Remove("1") || q.Remove("1") {
		t.Fatal("Remove should succeed once")
	}
	if p := q.Position("2"); p != 2 {
		t.Errorf("position after remove = %d, want 2", p)
	}
	q.Remove("2")
	q.Remove("3")
	q.Remove("x")
	if q.Len() != 0 || len(q.ring) != 0 || len(q.owners) != 0 {
		t.Fatalf("queue not empty after removing all: %d jobs, ring %v", q.Len(), q.ring)
	}
}

func TestUnplaceable(t *testing.T) {
	q := NewQueue()
	now := time.Unix(100, 0)
	old := job("old", "a", 0, 1, "cobol")
	old.Since = now.Add(-time.Minute)
	fresh := job("fresh", "a", 0, 2, "cobol")
	fresh.Since = now
	busy := job("busy", "a", 0, 3, "c")
	busy.Since = now.Add(-time.Hour)
	q.Push(old)
	q.Push(fresh)
	q.Push(busy)
	full := worker("w", 1, "c")
	full.Running = 1 // busy, but capable: its jobs wait
	got := q.Unplaceable([]*Worker{full}, now, 30*time.Second)
	if len(got) != 1 || got[0].ID != "old" {
		t.Fatalf("got %v, want only the old cobol job", got)
	}
	if !q.Has("fresh") || !q.Has("busy") || q.Has("old") {
		t.Fatal("queue contents wrong after Unplaceable")
	}
}

// A job whose language a connected worker is still self-testing waits
// for it past the timeout, but is not placed there.
func TestTestingLanguageWaits(t *testing.T) {
	q := NewQueue()
	now := time.Unix(100, 0)
	j := job("go", "a", 0, 1, "go")
	j.Since = now.Add(-time.Hour)
	q.Push(j)
	w := worker("w", 1, "python")
	w.Testing = map[string][]string{"go": {"1.26.8"}}
	if p := q.Schedule([]*Worker{w}, Options{}); len(p) != 0 {
		t.Fatalf("placed %v on a worker still testing go", p)
	}
	if got := q.Unplaceable([]*Worker{w}, now, time.Second); len(got) != 0 {
		t.Fatalf("failed %v while a worker tests go", got)
	}
	w.Testing = nil // its self-test failed
	if got := q.Unplaceable([]*Worker{w}, now, time.Second); len(got) != 1 {
		t.Fatalf("got %v once nobody tests go, want the job", got)
	}
}

func BenchmarkScheduleManyOwners(b *testing.B) {
	ws := make([]*Worker, 20)
	for i := range ws {
		ws[i] = worker(fmt.Sprint(i), 4, "c", "python")
	}
	q := NewQueue()
	for i := range 10000 {
		q.Push(job(fmt.Sprint(i), fmt.Sprint("u", i%100), 0, int64(i), "c"))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, w := range ws {
			w.Running = 0
		}
		for _, p := range q.Schedule(ws, Options{}) {
			q.Push(p.Job)
		}
	}
}
