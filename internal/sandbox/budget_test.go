//go:build linux

package sandbox

import (
	"context"
	"testing"
)

// TestOutputBudgetShared: commands given one budget share it, both
// streams together; OnOutput sees exactly what is kept; once the budget
// is spent, the next command's first byte of output ends it. Both
// sandboxes use the same capture.
func TestOutputBudgetShared(t *testing.T) {
	for _, name := range []string{"plain", "linux"} {
		t.Run(name, func(t *testing.T) {
			var sb Sandbox = &Plain{}
			if name == "linux" {
				sb = newTestLinux(t, Config{})
			}
			b := NewOutputBudget(10000)
			var streamed int
			run := func(script string) *Outcome {
				t.Helper()
				o, err := sb.Exec(context.Background(), &Cmd{
					Args: sh(script), Dir: t.TempDir(), Budget: b, Limits: Limits{OutputBytes: 1 << 20},
					OnOutput: func(_ string, data []byte) { streamed += len(data) },
				})
				if err != nil {
					t.Fatal(err)
				}
				return o
			}
			o := run("head -c 3000 /dev/zero; head -c 3000 /dev/zero >&2")
			if o.OutputTruncated || len(o.Stdout)+len(o.Stderr) != 6000 || b.Exceeded() || b.Left() != 4000 {
				t.Fatalf("within the budget: truncated %v, %d+%d bytes, %d left", o.OutputTruncated, len(o.Stdout), len(o.Stderr), b.Left())
			}
			o = run("head -c 100000 /dev/zero; head -c 100000 /dev/zero >&2; sleep 10")
			if !o.OutputTruncated || len(o.Stdout)+len(o.Stderr) != 4000 || !b.Exceeded() || b.Left() != 0 {
				t.Errorf("past the budget: truncated %v, %d+%d bytes, %d left", o.OutputTruncated, len(o.Stdout), len(o.Stderr), b.Left())
			}
			if o.Wall > 5e9 {
				t.Errorf("the command was not killed at the budget: %v", o.Wall)
			}
			if streamed != 10000 {
				t.Errorf("OnOutput saw %d bytes, want the budget's 10000", streamed)
			}
		})
	}
}
