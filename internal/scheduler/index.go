package scheduler

import (
	"container/heap"
	"math/rand/v2"
	"slices"
)

// Index holds a master's workers for placement: those that take new work
// now sit in pools by what they offer (a language, a language at a
// version or a prefix of it, a label), each pool a heap ordered by load.
// A job's best worker is then the top of one pool (its language, or its
// language at its version), or, for a job that also asks for labels, the
// first that fits in the smallest pool of its requirements: no placement
// looks at the whole fleet. A change of one worker (an attempt started or
// ended, a heartbeat whose load moved to another band) moves it in its
// own pools only, O(pools × log n), and not at all when its place in the
// order is unchanged.
//
// The order is the one placement has always had: the smallest share of
// the worker's slots in use first (jobs spread over idle workers before
// any takes a second), then the load score in bands of scoreEpsilon
// (slots, CPU, memory), then a random draw, made again each time the
// worker moves, so that equal workers share the work.
//
// An Index is not safe for concurrent use: its owner locks it.
type Index struct {
	opts    Options
	workers map[string]*entry
	pools   map[string]*pool
	// langs counts the workers taking work per language, and langList is
	// their sorted names (nil when it must be rebuilt): a claim reads no
	// candidates when none is offered.
	langs    map[string]int
	langList []string
	// free is the free slots of the workers taking work.
	free int
	// holding are the workers with slots held by Take.
	holding map[*entry]struct{}
}

// entry is one worker in the index.
type entry struct {
	w Worker
	// held is the slots Take gave to jobs whose attempts the master has
	// not recorded yet: they count as used.
	held int
	// keys are the pools the worker belongs in while it takes work; in
	// its places in them (nil while it takes none), in the same order.
	keys []string
	in   []place
	// counted is what the worker adds to Index.free.
	counted int
	// Its place in the order: used/slots, then band, then tie.
	used, band int
	tie        uint64
}

// place is where an entry sits in one pool's heap.
type place struct {
	p   *pool
	pos int
}

// NewIndex returns an empty index placing with opts.
func NewIndex(opts Options) *Index {
	return &Index{
		opts: opts, workers: map[string]*entry{}, pools: map[string]*pool{},
		langs: map[string]int{}, holding: map[*entry]struct{}{},
	}
}

// Put adds worker w, or replaces what the index knows of it: its
// languages, labels and slots as well as its state. The index keeps w's
// maps: the caller replaces them, never changes them in place.
func (x *Index) Put(w Worker) {
	e := x.workers[w.ID]
	if e == nil {
		e = &entry{}
		x.workers[w.ID] = e
	}
	x.leave(e)
	e.w = w
	e.keys = poolKeys(&w)
	x.reposition(e)
}

// Update sets the state of a worker already Put: its attempts running,
// whether it takes work, its machine's load. Nothing moves when the
// worker's place in the order is the same.
func (x *Index) Update(id string, running int, available bool, cpuPercent, memoryPercent float64) {
	e := x.workers[id]
	if e == nil {
		return
	}
	e.w.Running, e.w.Available, e.w.CPUPercent, e.w.MemoryPercent = running, available, cpuPercent, memoryPercent
	x.reposition(e)
}

// Remove forgets a worker.
func (x *Index) Remove(id string) {
	if e := x.workers[id]; e != nil {
		x.leave(e)
		delete(x.holding, e)
		delete(x.workers, id)
	}
}

// Free is how many more attempts the workers taking work take now.
func (x *Index) Free() int { return x.free }

// Languages returns, sorted, the languages some worker taking work runs.
// The slice is the index's until it changes: the caller must not modify
// it.
func (x *Index) Languages() []string {
	if x.langList == nil {
		x.langList = make([]string, 0, len(x.langs))
		for l := range x.langs {
			x.langList = append(x.langList, l)
		}
		slices.Sort(x.langList)
	}
	return x.langList
}

// Fits reports whether some worker taking work can run a job with r.
func (x *Index) Fits(r Requirements) bool { return x.best(r) != nil }

// Take returns the best worker taking work that can run a job with r, and
// holds one of its slots for that job until Release or ReleaseAll: the
// master records the job's attempt, then releases the hold.
func (x *Index) Take(r Requirements) (string, bool) {
	e := x.best(r)
	if e == nil {
		return "", false
	}
	e.held++
	x.holding[e] = struct{}{}
	x.reposition(e)
	return e.w.ID, true
}

// Release gives back one slot Take held on worker id.
func (x *Index) Release(id string) {
	if e := x.workers[id]; e != nil && e.held > 0 {
		e.held--
		if e.held == 0 {
			delete(x.holding, e)
		}
		x.reposition(e)
	}
}

// ReleaseAll gives back every slot Take held.
func (x *Index) ReleaseAll() {
	for e := range x.holding {
		e.held = 0
		x.reposition(e)
	}
	clear(x.holding)
}

// best is the first worker in the order that takes work and can run a
// job with r, or nil.
func (x *Index) best(r Requirements) *entry {
	key := languageKey(r.Language)
	if r.Version != "" {
		key = versionKey(r.Language, r.Version)
	}
	p := x.pools[key]
	if p == nil {
		return nil
	}
	if len(r.Labels) == 0 {
		return p.top() // every worker of a language or version pool fits
	}
	for k, v := range r.Labels {
		lp := x.pools[labelKey(k, v)]
		if lp == nil {
			return nil
		}
		if lp.len() < p.len() {
			p = lp
		}
	}
	return p.first(func(e *entry) bool { return e.w.Capable(r) })
}

// takesWork reports whether e gets new jobs now: up, with a slot neither
// running nor held, under the thresholds.
func (x *Index) takesWork(e *entry) bool {
	w := e.w
	w.Running += e.held
	return x.opts.offered(&w)
}

// reposition brings e's pools, its place in them and the free slots in
// line with its state.
func (x *Index) reposition(e *entry) {
	if !x.takesWork(e) {
		x.leave(e)
		return
	}
	x.free -= e.counted
	e.counted = e.w.Slots - e.w.Running - e.held
	x.free += e.counted
	w := e.w
	w.Running += e.held
	used, band := w.Running, int(score(&w)/scoreEpsilon)
	if e.in != nil && used == e.used && band == e.band {
		return
	}
	e.used, e.band, e.tie = used, band, x.draw()
	if e.in == nil {
		x.join(e)
		return
	}
	for i := range e.in {
		e.in[i].p.fix(e.in[i].pos)
	}
}

// join puts e, which takes work, in its pools.
func (x *Index) join(e *entry) {
	e.in = make([]place, len(e.keys))
	for i, k := range e.keys {
		p := x.pools[k]
		if p == nil {
			p = &pool{}
			x.pools[k] = p
		}
		e.in[i].p = p
		p.push(e, i)
	}
	for l := range e.w.Languages {
		if x.langs[l]++; x.langs[l] == 1 {
			x.langList = nil
		}
	}
}

// leave takes e out of its pools: it takes no work now.
func (x *Index) leave(e *entry) {
	x.free -= e.counted
	e.counted = 0
	if e.in == nil {
		return
	}
	for i, k := range e.keys {
		p := e.in[i].p
		p.remove(e.in[i].pos)
		if p.len() == 0 {
			delete(x.pools, k)
		}
	}
	e.in = nil
	for l := range e.w.Languages {
		if x.langs[l]--; x.langs[l] == 0 {
			delete(x.langs, l)
			x.langList = nil
		}
	}
}

func (x *Index) draw() uint64 {
	if x.opts.Rand != nil {
		return x.opts.Rand.Uint64()
	}
	return rand.Uint64()
}

// The pools' keys: a language; a language at a version a job may ask for
// (every prefix of an installed version that ends at a dot, and the whole
// version: VersionMatches); a label, whatever the language.
func languageKey(lang string) string   { return "l\x00" + lang }
func versionKey(lang, v string) string { return "v\x00" + lang + "\x00" + v }
func labelKey(k, v string) string      { return "b\x00" + k + "\x00" + v }

// poolKeys lists the pools w belongs in while it takes work.
func poolKeys(w *Worker) []string {
	var keys []string
	for lang, versions := range w.Languages {
		keys = append(keys, languageKey(lang))
		for _, v := range versions {
			for i := range len(v) {
				if v[i] == '.' {
					keys = append(keys, versionKey(lang, v[:i]))
				}
			}
			keys = append(keys, versionKey(lang, v))
		}
	}
	for k, v := range w.Labels {
		keys = append(keys, labelKey(k, v))
	}
	slices.Sort(keys)
	return slices.Compact(keys) // two versions share their prefixes
}

// less orders entries: the smallest share of slots in use, then the
// lowest band of load score, then the draw.
func less(a, b *entry) bool {
	// a.used/a.Slots < b.used/b.Slots, without division.
	if l, r := a.used*b.w.Slots, b.used*a.w.Slots; l != r {
		return l < r
	}
	if a.band != b.band {
		return a.band < b.band
	}
	return a.tie < b.tie
}

// pool is a min-heap of entries (less). Each element knows which of its
// entry's places it is, so that the entry knows its position in every
// pool it is in.
type pool struct{ items []member }

type member struct {
	e *entry
	k int // index in e.in
}

func (p *pool) len() int { return len(p.items) }

func (p *pool) top() *entry {
	if len(p.items) == 0 {
		return nil
	}
	return p.items[0].e
}

func (p *pool) push(e *entry, k int) {
	p.items = append(p.items, member{e, k})
	e.in[k].pos = len(p.items) - 1
	p.up(len(p.items) - 1)
}

func (p *pool) remove(i int) {
	last := len(p.items) - 1
	if i != last {
		p.swap(i, last)
	}
	p.items[last] = member{}
	p.items = p.items[:last]
	if i != last {
		p.fix(i)
	}
}

func (p *pool) fix(i int) {
	if !p.down(i) {
		p.up(i)
	}
}

func (p *pool) swap(i, j int) {
	p.items[i], p.items[j] = p.items[j], p.items[i]
	p.items[i].e.in[p.items[i].k].pos = i
	p.items[j].e.in[p.items[j].k].pos = j
}

func (p *pool) less(i, j int) bool { return less(p.items[i].e, p.items[j].e) }

func (p *pool) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !p.less(i, parent) {
			return
		}
		p.swap(i, parent)
		i = parent
	}
}

// down sinks element i; it reports whether it moved.
func (p *pool) down(i int) bool {
	start := i
	for {
		c := 2*i + 1
		if c >= len(p.items) {
			break
		}
		if r := c + 1; r < len(p.items) && p.less(r, c) {
			c = r
		}
		if !p.less(c, i) {
			break
		}
		p.swap(i, c)
		i = c
	}
	return i > start
}

// first returns the first entry in the order that fits, or nil. It walks
// the heap best first (no element is better than its parent), keeping a
// frontier of the children of what it passed: it looks at the entries
// better than the answer and at their children, not at the whole pool.
func (p *pool) first(fits func(*entry) bool) *entry {
	if len(p.items) == 0 {
		return nil
	}
	f := &frontier{p: p, at: []int{0}}
	for f.Len() > 0 {
		n := heap.Pop(f).(int)
		if e := p.items[n].e; fits(e) {
			return e
		}
		for _, c := range []int{2*n + 1, 2*n + 2} {
			if c < len(p.items) {
				heap.Push(f, c)
			}
		}
	}
	return nil
}

// frontier is a heap of positions in a pool, for first.
type frontier struct {
	p  *pool
	at []int
}

func (f *frontier) Len() int           { return len(f.at) }
func (f *frontier) Less(i, j int) bool { return f.p.less(f.at[i], f.at[j]) }
func (f *frontier) Swap(i, j int)      { f.at[i], f.at[j] = f.at[j], f.at[i] }
func (f *frontier) Push(x any)         { f.at = append(f.at, x.(int)) }
func (f *frontier) Pop() any {
	n := f.at[len(f.at)-1]
	f.at = f.at[:len(f.at)-1]
	return n
}
