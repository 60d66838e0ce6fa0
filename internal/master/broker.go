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
	// backlog keeps the output a running attempt has written so far, so a
	// stream that connects late (a page opened after Run) still shows it
	// from the start. Bounded per job; cleared when the job ends or a new
	// attempt starts.
	backlog map[string]*outputLog
}

// backlogMax bounds the output kept per running job.
const backlogMax = 64 << 10

// maxOutputGap bounds the output a worker may say it dropped between two
// chunks it sends (far more than any output limit).
const maxOutputGap = 1 << 40

type outputLog struct {
	attempt int32
	size    int
	// next is where the next chunk starts in the attempt's output, by
	// the bytes seen here: a worker that does not number its chunks
	// (an older one) is numbered by the master.
	next   int64
	chunks []api.Event
}

func newBroker() *broker {
	return &broker{subs: make(map[string]map[chan api.Event]bool), backlog: make(map[string]*outputLog)}
}

// output records a chunk of a running attempt's output and sends it to the
// job's event subscribers.
func (b *broker) output(id string, attempt int32, stream string, data []byte, offset int64) {
	text, enc := encodeOutput(data)
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.backlog[id]
	if l != nil && attempt < l.attempt {
		return // a stale attempt still talking
	}
	if l == nil || attempt > l.attempt {
		l = &outputLog{attempt: attempt}
		b.backlog[id] = l
	}
	// The worker numbers its chunks; a number before what was seen, or
	// absurdly far past it (a worker that lies), is replaced by the
	// master's own count: it only positions this job's stream.
	if offset < l.next || offset > l.next+maxOutputGap {
		offset = l.next
	}
	l.next = offset + int64(len(data))
	ev := api.Event{Type: "output", Stream: stream, Data: text, Encoding: enc, Attempt: attempt, Offset: offset}
	if l.size+len(data) <= backlogMax {
		l.size += len(data)
		// Merge with the previous chunk of the same stream when it ends
		// where this one starts, so a replay is a few events, not
		// thousands.
		if n := len(l.chunks); n > 0 && enc == "" && l.chunks[n-1].Stream == stream && l.chunks[n-1].Encoding == "" &&
			l.chunks[n-1].Offset+int64(len(l.chunks[n-1].Data)) == offset {
			l.chunks[n-1].Data += text
		} else {
			l.chunks = append(l.chunks, ev)
		}
	}
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

func (b *broker) subscribe(id string, events bool) (<-chan api.Event, func()) {
	ch := make(chan api.Event, 64)
	b.mu.Lock()
	set := b.subs[id]
	if set == nil {
		set = make(map[chan api.Event]bool)
		b.subs[id] = set
	}
	set[ch] = events
	if l := b.backlog[id]; events && l != nil {
		for _, ev := range l.chunks {
			select {
			case ch <- ev:
			default:
			}
		}
	}
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

// hasWaiters reports whether a ?wait request waits for the job's end.
func (b *broker) hasWaiters(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, events := range b.subs[id] {
		if !events {
			return true
		}
	}
	return false
}

// finish closes every subscription of the job: the job is terminal and
// subscribers read its final state from the store. Waiters are first sent
// final, when given, in an "end" event: their channel carries nothing else,
// so there is room for it.
func (b *broker) finish(id string, final *api.Job) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch, events := range b.subs[id] {
		if !events && final != nil {
			select {
			case ch <- api.Event{Type: "end", Job: final}:
			default:
			}
		}
		close(ch)
	}
	delete(b.subs, id)
	delete(b.backlog, id)
}

// forget drops a job's backlog (its attempt was re-queued).
func (b *broker) forget(id string) {
	b.mu.Lock()
	delete(b.backlog, id)
	b.mu.Unlock()
}

// watched returns the jobs that have subscribers (at most limit), for the
// sweep to look for the ones another master finished.
func (b *broker) watched(limit int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, min(len(b.subs), limit))
	for id := range b.subs {
		if len(out) == limit {
			break
		}
		out = append(out, id)
	}
	return out
}
