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
// runner's own work (work directory, sources, compile-cache copy, removal),
// with the work directories on disk and on a tmpfs (sandbox.Scratch).
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
	for _, tmpfs := range []bool{false, true} {
		name := "disk"
		if tmpfs {
			name = "tmpfs"
		}
		b.Run(name, func(b *testing.B) {
			work := filepath.Join(b.TempDir(), "w")
			if tmpfs {
				s, err := sandbox.MountScratch(work, 64<<20)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
			}
			r := newRunner(b, func(c *Config) { c.Sandbox = sb; c.WorkRoot = work; c.CacheDir = b.TempDir() })
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
		})
	}
}
