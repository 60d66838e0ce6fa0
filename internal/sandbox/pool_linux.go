//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// pool keeps sandboxes and cgroups prepared ahead, so that a command's
// critical path creates neither: starting an init and building its root
// costs milliseconds (a Go runtime start, a network namespace), creating
// a v1 cgroup tens to hundreds of microseconds per hierarchy.
type pool struct {
	l       *Linux
	size    int
	slots   chan *slot   // idle
	live    atomic.Int64 // sandboxes idle or in use
	cgroups chan runCgroup
	wake    chan struct{}
	// gen counts renewals: a sandbox made before the last one is
	// discarded when it comes back.
	gen atomic.Int64
}

func newPool(l *Linux, size int) *pool {
	return &pool{
		l:     l,
		size:  size,
		slots: make(chan *slot, size),
		// Room for the recycled cgroups beyond what the filler makes.
		cgroups: make(chan runCgroup, 2*size),
		wake:    make(chan struct{}, 1),
	}
}

// poke asks the filler to top the pool up.
func (p *pool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// slot returns a ready sandbox, or builds one when none is ready.
func (p *pool) slot() (*slot, error) {
	defer p.poke()
	for {
		select {
		case s := <-p.slots:
			if s.dead() {
				p.discard(s)
				continue
			}
			return s, nil
		default:
			gen := p.gen.Load()
			s, err := p.l.startSlot(&p.l.setup)
			if err == nil {
				s.gen = gen
				p.live.Add(1)
			}
			return s, err
		}
	}
}

// putSlot takes a sandbox back after a command. One that misbehaved, or
// served maxRuns commands, is discarded and replaced in the background.
func (p *pool) putSlot(s *slot, healthy bool) {
	s.runs++
	if !healthy || s.dead() || s.gen != p.gen.Load() {
		p.discard(s)
		return
	}
	if s.runs < p.l.maxRuns && !p.l.closed.Load() {
		select {
		case p.slots <- s:
			return
		default:
		}
	}
	p.live.Add(-1)
	p.l.bg.Go(s.retire)
	p.poke()
}

// discard kills a sandbox that cannot be trusted any more.
func (p *pool) discard(s *slot) {
	p.live.Add(-1)
	p.l.bg.Go(s.destroy)
	p.poke()
}

// cgroup returns an empty cgroup for a command.
func (p *pool) cgroup() (runCgroup, error) {
	defer p.poke()
	select {
	case cg := <-p.cgroups:
		return cg, nil
	default:
		return p.l.newCgroup()
	}
}

// putCgroup takes a command's cgroup back, in the background: reused when
// the command ended normally and left it clean, else removed (its
// processes killed first if any is left).
func (p *pool) putCgroup(cg runCgroup, reusable bool) {
	p.l.bg.Go(func() {
		if reusable && !p.l.closed.Load() && cg.recycle() {
			select {
			case p.cgroups <- cg:
				return
			default:
			}
		}
		if busy, _ := cg.populated(); busy {
			cg.kill()
		}
		if err := cg.remove(); err != nil {
			p.l.log.Warn("sandbox: cannot remove cgroup", "err", err)
		}
	})
}

// fill keeps the pool full until the sandbox closes.
func (p *pool) fill() {
	defer p.l.bg.Done()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-p.l.quit:
			return
		case <-p.wake:
		}
		if err := p.top(); err != nil {
			if p.l.closed.Load() {
				return // the sandbox being stopped under it
			}
			p.l.log.Warn("sandbox: cannot prepare a sandbox", "err", err)
			select {
			case <-p.l.quit:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			p.poke()
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

func (p *pool) top() error {
	for len(p.cgroups) < p.size && !p.l.closed.Load() {
		cg, err := p.l.newCgroup()
		if err != nil {
			return err
		}
		select {
		case p.cgroups <- cg:
		default:
			cg.remove()
		}
	}
	for p.live.Load() < int64(p.size) && !p.l.closed.Load() {
		gen := p.gen.Load()
		s, err := p.l.startSlot(&p.l.setup)
		if err != nil {
			return err
		}
		s.gen = gen
		p.live.Add(1)
		select {
		case p.slots <- s:
		default:
			p.discard(s)
		}
	}
	return nil
}

// renew discards the prepared sandboxes and cgroups (Repair) and has the
// filler make new ones; those in use are discarded when they come back
// (a cgroup whose directory is gone cannot be recycled).
func (p *pool) renew() {
	p.gen.Add(1)
	defer p.poke()
	for {
		select {
		case s := <-p.slots:
			p.discard(s)
		case cg := <-p.cgroups:
			p.l.bg.Go(func() {
				if busy, _ := cg.populated(); busy {
					cg.kill()
				}
				cg.remove()
			})
		default:
			return
		}
	}
}

// drain empties the pool when the sandbox closes.
func (p *pool) drain() {
	for {
		select {
		case s := <-p.slots:
			p.live.Add(-1)
			s.retire()
		case cg := <-p.cgroups:
			cg.remove()
		default:
			return
		}
	}
}

// uidPool hands out the unprivileged uids, one per running command.
// Released uids go to the back of the queue: a uid is reused as late as
// possible.
type uidPool chan int

func newUIDPool(base, count int) uidPool {
	p := make(uidPool, count)
	for i := 0; i < count; i++ {
		p <- base + i
	}
	return p
}

func (p uidPool) get(ctx context.Context) (int, error) {
	select {
	case uid := <-p:
		return uid, nil
	default:
	}
	select {
	case uid := <-p:
		return uid, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("sandbox: waiting for a free uid: %w", ctx.Err())
	}
}

func (p uidPool) put(uid int) { p <- uid }
