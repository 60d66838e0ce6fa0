package master

import (
	"sync"

	"github.com/grappe/grappe/api"
)

// broker fans a job's events out to its subscribers (SSE streams and
// ?wait=true requests). Events are best-effort: a subscriber too slow to
// keep up loses output chunks, never the end, because the end is signalled
// by closing its channel.
type broker struct {
	mu   sync.Mutex
	subs map[string]map[chan api.Event]struct{}
}

func newBroker() *broker {
	return &broker{subs: make(map[string]map[chan api.Event]struct{})}
}

func (b *broker) subscribe(id string) (<-chan api.Event, func()) {
	ch := make(chan api.Event, 64)
	b.mu.Lock()
	set := b.subs[id]
	if set == nil {
		set = make(map[chan api.Event]struct{})
		b.subs[id] = set
	}
	set[ch] = struct{}{}
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
	return len(b.subs[id]) > 0
}

func (b *broker) publish(id string, ev api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[id] {
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
