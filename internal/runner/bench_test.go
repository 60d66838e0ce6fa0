package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkRunCachedC is the runner's whole per-job cost for a trivial C
// program whose compilation is cached: work directory, sources, cache
// lookup, exec, output, clean-up. BenchmarkBareExecC is the same binary run
// directly, for comparison in the same run:
//
//	go test -run - -bench 'CachedC|BareExecC' ./internal/runner
func BenchmarkRunCachedC(b *testing.B) {
	r := benchRunner(b)
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

func BenchmarkBareExecC(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "main.c")
	bin := filepath.Join(dir, "main")
	if err := writeFileForBench(src, "int main(void){return 0;}"); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		b.Skipf("gcc: %v %s", err, out)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := exec.Command(bin).Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRunner(b *testing.B) *Runner {
	r := newRunner(b, nil)
	if _, _, err := r.toolchain("c", ""); err != nil {
		b.Skipf("no C toolchain: %v", err)
	}
	return r
}

func writeFileForBench(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
