package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/sandbox"
)

// counting counts the commands it runs and records them, in order.
type counting struct {
	sandbox.Plain
	n    atomic.Int64
	mu   sync.Mutex
	cmds []string
	// gate, if set, is called before each command (it may block).
	gate func(args []string)
	// fail makes the commands whose words contain it fail.
	fail atomic.Value // string
}

func (c *counting) Exec(ctx context.Context, cmd *sandbox.Cmd) (*sandbox.Outcome, error) {
	c.n.Add(1)
	line := strings.Join(cmd.Args, " ")
	c.mu.Lock()
	c.cmds = append(c.cmds, line)
	c.mu.Unlock()
	if c.gate != nil {
		c.gate(cmd.Args)
	}
	if f, _ := c.fail.Load().(string); f != "" && strings.Contains(line, f) {
		return nil, errors.New("broken")
	}
	return c.Plain.Exec(ctx, cmd)
}

const shellSource = `languages:
  - name: sh1
    extensions: [.sh1]
    binaries: [BIN]
    version: {command: ["{bin}", "--version"], regex: 'version (\d+\.\d+)'}
    source: main.sh
    run: ["{bin}", "{main}"]
    test: {source: "echo one", stdout: "one\n"}
  - name: sh2
    extensions: [.sh2]
    binaries: [BIN]
    version: {command: ["{bin}", "--version"], regex: 'version (\d+\.\d+)'}
    source: main.sh
    run: ["{bin}", "{main}"]
    test: {source: "echo two", stdout: "two\n"}
  - name: slowc
    extensions: [.slowc]
    binaries: [BIN]
    version: {command: ["{bin}", "--version"], regex: 'version (\d+\.\d+)'}
    source: main.sh
    compile: ["{bin}", "-c", "echo built > $XCACHE/seed && cp main.sh prog"]
    compile_env: ["XCACHE={cache}"]
    artifacts: [prog]
    run: ["{bin}", "prog"]
    test: {source: "echo three", stdout: "three\n"}
`

// shellCatalogue makes languages run by a copy of bash at bin: "sh1" and
// "sh2" interpreted, "slowc" compiled (its compile writes to {cache}).
func shellCatalogue(t *testing.T, bin string) *lang.Catalogue {
	t.Helper()
	src := shellSource
	cat, err := lang.Parse(nil, []byte(strings.ReplaceAll(src, "BIN", bin)), "test")
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// copyBash puts a copy of bash in a directory of its own: a toolchain the
// test can change.
func copyBash(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/bin/bash")
	if err != nil {
		t.Skip("no /bin/bash")
	}
	bin := filepath.Join(t.TempDir(), "bash")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// prepare starts a toolbox and returns it with the languages it announced
// before its first self-test could have ended, and once all ended.
func prepare(t *testing.T, cfg ToolboxConfig) (tb *Toolbox, atOnce, all []string) {
	t.Helper()
	cfg.Logger = quiet()
	// What is announced at once is read before any self-test may end: a
	// self-test of the counting sandbox takes microseconds, and would
	// otherwise race the reading.
	release := make(chan struct{})
	if c, ok := cfg.Sandbox.(*counting); ok {
		inner := c.gate
		c.gate = func(args []string) {
			<-release
			if inner != nil {
				inner(args)
			}
		}
	}
	tb, err := PrepareToolbox(context.Background(), cfg)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	atOnce = names(tb)
	close(release)
	select {
	case <-tb.Tested():
	case <-time.After(30 * time.Second):
		t.Fatal("self-tests did not end")
	}
	return tb, atOnce, names(tb)
}

func names(tb *Toolbox) []string {
	langs, _ := tb.Languages()
	var out []string
	for _, l := range langs {
		out = append(out, l.Name)
	}
	return out
}

// A second start with unchanged toolchains announces everything at once
// and runs no self-test at all.
func TestSelfTestCacheAnnouncesAtOnce(t *testing.T) {
	bin, data := copyBash(t), t.TempDir()
	cat := shellCatalogue(t, bin)
	sb := &counting{}
	_, _, all := prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: sb})
	if !slices.Equal(all, []string{"sh1", "sh2", "slowc"}) {
		t.Fatalf("first start announced %v", all)
	}
	if sb.n.Load() == 0 {
		t.Fatal("the first start ran no self-test")
	}
	sb2 := &counting{}
	_, atOnce, all := prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: sb2})
	if !slices.Equal(atOnce, []string{"sh1", "sh2", "slowc"}) || !slices.Equal(all, atOnce) {
		t.Fatalf("warm start announced %v at once, %v in the end", atOnce, all)
	}
	if n := sb2.n.Load(); n != 0 {
		t.Fatalf("warm start ran %d commands: %v", n, sb2.cmds)
	}
}

// Any change to the toolchain's binary (here its modification time, then
// its content at the same size and time) or to its catalogue entry makes
// the next start test it again.
func TestSelfTestCacheInvalidatedByAChangedToolchain(t *testing.T) {
	bin, data := copyBash(t), t.TempDir()
	cat := shellCatalogue(t, bin)
	prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: &counting{}})

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(bin, later, later); err != nil {
		t.Fatal(err)
	}
	sb := &counting{}
	_, atOnce, all := prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: sb})
	if len(atOnce) != 0 || len(all) != 3 || sb.n.Load() == 0 {
		t.Fatalf("touched binary: announced %v at once (want none), %v in the end, %d commands", atOnce, all, sb.n.Load())
	}

	// Replaced by another file of the same size and times: a new inode.
	fi, _ := os.Stat(bin)
	b, _ := os.ReadFile(bin)
	tmp := bin + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	_, atOnce, _ = prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: &counting{}})
	if len(atOnce) != 0 {
		t.Fatalf("replaced binary: announced %v at once, want none", atOnce)
	}

	// A changed self-test in the catalogue.
	other, err := lang.Parse(nil, []byte(strings.Replace(string(mustCatalogueYAML(t, bin)), "echo one", "echo  one", 1)), "test")
	if err != nil {
		t.Fatal(err)
	}
	_, atOnce, _ = prepare(t, ToolboxConfig{DataDir: data, Catalogue: other, Sandbox: &counting{}})
	if slices.Contains(atOnce, "sh1") || !slices.Contains(atOnce, "sh2") {
		t.Fatalf("changed entry of sh1: announced %v at once, want sh2 and slowc only", atOnce)
	}
}

func mustCatalogueYAML(t *testing.T, bin string) []byte {
	t.Helper()
	return []byte(strings.ReplaceAll(shellSource, "BIN", bin))
}

// An entry another user could have written, or planted as a link, is
// ignored, and so is a whole directory others can write.
func TestSelfTestCacheIgnoresUnsafeEntries(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	bin, data := copyBash(t), t.TempDir()
	cat := shellCatalogue(t, bin)
	prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: &counting{}})
	dir := filepath.Join(data, "selftest")
	entry := func(l string) string { return filepath.Join(dir, l+".json") }

	// sh1: readable by others; sh2: owned by another user; slowc: a
	// symbolic link to a valid entry elsewhere.
	if err := os.Chmod(entry("sh1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(entry("sh2"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "slowc.json")
	if err := os.Rename(entry("slowc"), elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, entry("slowc")); err != nil {
		t.Fatal(err)
	}
	_, atOnce, all := prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: &counting{}})
	if len(atOnce) != 0 || len(all) != 3 {
		t.Fatalf("unsafe entries: announced %v at once (want none), %v in the end", atOnce, all)
	}
	// The self-tests rewrote them, safely: the next start trusts them.
	_, atOnce, _ = prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: &counting{}})
	if len(atOnce) != 3 {
		t.Fatalf("rewritten entries: announced %v at once", atOnce)
	}
	// A directory that others may write: nothing in it is trusted.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, atOnce, _ = prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: &counting{}})
	if len(atOnce) != 0 {
		t.Fatalf("open directory: announced %v at once, want none", atOnce)
	}
}

// A toolchain with a cache seed (Go's GOCACHE) is trusted only with its
// seed there: otherwise its self-test runs again, and fills it.
func TestSelfTestCacheNeedsTheSeed(t *testing.T) {
	bin, data := copyBash(t), t.TempDir()
	cat := shellCatalogue(t, bin)
	prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: &counting{}})
	seeds, err := filepath.Glob(filepath.Join(data, "toolcache", "slowc-*.seed"))
	if err != nil || len(seeds) != 1 {
		t.Fatalf("seeds %v %v", seeds, err)
	}
	if err := os.RemoveAll(seeds[0]); err != nil {
		t.Fatal(err)
	}
	_, atOnce, all := prepare(t, ToolboxConfig{DataDir: data, Catalogue: cat, Sandbox: &counting{}})
	if !slices.Equal(atOnce, []string{"sh1", "sh2"}) || len(all) != 3 {
		t.Fatalf("no seed: announced %v at once, %v in the end", atOnce, all)
	}
	if b, err := os.ReadFile(filepath.Join(seeds[0], "seed")); err != nil || string(b) != "built\n" {
		t.Fatalf("the seed was not filled again: %q %v", b, err)
	}
}

// Interpreters are tested first, and each language is announced as soon
// as its own test passes: sh1 and sh2 are offered while slowc still
// compiles.
func TestSelfTestsAnnounceAsTheyPass(t *testing.T) {
	bin := copyBash(t)
	release := make(chan struct{})
	sb := &counting{}
	var compiled atomic.Bool
	sb.gate = func(args []string) {
		if slices.Contains(args, "-c") {
			compiled.Store(true)
			<-release
		}
	}
	tb, err := PrepareToolbox(context.Background(), ToolboxConfig{
		DataDir: t.TempDir(), Catalogue: shellCatalogue(t, bin), Sandbox: sb, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
		<-tb.Tested()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Equal(names(tb), []string{"sh1", "sh2"}) || !compiled.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("announced %v while the compile is held (compile started: %v)", names(tb), compiled.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := tb.Testing(); len(got) != 1 || got[0].Name != "slowc" {
		t.Fatalf("still testing %v, want [slowc]", got)
	}
	// The interpreters' runs all came before the compile.
	sb.mu.Lock()
	first := slices.IndexFunc(sb.cmds, func(c string) bool { return strings.Contains(c, " -c ") })
	for _, c := range sb.cmds[first+1:] {
		if strings.HasSuffix(c, "main.sh") {
			t.Errorf("an interpreter ran after the compile began: %v", sb.cmds)
		}
	}
	sb.mu.Unlock()
	close(release)
	<-tb.Tested()
	if got := names(tb); !slices.Equal(got, []string{"sh1", "sh2", "slowc"}) || len(tb.Testing()) != 0 {
		t.Fatalf("in the end %v, still testing %v", got, tb.Testing())
	}
}

// A toolchain that fails a later check while others pass is withdrawn,
// and its cached verdict forgotten; when every check fails, the machinery
// is at fault and the languages stay, for after the repair.
func TestRecheckWithdrawsABrokenToolchain(t *testing.T) {
	bin, data := copyBash(t), t.TempDir()
	sb := &counting{}
	tb, _, all := prepare(t, ToolboxConfig{DataDir: data, Catalogue: shellCatalogue(t, bin), Sandbox: sb})
	if len(all) != 3 {
		t.Fatalf("announced %v", all)
	}
	_, gen := tb.Languages()
	sb.fail.Store(bin) // everything fails
	if err := tb.Recheck(context.Background()); !errors.Is(err, ErrSelfTest) {
		t.Fatalf("Recheck: %v", err)
	}
	if got, g := tb.Languages(); len(got) != 3 || g != gen {
		t.Fatalf("everything failed: languages %v (generation %d, was %d), want them kept", got, g, gen)
	}
	// Only sh1's self-test fails now (its program is "echo one").
	sb.fail.Store("")
	sb.gate = nil
	brokenOne := &oneBroken{counting: sb}
	tb.sandbox = brokenOne
	tb.base.Sandbox = brokenOne
	if err := tb.Recheck(context.Background()); !errors.Is(err, ErrSelfTest) {
		t.Fatalf("Recheck: %v", err)
	}
	if got := names(tb); !slices.Equal(got, []string{"sh2", "slowc"}) {
		t.Fatalf("after sh1 failed: %v, want [sh2 slowc]", got)
	}
	if _, err := os.Stat(filepath.Join(data, "selftest", "sh1.json")); !os.IsNotExist(err) {
		t.Fatalf("sh1's cache entry is still there: %v", err)
	}
}

// oneBroken fails the runs whose program prints "one".
type oneBroken struct{ *counting }

func (o *oneBroken) Exec(ctx context.Context, cmd *sandbox.Cmd) (*sandbox.Outcome, error) {
	if src, err := os.ReadFile(filepath.Join(cmd.Dir, "main.sh")); err == nil && strings.Contains(string(src), "one") {
		return nil, errors.New("broken toolchain")
	}
	return o.counting.Exec(ctx, cmd)
}
