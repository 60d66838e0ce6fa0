package httpapi

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/grappe/grappe/api"
)

// RateLimits bound how fast one caller may use the API. Zero fields take
// the defaults.
type RateLimits struct {
	// PerUser is requests per second per authenticated user, with Burst.
	PerUser float64
	Burst   int
	// LoginPerMinute bounds password attempts per user name and per client
	// address, whatever their outcome, so guessing a password is slow.
	LoginPerMinute float64
	LoginBurst     int
}

func (l *RateLimits) setDefaults() {
	if l.PerUser == 0 {
		l.PerUser = 1000
	}
	if l.Burst == 0 {
		l.Burst = 2000
	}
	if l.LoginPerMinute == 0 {
		l.LoginPerMinute = 10
	}
	if l.LoginBurst == 0 {
		l.LoginBurst = 5
	}
}

// limiters hands out one token bucket per key, forgetting idle ones.
type limiters struct {
	mu    sync.Mutex
	every rate.Limit
	burst int
	m     map[string]*entry
	sweep time.Time
}

type entry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiters(perSecond float64, burst int) *limiters {
	return &limiters{every: rate.Limit(perSecond), burst: burst, m: map[string]*entry{}}
}

// allow takes a token for key; when there is none it says how long to wait.
func (l *limiters) allow(key string) (bool, time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		for k, e := range l.m {
			// Idle long enough to have refilled: the same as a new one.
			if now.Sub(e.seen) > time.Duration(float64(l.burst)/float64(l.every)*float64(time.Second))+time.Minute {
				delete(l.m, k)
			}
		}
		l.sweep = now
	}
	e := l.m[key]
	if e == nil {
		e = &entry{lim: rate.NewLimiter(l.every, l.burst)}
		l.m[key] = e
	}
	e.seen = now
	r := e.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func tooMany(what string, wait time.Duration) *Error {
	secs := int(math.Ceil(wait.Seconds()))
	return &Error{
		Status: http.StatusTooManyRequests, Code: api.CodeRateLimited,
		Message:    fmt.Sprintf("too many %s; retry in %ds", what, max(secs, 1)),
		RetryAfter: max(secs, 1),
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
