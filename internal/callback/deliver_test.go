package callback_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/callback"
	"github.com/grappe/grappe/internal/store"
)

// fakeOutbox holds one due callback and records its attempts.
type fakeOutbox struct {
	mu       sync.Mutex
	c        *store.Callback
	leased   bool
	attempts []store.CallbackAttempt
}

func (f *fakeOutbox) ClaimCallbacks(ctx context.Context, master string, now, until time.Time, limit int) ([]*store.Callback, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leased {
		return nil, nil
	}
	f.leased = true
	c := *f.c
	return []*store.Callback{&c}, nil
}

func (f *fakeOutbox) RecordCallback(ctx context.Context, kind, target, master string, a store.CallbackAttempt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, a)
	return nil
}

func (f *fakeOutbox) recorded() []store.CallbackAttempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.CallbackAttempt(nil), f.attempts...)
}

type fakeSecrets map[string][]byte

func (f fakeSecrets) PutSecret(ctx context.Context, name string, v []byte) ([]byte, error) {
	if old, ok := f[name]; ok {
		return old, nil
	}
	f[name] = v
	return v, nil
}
func (f fakeSecrets) GetUser(ctx context.Context, name string) (*store.User, error) {
	return &store.User{Name: name}, nil
}
func (f fakeSecrets) SetSecret(ctx context.Context, name string, v []byte) error {
	f[name] = v
	return nil
}
func (f fakeSecrets) GetSecret(ctx context.Context, name string) ([]byte, error) {
	if v, ok := f[name]; ok {
		return v, nil
	}
	return nil, store.ErrNotFound
}

type staticRender struct{}

func (staticRender) Render(ctx context.Context, c *store.Callback) (callback.Request, error) {
	return callback.Request{Method: "POST", Body: []byte(`{}`)}, nil
}

// TestDialTimeCheck: an address the policy forbids is refused when the
// master connects, whatever the URL passed at submission: the receiver
// on 127.0.0.1 hears nothing, and the attempt records why.
func TestDialTimeCheck(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		allowed bool
	}{{"forbidden", false}, {"allowed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := &callback.Policy{Forbidden: callback.DefaultForbidden()}
			if tc.allowed {
				p.Allowed, _ = callback.ParsePrefixes([]string{"127.0.0.0/8"})
			}
			out := &fakeOutbox{c: &store.Callback{Kind: store.CallbackJob, Target: "j1", Owner: "alice", URL: srv.URL + "/hook"}}
			d, err := callback.New(callback.Config{MasterID: "m1", Store: out, Secrets: callback.Secrets{Store: fakeSecrets{}},
				Render: staticRender{}, Policy: p, Poll: 10 * time.Millisecond, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { d.Run(ctx); close(done) }()
			deadline := time.Now().Add(5 * time.Second)
			for len(out.recorded()) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
			got := out.recorded()
			if len(got) != 1 {
				t.Fatalf("%d attempts recorded", len(got))
			}
			before := hits.Load()
			switch {
			case tc.allowed && !got[0].Delivered:
				t.Errorf("allowed receiver: %+v", got[0])
			case !tc.allowed && (got[0].Delivered || !strings.Contains(got[0].Error, "may not reach") || strings.Contains(got[0].Error, "127.0.0.1")):
				t.Errorf("forbidden receiver: %+v", got[0])
			case !tc.allowed && before != 0:
				t.Errorf("the forbidden receiver was reached")
			}
		})
	}
}
