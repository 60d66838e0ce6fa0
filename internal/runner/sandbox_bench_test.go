package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/grappe/grappe/internal/sandbox"
)

// BenchmarkRunCachedCSandbox is the runner's whole per-job cost in the
// Linux sandbox, beside BenchmarkBareExecC and the sandbox package's
// BenchmarkSandboxOverhead (the sandbox alone): the difference is the
// runner's own work (work directory, sources, compile-cache copy, removal).
//
//	go test -run - -bench 'RunCachedC|BareExecC' ./internal/runner   # as root
func BenchmarkRunCachedCSandbox(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the sandbox needs root")
	}
	sb, err := sandbox.New(sandbox.Config{Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	r := newRunner(b, func(c *Config) { c.Sandbox = sb; c.WorkRoot = filepath.Join(b.TempDir(), "w") })
	spec := &Spec{Language: "c", Files: []File{{Content: []byte("int main(void){return 0;}")}}}
	ctx := context.Background()
	if res, err := r.Run(ctx, spec, nil); err != nil || res.Verdict != VerdictOK {
		b.Fatalf("warm-up: %+v %v", res, err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Run(ctx, spec, nil); err != nil {
			b.Fatal(err)
		}
	}
}
