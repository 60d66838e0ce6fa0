package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func newIndex(opts Options, ws ...*Worker) *Index {
	x := NewIndex(opts)
	for _, w := range ws {
		x.Put(*w)
	}
	return x
}

func TestIndexTakesOnlyWorkersThatTakeWork(t *testing.T) {
	opts := Options{MaxCPUPercent: 90, MaxMemoryPercent: 80}
	for _, tc := range []struct {
		name   string
		mutate func(*Worker)
		want   bool
	}{
		{"idle", nil, true},
		{"one slot left", func(w *Worker) { w.Running = 1 }, true},
		{"full", func(w *Worker) { w.Running = 2 }, false},
		{"draining, unhealthy or lost", func(w *Worker) { w.Available = false }, false},
		{"cpu over", func(w *Worker) { w.CPUPercent = 95 }, false},
		{"cpu at threshold", func(w *Worker) { w.CPUPercent = 90 }, true},
		{"memory over", func(w *Worker) { w.MemoryPercent = 81 }, false},
	} {
		w := worker("w", 2, "python")
		if tc.mutate != nil {
			tc.mutate(w)
		}
		x := newIndex(opts, w)
		_, got := x.Take(Requirements{Language: "python"})
		if got != tc.want {
			t.Errorf("%s: taken = %v, want %v", tc.name, got, tc.want)
		}
		if tc.want != (x.Free() > 0 || got) || tc.want != (len(x.Languages()) > 0 || got) {
			t.Errorf("%s: free %d, languages %v before the take", tc.name, x.Free(), x.Languages())
		}
	}
}

func TestIndexChoosesTheBestThatFits(t *testing.T) {
	busy := worker("busy", 4, "c")
	busy.Running = 2
	hot := worker("hot", 4, "c")
	hot.CPUPercent = 90
	idle := worker("idle", 4, "c")
	py311 := worker("py311", 2, "python")
	py311.Languages["python"] = []string{"3.11.2"}
	py312 := worker("py312", 2, "python")
	py312.Languages["python"] = []string{"3.12.1", "3.13.0"}
	py312.Running = 1
	gpu := worker("gpu", 4, "python", "c")
	gpu.Labels = map[string]string{"gpu": "1", "zone": "a"}
	gpu.Running = 3
	zoneB := worker("zone-b", 4, "python")
	zoneB.Labels = map[string]string{"zone": "b"}
	zoneB.Running = 3
	all := []*Worker{busy, hot, idle, py311, py312, gpu, zoneB}
	for _, tc := range []struct {
		name string
		req  Requirements
		want string // "" for none
	}{
		{"least loaded first: idle, then CPU", Requirements{Language: "c"}, "idle"},
		{"the share of slots in use first", Requirements{Language: "python"}, "py311"},
		{"a version prefix", Requirements{Language: "python", Version: "3.12"}, "py312"},
		{"a second version of one worker", Requirements{Language: "python", Version: "3.13"}, "py312"},
		{"a whole version", Requirements{Language: "python", Version: "3.11.2"}, "py311"},
		{"no such version", Requirements{Language: "python", Version: "3.1"}, ""},
		{"a label", Requirements{Language: "c", Labels: map[string]string{"gpu": "1"}}, "gpu"},
		{"two labels", Requirements{Language: "python", Labels: map[string]string{"gpu": "1", "zone": "a"}}, "gpu"},
		{"a label of another worker's language", Requirements{Language: "c", Labels: map[string]string{"zone": "b"}}, ""},
		{"a label and a version", Requirements{Language: "python", Version: "3.12", Labels: map[string]string{"zone": "a"}}, ""},
		{"no such label", Requirements{Language: "c", Labels: map[string]string{"gpu": "2"}}, ""},
		{"no such language", Requirements{Language: "cobol"}, ""},
	} {
		x := newIndex(Options{}, all...)
		fits := x.Fits(tc.req)
		got, ok := x.Take(tc.req)
		if got != tc.want || ok != (tc.want != "") || fits != ok {
			t.Errorf("%s: Take = %q, %v (Fits %v); want %q", tc.name, got, ok, fits, tc.want)
		}
	}
}

func TestIndexSpreadsAndHolds(t *testing.T) {
	x := newIndex(Options{}, worker("a", 2, "c"), worker("b", 2, "c"))
	req := Requirements{Language: "c"}
	var got []string
	for range 4 {
		id, ok := x.Take(req)
		if !ok {
			t.Fatalf("Take %d: none; index holds %d free", len(got), x.Free())
		}
		got = append(got, id)
	}
	slices.Sort(got[:2])
	slices.Sort(got[2:])
	if !slices.Equal(got, []string{"a", "b", "a", "b"}) {
		t.Fatalf("took %v: each worker should take one before either takes a second", got)
	}
	if _, ok := x.Take(req); ok || x.Free() != 0 || len(x.Languages()) != 0 {
		t.Fatalf("every slot held: Take ok %v, Free %d, Languages %v", ok, x.Free(), x.Languages())
	}
	// The master records one attempt on a and releases its hold; the
	// rest of the claim is given back.
	x.Release("a")
	x.Update("a", 1, true, 0, 0)
	x.ReleaseAll()
	if x.Free() != 3 {
		t.Fatalf("Free = %d after one attempt recorded and the holds released, want 3", x.Free())
	}
	if id, _ := x.Take(req); id != "b" {
		t.Fatalf("Take = %s, want the idle b", id)
	}
}

func TestIndexShufflesTies(t *testing.T) {
	counts := map[string]int{}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		x := newIndex(Options{Rand: r}, worker("a", 2, "c"), worker("b", 2, "c"), worker("c", 2, "c"))
		id, _ := x.Take(Requirements{Language: "c"})
		counts[id]++
	}
	for _, id := range []string{"a", "b", "c"} {
		if counts[id] < 60 {
			t.Fatalf("ties not spread evenly: %v", counts)
		}
	}
}

func TestIndexFollowsChanges(t *testing.T) {
	a, b := worker("a", 2, "c"), worker("b", 2, "c")
	x := newIndex(Options{}, a, b)
	x.Update("a", 0, false, 0, 0) // drained
	if id, _ := x.Take(Requirements{Language: "c"}); id != "b" {
		t.Fatalf("Take = %s with a drained, want b", id)
	}
	x.Remove("b")
	if _, ok := x.Take(Requirements{Language: "c"}); ok {
		t.Fatal("Take found a worker with a drained and b removed")
	}
	a.Languages = map[string][]string{"go": {"1.26.8"}}
	a.Available = true
	x.Put(*a) // it announced other languages
	if x.Fits(Requirements{Language: "c"}) || !x.Fits(Requirements{Language: "go", Version: "1.26"}) {
		t.Fatalf("languages after Put: %v", x.Languages())
	}
	if got := x.Languages(); !slices.Equal(got, []string{"go"}) {
		t.Fatalf("Languages = %v, want [go]", got)
	}
}

// The index agrees with a look at every worker, through random changes:
// the worker it takes is one the look finds best, its free slots and
// languages are those of the workers taking work.
func TestIndexAgreesWithAScan(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	langs := []string{"c", "python", "go"}
	versions := []string{"1.0.0", "1.2.3", "2.0"}
	zones := []string{"a", "b", "c"}
	x := NewIndex(Options{MaxMemoryPercent: 90, Rand: r})
	var ws []*Worker
	held := map[string]int{}
	for i := range 60 {
		w := &Worker{ID: fmt.Sprint("w", i), Slots: 1 + r.IntN(4), Available: true,
			Languages: map[string][]string{}, Labels: map[string]string{"zone": zones[r.IntN(3)]}}
		for _, l := range langs {
			if r.IntN(2) == 0 {
				w.Languages[l] = []string{versions[r.IntN(3)]}
			}
		}
		ws = append(ws, w)
		x.Put(*w)
	}
	takes := func(w *Worker) bool {
		c := *w
		c.Running += held[w.ID]
		o := Options{MaxMemoryPercent: 90}
		return o.offered(&c)
	}
	for step := range 3000 {
		w := ws[r.IntN(len(ws))]
		switch r.IntN(4) {
		case 0: // an attempt starts or ends, the load moves
			w.Running = r.IntN(w.Slots + 1)
			w.MemoryPercent = float64(r.IntN(100))
			w.CPUPercent = float64(r.IntN(100))
			x.Update(w.ID, w.Running, w.Available, w.CPUPercent, w.MemoryPercent)
		case 1:
			w.Available = !w.Available
			x.Update(w.ID, w.Running, w.Available, w.CPUPercent, w.MemoryPercent)
		case 2:
			req := Requirements{Language: langs[r.IntN(3)]}
			if r.IntN(2) == 0 {
				req.Version = versions[r.IntN(3)][:1]
			}
			if r.IntN(2) == 0 {
				req.Labels = map[string]string{"zone": zones[r.IntN(3)]}
			}
			var fit []*Worker
			for _, c := range ws {
				if takes(c) && c.Capable(req) {
					fit = append(fit, c)
				}
			}
			id, ok := x.Take(req)
			if ok != (len(fit) > 0) {
				t.Fatalf("step %d: Take(%+v) ok %v, %d workers fit", step, req, ok, len(fit))
			}
			if !ok {
				continue
			}
			// No worker that fits has a smaller share of its slots in use.
			got := ws[slices.IndexFunc(ws, func(c *Worker) bool { return c.ID == id })]
			share := func(c *Worker) float64 { return float64(c.Running+held[c.ID]) / float64(c.Slots) }
			for _, c := range fit {
				if share(c) < share(got) {
					t.Fatalf("step %d: took %s (%.2f in use), %s fits with %.2f", step, id, share(got), c.ID, share(c))
				}
			}
			if !slices.Contains(fit, got) {
				t.Fatalf("step %d: took %s, which does not fit %+v", step, id, req)
			}
			held[id]++
		case 3:
			x.ReleaseAll()
			clear(held)
		}
		free, inUse := 0, map[string]bool{}
		for _, c := range ws {
			if takes(c) {
				free += c.Slots - c.Running - held[c.ID]
				for l := range c.Languages {
					inUse[l] = true
				}
			}
		}
		if x.Free() != free || len(x.Languages()) != len(inUse) {
			t.Fatalf("step %d: Free %d, Languages %v; a scan finds %d, %v", step, x.Free(), x.Languages(), free, inUse)
		}
	}
}

// BenchmarkIndexTake is one placement and the end of its attempt in a
// fleet of n workers: its cost should not grow with n (a few pools, log n).
func BenchmarkIndexTake(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			x := NewIndex(Options{})
			for i := range n {
				w := worker(fmt.Sprint("w", i), 4, "c", "python", "bash")
				w.Running = i % 4
				x.Put(*w)
			}
			req := Requirements{Language: "python"}
			for b.Loop() {
				id, _ := x.Take(req)
				x.Release(id)
			}
		})
	}
}
