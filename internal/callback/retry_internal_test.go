package callback

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// TestRetryAt: the wait doubles from RetryBase up to MaxInterval, and the
// retries stop RetryFor after the first attempt.
func TestRetryAt(t *testing.T) {
	d := &Deliverer{cfg: Config{RetryBase: time.Second, MaxInterval: 8 * time.Second, RetryFor: time.Minute}}
	first := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		attempts int
		firstAt  time.Time // zero: this failure is the first attempt
		now      time.Time
		want     time.Duration // after now; -1: give up
	}{
		{0, time.Time{}, first, time.Second},
		{1, first, first.Add(time.Second), 2 * time.Second},
		{2, first, first.Add(3 * time.Second), 4 * time.Second},
		{3, first, first.Add(7 * time.Second), 8 * time.Second},
		{10, first, first.Add(30 * time.Second), 8 * time.Second},
		{60, first, first.Add(50 * time.Second), 8 * time.Second},
		{61, first, first.Add(53 * time.Second), -1},
	} {
		got := d.retryAt(&store.Callback{Attempts: tc.attempts, FirstAt: tc.firstAt}, tc.now)
		switch {
		case tc.want < 0 && !got.IsZero():
			t.Errorf("attempts %d at +%s: retry at +%s, want to give up", tc.attempts, tc.now.Sub(first), got.Sub(first))
		case tc.want >= 0 && !got.Equal(tc.now.Add(tc.want)):
			t.Errorf("attempts %d at +%s: retry at %v, want +%s", tc.attempts, tc.now.Sub(first), got, tc.want)
		}
	}
}

// An HTTP client's error keeps the receiver's host and path but not what
// rides in its user information, query or fragment.
func TestRedactURL(t *testing.T) {
	cause := errors.New("connection refused")
	for _, tc := range []struct{ in, want string }{
		{"https://user:pw@hooks.example/p?token=s3cret#frag", "https://hooks.example/p"},
		{"http://hooks.example:8080/a/b?", "http://hooks.example:8080/a/b"},
		{"http://hooks.example/plain", "http://hooks.example/plain"},
	} {
		err := redactURL(&url.Error{Op: "Post", URL: tc.in, Err: cause})
		var ue *url.Error
		if !errors.As(err, &ue) || ue.URL != tc.want || !errors.Is(err, cause) {
			t.Errorf("redactURL(%q) = %v, want URL %q wrapping the cause", tc.in, err, tc.want)
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pw@") {
			t.Errorf("redactURL(%q) still shows a secret: %v", tc.in, err)
		}
	}
	if err := redactURL(cause); err != cause {
		t.Errorf("another error changed: %v", err)
	}
}
