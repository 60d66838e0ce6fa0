package master

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/grappe/grappe/internal/store/sqlite"
	"github.com/grappe/grappe/internal/workerlink"
)

func TestDialableAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:7701": "127.0.0.1:7701",
		"[::]:7701":      "127.0.0.1:7701",
		"0.0.0.0:7701":   "127.0.0.1:7701",
		":7701":          "127.0.0.1:7701",
		"10.1.2.3:7701":  "10.1.2.3:7701",
	} {
		if got := dialableAddr(addr, true); got != want {
			t.Errorf("dialableAddr(%q) = %q, want %q", addr, got, want)
		}
	}
	if got := dialableAddr(":7701", false); got == "127.0.0.1:7701" || got == ":7701" {
		t.Errorf("exec: %q, want this host's name", got)
	}
}

// TestForgetKeepsWhatTheSweepNeeds: a stopped worker leaves the list at
// once, unless it is still connected or still holds attempts, which the
// sweep must re-queue when it declares it lost.
func TestForgetKeepsWhatTheSweepNeeds(t *testing.T) {
	st, err := sqlite.New(sqlite.Config{Path: filepath.Join(t.TempDir(), "grappe.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	discard := slog.New(slog.DiscardHandler)
	m := &Master{workers: map[string]*workerEntry{
		"gone":      {name: "gone", attempts: map[string]int{}},
		"connected": {name: "connected", attempts: map[string]int{}, session: &workerlink.Link{}},
		"holding":   {name: "holding", attempts: map[string]int{"job": 1}},
	}, store: st, log: discard, audit: discard}
	c := autoscaleCluster{m}
	if !c.Forget("gone") || !c.Forget("never-known") || c.Forget("connected") || c.Forget("holding") {
		t.Fatal("wrong answers")
	}
	if _, ok := m.workers["gone"]; ok || len(m.workers) != 2 {
		t.Fatalf("workers left: %v", m.workers)
	}
}
