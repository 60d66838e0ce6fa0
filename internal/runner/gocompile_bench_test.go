package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/sandbox"
)

// BenchmarkGoCompileSandbox is a Go hello world compiled in the Linux
// sandbox after the self-test, with a new source each time (no compile
// cache hit): what the toolchain cache ({cache}, GOCACHE) saves.
//
//	go test -run - -bench GoCompileSandbox -benchtime 5x ./internal/runner   # as root
func BenchmarkGoCompileSandbox(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the sandbox needs root")
	}
	setup(b)
	if _, _, err := shared.toolchain("go", ""); err != nil {
		b.Skip("no go toolchain")
	}
	sb, err := sandbox.New(sandbox.Config{Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	work := filepath.Join(b.TempDir(), "w")
	s, err := sandbox.MountScratch(work, 512<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := newRunner(b, func(c *Config) {
		c.Sandbox, c.WorkRoot, c.CacheDir, c.ToolCacheDir = sb, work, b.TempDir(), b.TempDir()
	})
	defer r.Close()
	if _, failed := r.SelfTest(context.Background()); failed["go"] != nil {
		b.Fatal(failed["go"])
	}
	b.ResetTimer()
	var compile time.Duration
	defer func() { b.ReportMetric(float64(compile.Milliseconds())/float64(b.N), "compile-ms/op") }()
	for i := 0; b.Loop(); i++ {
		src := fmt.Sprintf("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\", %d) }\n", i)
		res, err := r.Run(context.Background(), &Spec{Language: "go", Files: []File{{Content: []byte(src)}}}, nil)
		if err != nil || res.Verdict != VerdictOK {
			b.Fatalf("%+v %v", res, err)
		}
		compile += res.Compile.Wall
	}
}
