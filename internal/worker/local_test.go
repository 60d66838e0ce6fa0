package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/sandbox"
)

const bashOnly = `languages:
  - name: bash
    extensions: [.sh]
    binaries: [/bin/bash, /usr/bin/bash, bash]
    version:
      command: ["{bin}", "--version"]
      regex: 'version (\d+\.\d+(?:\.\d+)?)'
    source: main.sh
    run: ["{bin}", "{main}"]
    test:
      source: echo ok
      stdout: "ok\n"
`

// breakable fails every command while broken, as a sandbox whose cgroup
// is gone does.
type breakable struct {
	sandbox.Plain
	broken atomic.Bool
}

func (b *breakable) Exec(ctx context.Context, cmd *sandbox.Cmd) (*sandbox.Outcome, error) {
	if b.broken.Load() {
		return nil, syscall.ENODEV
	}
	return b.Plain.Exec(ctx, cmd)
}

// Recheck is what tells a repaired worker from a still broken one.
func TestRecheckRunsTheSelfTestsAgain(t *testing.T) {
	cat, err := lang.Parse(nil, []byte(bashOnly), "test")
	if err != nil {
		t.Fatal(err)
	}
	sb := &breakable{}
	ctx := context.Background()
	tb, err := PrepareToolbox(ctx, ToolboxConfig{
		DataDir: t.TempDir(), Catalogue: cat, Sandbox: sb, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	select {
	case <-tb.Tested():
	case <-time.After(30 * time.Second):
		t.Fatal("self-tests did not end")
	}
	if langs, _ := tb.Languages(); len(langs) != 1 {
		t.Skipf("no working bash here: %v", langs)
	}
	if err := tb.Recheck(ctx); err != nil {
		t.Fatalf("a working sandbox: %v", err)
	}
	sb.broken.Store(true)
	if err := tb.Recheck(ctx); !errors.Is(err, ErrSelfTest) {
		t.Fatalf("a broken sandbox: %v, want ErrSelfTest", err)
	}
}
