package master

import (
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
)

// What a worker says of itself is bounded: a rogue worker can neither
// fill the API with a huge health reason nor keep jobs waiting for ever
// by claiming to self-test a language.
func TestWorkerSelfReportIsBounded(t *testing.T) {
	w := &workerEntry{}
	w.setHealth(&clusterpb.Health{Unhealthy: true, Reason: strings.Repeat("é", 1<<20)})
	if len(w.healthReason) > maxHealthReason+len("…") || !strings.HasSuffix(w.healthReason, "…") {
		t.Errorf("health reason kept %d bytes", len(w.healthReason))
	}
	langs := []*clusterpb.Language{{Name: "go", Version: "1.26"}}
	now := time.Now()
	w.connectedAt = now.Add(-time.Minute)
	w.setTesting(langs, now)
	if len(w.sched.Testing["go"]) != 1 {
		t.Fatalf("a worker connected a minute ago may still test go: %v", w.sched.Testing)
	}
	w.connectedAt = now.Add(-maxSelfTesting)
	w.setTesting(langs, now)
	if w.sched.Testing != nil {
		t.Fatalf("a worker connected %s ago still counts as testing: %v", maxSelfTesting, w.sched.Testing)
	}
}

// A worker's failures are counted from what the master saw: results with
// status failed and attempts given back for its machinery, over every
// attempt it ended.
func TestWorkerFailures(t *testing.T) {
	var f workerFailures
	var w api.Worker
	f.describe(&w, 0)
	if w.JobsFailed != 0 || w.FailureRate != 0 || w.LastError != "" || w.LastErrorAt != nil {
		t.Fatalf("no failure: %+v", w)
	}
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	f.failed("the compiler is gone", at)
	f.gaveBack("", at.Add(time.Second))
	// 4 results recorded (one failed) and one attempt given back: 2 of 5.
	f.describe(&w, 4)
	if w.JobsFailed != 2 || w.FailureRate != 0.4 || w.LastError != "(no reason given)" || !w.LastErrorAt.Equal(at.Add(time.Second)) {
		t.Fatalf("two failures: %+v", w)
	}
}
