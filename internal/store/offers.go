package store

import (
	"slices"
	"sync"
)

// Offer is the free capacity of one worker a master holds.
type Offer struct {
	Worker WorkerRef
	// Languages maps a language name to the versions the worker runs.
	Languages map[string][]string
	Labels    map[string]string
	// Free is how many more attempts the worker takes now.
	Free int
	// Slots is how many attempts it runs at once (0: as many as Free);
	// placement spreads jobs by the share of its slots in use.
	Slots int
}

// Fits reports whether the offer's worker can run j at all: it runs j's
// language, a version that matches j's (VersionMatches), and has every
// label j asks for.
func (o *Offer) Fits(j *Job) bool {
	versions, ok := o.Languages[j.Language]
	if !ok {
		return false
	}
	if j.Version != "" && !slices.ContainsFunc(versions, func(v string) bool { return VersionMatches(v, j.Version) }) {
		return false
	}
	for k, v := range j.Labels {
		if o.Labels[k] != v {
			return false
		}
	}
	return true
}

// OfferList is a Placer over a list of offers, best first: each job goes
// to the offer that fits it, has a free slot and has the smallest share
// of its slots in use (the slots taken so far included), ties to the
// earlier offer. It looks at every offer for every job: for tests, tools
// and small fleets; a master uses its index (scheduler.Index), which
// places the same way without the scan.
type OfferList struct {
	mu     sync.Mutex
	offers []Offer
}

// NewOfferList returns a placer over offers, which it copies.
func NewOfferList(offers ...Offer) *OfferList {
	l := &OfferList{offers: slices.Clone(offers)}
	for i := range l.offers {
		l.offers[i].Slots = max(l.offers[i].Slots, l.offers[i].Free)
	}
	return l
}

var _ Placer = (*OfferList)(nil)

// Free implements Placer.
func (l *OfferList) Free() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	free := 0
	for _, o := range l.offers {
		free += max(o.Free, 0)
	}
	return free
}

// Languages implements Placer.
func (l *OfferList) Languages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, o := range l.offers {
		if o.Free <= 0 {
			continue
		}
		for lang := range o.Languages {
			if !slices.Contains(out, lang) {
				out = append(out, lang)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Fits implements Placer.
func (l *OfferList) Fits(j *Job) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.best(j) >= 0
}

// Take implements Placer.
func (l *OfferList) Take(j *Job) (WorkerRef, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := l.best(j)
	if i < 0 {
		return WorkerRef{}, false
	}
	l.offers[i].Free--
	return l.offers[i].Worker, true
}

// Release implements Placer.
func (l *OfferList) Release(w WorkerRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.IndexFunc(l.offers, func(o Offer) bool { return o.Worker == w }); i >= 0 {
		l.offers[i].Free++
	}
}

func (l *OfferList) best(j *Job) int {
	used := func(o *Offer) float64 { return float64(o.Slots-o.Free) / float64(o.Slots) }
	best := -1
	for i := range l.offers {
		o := &l.offers[i]
		if o.Free > 0 && (best < 0 || used(o) < used(&l.offers[best])) && o.Fits(j) {
			best = i
		}
	}
	return best
}
