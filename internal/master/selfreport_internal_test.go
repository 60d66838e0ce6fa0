package master

import (
	"strings"
	"testing"
	"time"

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
