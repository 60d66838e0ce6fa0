package master

import (
	"log/slog"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
)

// fakeLink is a link whose silence the test sets.
type fakeLink struct {
	silent time.Duration
	closed bool
}

func (f *fakeLink) Send(*clusterpb.MasterMessage)         {}
func (f *fakeLink) TrySend(*clusterpb.MasterMessage) bool { return true }
func (f *fakeLink) Close()                                { f.closed = true }
func (f *fakeLink) Silent(time.Time) time.Duration        { return f.silent }

// A worker is declared lost on evidence that it went quiet, not because
// the master fell behind: a link whose receive loop is busy (the master
// slow to handle what arrived) keeps its worker however old its last
// heartbeat looks; a link that waited a whole timeout for anything loses
// it, and so does a worker with no link.
func TestLossNeedsSilence(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0",
		WorkerTimeout: 2 * time.Second, HeartbeatInterval: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	old := time.Now().Add(-time.Minute)
	busy, quiet := &fakeLink{silent: 0}, &fakeLink{silent: 3 * time.Second}
	m.mu.Lock()
	for name, l := range map[string]workerLink{"busy": busy, "quiet": quiet, "gone": nil} {
		m.workers[name] = &workerEntry{name: name, identity: "id-" + name, status: api.WorkerUp,
			attempts: map[string]int{}, session: l, lastBeat: old}
	}
	m.mu.Unlock()
	m.sweep(t.Context(), time.Now())
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, want := range map[string]string{"busy": api.WorkerUp, "quiet": api.WorkerLost, "gone": api.WorkerLost} {
		if got := m.workers[name].status; got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if busy.closed || !quiet.closed {
		t.Errorf("closed: busy %v quiet %v; want only the quiet link closed", busy.closed, quiet.closed)
	}
}
