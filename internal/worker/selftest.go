package worker

import (
	"cmp"
	"context"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/runner"
)

// startSelfTests announces at once the toolchains whose self-test passed
// on an earlier start and that have not changed since (the self-test
// cache), and tests the others in the background, cheapest first: the
// interpreters together (milliseconds each), then the compilers a few at
// a time, in the order of what their last self-test took. Each language
// is announced as soon as its own test passes, so a worker takes Python
// jobs while javac still runs, and a job for a language still being
// tested waits in the master's queue.
func (tb *Toolbox) startSelfTests(ctx context.Context) {
	log := tb.log
	start := time.Now()
	type todo struct {
		t    lang.Toolchain
		cost time.Duration
	}
	var cached []lang.Toolchain
	var quick, slow []todo
	for _, t := range tb.detected {
		rec, ok := tb.cache.lookup(t)
		if ok && tb.Runner.SeedReady(t) {
			cached = append(cached, t)
			continue
		}
		td := todo{t, time.Duration(rec.TookMS) * time.Millisecond}
		if t.Entry.Compiled() {
			slow = append(slow, td)
		} else {
			quick = append(quick, td)
		}
	}
	// Unknown costs (0) keep the catalogue's order, C first.
	slices.SortStableFunc(slow, func(a, b todo) int { return cmp.Compare(a.cost, b.cost) })
	tb.mu.Lock()
	tb.testing = map[string]string{}
	for _, td := range append(slices.Clone(quick), slow...) {
		tb.testing[td.t.Name()] = td.t.Version
	}
	tb.mu.Unlock()
	if len(cached) > 0 {
		langs := make([]*clusterpb.Language, 0, len(cached))
		names := make([]string, 0, len(cached))
		for _, t := range cached {
			langs = append(langs, &clusterpb.Language{Name: t.Name(), Version: t.Version})
			names = append(names, t.Name())
		}
		tb.add(langs...)
		log.Info("toolchains unchanged since their last self-test; announced at once", "languages", names)
	}
	// Compilers share the machine with the jobs the worker already
	// takes: half the CPUs at most.
	parallel := max(1, runtime.NumCPU()/2)
	go func() {
		defer close(tb.tested)
		run := func(tds []todo, limit int) {
			sem := make(chan struct{}, limit)
			var wg sync.WaitGroup
			for _, td := range tds {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
					break
				}
				wg.Go(func() {
					defer func() { <-sem }()
					tb.selfTest(ctx, td.t)
				})
			}
			wg.Wait()
		}
		run(quick, max(len(quick), 1))
		close(tb.quick)
		run(slow, parallel)
		langs, _ := tb.Languages()
		log.Info("self-tests done", "languages", len(langs), "of", len(tb.detected), "cached", len(cached),
			"took", time.Since(start).Round(time.Millisecond))
	}()
}

// selfTest runs one toolchain's self-test with a runner of its own,
// without the compile cache, so that it really runs its compiler, and
// announces it if it passes.
func (tb *Toolbox) selfTest(ctx context.Context, t lang.Toolchain) {
	log := tb.log
	defer func() {
		tb.mu.Lock()
		delete(tb.testing, t.Name())
		tb.changedLocked() // the master learns that its jobs need not wait
		tb.mu.Unlock()
	}()
	cfg := tb.base
	cfg.Toolchains = []lang.Toolchain{t}
	cfg.CacheMaxBytes = -1
	probe, err := runner.New(cfg)
	if err != nil {
		log.Error("self-test", "language", t.Name(), "err", err)
		return
	}
	defer probe.Close()
	began := time.Now()
	_, failures := probe.SelfTest(ctx)
	if err := failures[t.Name()]; err != nil {
		if ctx.Err() == nil {
			tb.withdraw(t.Name(), err)
		}
		return
	}
	took := time.Since(began)
	tb.add(&clusterpb.Language{Name: t.Name(), Version: t.Version})
	log.Debug("self-test passed; announced", "language", t.Name(), "version", t.Version, "took", took.Round(time.Millisecond))
	if err := tb.cache.store(t, took); err != nil {
		log.Warn("self-test cache", "language", t.Name(), "err", err)
	}
}

// Testing returns the languages whose self-test is still running.
func (tb *Toolbox) Testing() []*clusterpb.Language {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	out := make([]*clusterpb.Language, 0, len(tb.testing))
	for name, version := range tb.testing {
		out = append(out, &clusterpb.Language{Name: name, Version: version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Changed returns a channel closed at the next change of the languages or
// of those still tested: a worker tells the master at once, rather than at
// its next heartbeat.
func (tb *Toolbox) Changed() <-chan struct{} {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.changed == nil {
		tb.changed = make(chan struct{})
	}
	return tb.changed
}

// changedLocked starts a new generation. Called with tb.mu held.
func (tb *Toolbox) changedLocked() {
	tb.generation++
	if tb.changed != nil {
		close(tb.changed)
		tb.changed = nil
	}
}

// add announces languages.
func (tb *Toolbox) add(ls ...*clusterpb.Language) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	langs := slices.DeleteFunc(slices.Clone(tb.languages), func(l *clusterpb.Language) bool {
		return slices.ContainsFunc(ls, func(n *clusterpb.Language) bool { return n.Name == l.Name })
	})
	langs = append(langs, ls...)
	sort.Slice(langs, func(i, j int) bool { return langs[i].Name < langs[j].Name })
	tb.languages = langs
	tb.changedLocked()
}

// withdraw stops announcing a language whose self-test failed, and
// forgets its cached verdict: the next start tests it again.
func (tb *Toolbox) withdraw(name string, err error) {
	tb.cache.forget(name)
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.log.Warn("toolchain failed its self-test; not announced", "language", name, "err", err)
	n := len(tb.languages)
	langs := slices.DeleteFunc(slices.Clone(tb.languages), func(l *clusterpb.Language) bool { return l.Name == name })
	if len(langs) != n {
		tb.languages = langs
		tb.changedLocked()
	}
}
