package cli

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestMasterFlagsReachTheConfig: every master flag ends up in the
// master's Config (a flag that is parsed but never copied is a silent
// no-op for the operator).
func TestMasterFlagsReachTheConfig(t *testing.T) {
	t.Setenv("GRAPPE_DATABASE", "")
	var f masterFlags
	cmd := &cobra.Command{Use: "master"}
	f.register(cmd, "127.0.0.1:0", "127.0.0.1:0")
	err := cmd.ParseFlags([]string{
		"--data", "/tmp/d", "--master-id", "m7", "--database", "postgres://u@h/db",
		"--max-queued-per-user", "7", "--worker-timeout", "9s", "--placement-timeout", "2m",
		"--heartbeat", "3s", "--rate-limit", "12", "--max-cpu", "80", "--max-mem", "70",
		"--max-conns-per-ip", "5", "--max-conns", "50", "--login-ttl", "1h", "--sync", "full", "--interactive-idle", "45s",
		"--max-queue-depth", "500", "--max-dispatch-lag", "750ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := f.config(slog.New(slog.DiscardHandler), nil)
	got := fmt.Sprint(c.DataDir, c.MasterID, c.Database, c.MaxQueuedPerUser, c.WorkerTimeout, c.PlacementTimeout,
		c.HeartbeatInterval, c.RequestsPerSecond, c.MaxCPUPercent, c.MaxMemoryPercent, c.MaxConnsPerAddr, c.MaxConns,
		c.LoginTTL, c.Synchronous, c.InteractiveIdle, c.MaxQueueDepth, c.MaxDispatchLag)
	want := fmt.Sprint("/tmp/d", "m7", "postgres://u@h/db", 7, 9*time.Second, 2*time.Minute,
		3*time.Second, 12.0, 80.0, 70.0, 5, 50, time.Hour, "full", 45*time.Second, 500, 750*time.Millisecond)
	if got != want {
		t.Errorf("config from flags:\n got %s\nwant %s", got, want)
	}
}

// TestBatchAndCallbackFlags: --max-batch and the callbacks' flags reach the
// master's Config; a bad --callback-allow is refused when parsed.
func TestBatchAndCallbackFlags(t *testing.T) {
	var f masterFlags
	cmd := &cobra.Command{Use: "master"}
	f.register(cmd, "127.0.0.1:0", "127.0.0.1:0")
	err := cmd.ParseFlags([]string{"--max-batch", "20", "--callback-allow", "127.0.0.0/8,10.0.0.7",
		"--callback-allow", "fd00::/8", "--callback-timeout", "3s", "--callback-retry-for", "1h"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.config(slog.New(slog.DiscardHandler), nil)
	got := fmt.Sprint(c.MaxBatch, c.Callbacks.Allow, c.Callbacks.Timeout, c.Callbacks.RetryFor)
	want := "20 [127.0.0.0/8 10.0.0.7/32 fd00::/8] 3s 1h0m0s"
	if got != want {
		t.Errorf("config from flags: got %s, want %s", got, want)
	}

	var bad masterFlags
	cmd = &cobra.Command{Use: "master"}
	bad.register(cmd, "127.0.0.1:0", "127.0.0.1:0")
	if err := cmd.ParseFlags([]string{"--callback-allow", "10.0.0.0/33"}); err == nil {
		t.Error("--callback-allow 10.0.0.0/33 was accepted")
	}
}
