package master

import (
	"sync"

	"github.com/grappe/grappe/api"
)

// broker fans a job's events out to its subscribers (SSE streams and
// ?wait=true requests). Events are best-effort: a subscriber too slow to
// keep up loses output chunks, never the end, because the end is signalled
// by closing its channel. Waiters only need the end: they are not counted
// by hasSubscribers, so a job nobody streams costs no event building.
type broker struct {
	mu   sync.Mutex
	subs map[string]map[chan api.Event]bool // value: wants events
}

func newBroker() *broker {
	return &broker{subs: make(map[string]map[chan api.Event]bool)}
}

func (b *broker) subscribe(id string, events bool) (<-chan api.Event, func()) {
	ch := make(chan api.Event, 64)
	b.mu.Lock()
	set := b.subs[id]
	if set == nil {
		set = make(map[chan api.Event]bool)
		b.subs[id] = set
	}
	set[ch] = events
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if set, ok := b.subs[id]; ok {
			if _, ok := set[ch]; ok {
				delete(set, ch)
				close(ch)
				if len(set) == 0 {
					delete(b.subs, id)
				}
			}
		}
	}
}

// hasSubscribers lets the hot path skip building events nobody reads.
func (b *broker) hasSubscribers(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, events := range b.subs[id] {
		if events {
			return true
		}
	}
	return false
}

func (b *broker) publish(id string, ev api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch, events := range b.subs[id] {
		if !events {
			continue
		}
		select {
		case ch <- ev:
		default:
		}
	}
}

// finish closes every subscription of the job: the job is terminal and
// subscribers read its final state from the store.
func (b *broker) finish(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[id] {
		close(ch)
	}
	delete(b.subs, id)
}
