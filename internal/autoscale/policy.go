package autoscale

import (
	"errors"
	"fmt"
	"time"
)

// Policy says when the autoscaler starts and stops workers. Zero values
// take the defaults of setDefaults.
type Policy struct {
	// Min and Max bound the number of workers the autoscaler started; the
	// workers an operator started by hand are neither counted nor stopped.
	Min, Max int
	// SlotsPerWorker is the --max-jobs of a started worker; it sizes a
	// scale-up (ten queued jobs and two slots a worker: five workers).
	SlotsPerWorker int
	// Wait: a queued job that a started worker could run and that has
	// waited this long, while the queue exceeds the free slots, is
	// pressure.
	Wait time.Duration
	// Backlog: queued jobs exceeding the free slots for this long is
	// pressure, without waiting for Wait; it reacts to a burst sooner.
	Backlog time.Duration
	// Idle: a started worker that ran no job for this long is drained,
	// then stopped once it has no job.
	Idle time.Duration
	// UpCooldown is the least time between two scale-ups caused by load:
	// the workers just started need time to join, and counting their
	// slots as coming is not enough when a start takes a minute.
	UpCooldown time.Duration
	// DownCooldown is the least time after any scale-up or scale-down
	// before the next scale-down, so the cluster does not flap.
	DownCooldown time.Duration
	// MaxStartsPerMinute caps the start rate, whatever the queue says.
	MaxStartsPerMinute int
	// JoinTimeout is how long a started worker may take to connect to the
	// master, and how long one may stay disconnected, before it counts as
	// failed: it is stopped and replaced if still needed.
	JoinTimeout time.Duration
	// Languages, if set, are the languages started workers run. Unset,
	// the autoscaler learns them from the workers it started, and assumes
	// a worker can run anything until the first one has joined.
	Languages []string
}

func (p *Policy) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if p.Max == 0 {
		p.Max = max(p.Min, 4)
	}
	if p.SlotsPerWorker == 0 {
		p.SlotsPerWorker = 1
	}
	def(&p.Wait, 10*time.Second)
	def(&p.Backlog, 3*time.Second)
	def(&p.Idle, time.Minute)
	def(&p.UpCooldown, 10*time.Second)
	def(&p.DownCooldown, 30*time.Second)
	if p.MaxStartsPerMinute == 0 {
		p.MaxStartsPerMinute = 10
	}
	def(&p.JoinTimeout, 2*time.Minute)
}

func (p *Policy) validate() error {
	switch {
	case p.Min < 0:
		return errors.New("autoscale: minimum workers must not be negative")
	case p.Max < 1:
		return errors.New("autoscale: maximum workers must be at least 1")
	case p.Min > p.Max:
		return fmt.Errorf("autoscale: minimum workers (%d) above the maximum (%d)", p.Min, p.Max)
	case p.SlotsPerWorker < 1:
		return errors.New("autoscale: slots per worker must be at least 1")
	case p.MaxStartsPerMinute < 1:
		return errors.New("autoscale: the start rate must allow at least one start a minute")
	case p.Wait < 0 || p.Backlog < 0 || p.Idle < 0 || p.UpCooldown < 0 || p.DownCooldown < 0 || p.JoinTimeout < 0:
		return errors.New("autoscale: durations must not be negative")
	}
	return nil
}

// backoff is the pause after n consecutive failed starts: 5s, 10s, 20s…
// up to 5 minutes, so a broken start command is retried but not hammered.
func backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := 5 * time.Second
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}
