package jobspec

import (
	"errors"
	"strings"
	"testing"

	"github.com/grappe/grappe/internal/lang"
)

func TestCheckFileName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"main.c", true},
		{"pkg/util.c", true},
		{"a/b/c/D.java", true},
		{"x-y.c", true},
		{"-x.c", false}, // a compiler reads it as an option
		{"pkg/-x.c", false},
		{"", false},
		{"/etc/passwd", false},
		{"../x", false},
		{"a/../b", false},
		{"a//b", false},
		{"./a", false},
		{"a/.", false},
		{"a\\b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"\xff.c", false},
		{strings.Repeat("a", MaxFileName), true},
		{strings.Repeat("a", MaxFileName+1), false},
	} {
		err := CheckFileName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckFileName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckFileName(%q) = %v, not ErrInvalid", tt.name, err)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"-O2", "-O2", true},
		{"-O2", "-O3", false},
		{"-std=*", "-std=c11", true},
		{"-std=*", "-std", false},
		{"-W*", "-Wl,-plugin=/x", true},
		{"-D*", "-DPATH=/a/b,c", true},
		{"*", "", true},
		{"a*b*c", "aXbYbc", true},
		{"a*b*c", "aXbYb", false},
		{"-fsanitize=*", "-fsanitize=", true},
	} {
		if got := Match(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// TestCompileArgs checks the embedded catalogue's lists: the usual flags
// pass, and every flag known to load or run another program is refused.
func TestCompileArgs(t *testing.T) {
	cat, err := lang.Default()
	if err != nil {
		t.Fatal(err)
	}
	entry := func(name string) *lang.Entry {
		e, ok := cat.Lookup(name)
		if !ok {
			t.Fatalf("no %s in the catalogue", name)
		}
		return e
	}
	ok := map[string][][]string{
		"c":    {{"-O3"}, {"-std=c11", "-Wall", "-Wextra", "-DX=5", "-lm"}, {"-Iinclude", "-I."}, {"-fsanitize=address", "-g"}},
		"cpp":  {{"-std=c++20", "-O2", "-Werror"}, {"-march=native"}},
		"java": {{"-g", "-Xlint:all"}, {"--release=17"}},
		"rust": {{"-Copt-level=3"}, {"-Awarnings", "--edition=2018"}},
		"go":   {{"-tags=foo"}, {"-gcflags=all=-N -l"}},
	}
	bad := map[string][][]string{
		"c": {
			{"-wrapper", "/bin/sh,-c,touch /tmp/x"}, {"-fplugin=/box/evil.so"}, {"-B/box"}, {"-specs=/box/s"},
			{"--sysroot=/box"}, {"@args.txt"}, {"-Wl,-plugin=/box/p.so"}, {"-Xlinker", "-plugin"},
			{"-Wa,-o,/x"}, {"-Wp,-MD,/x"}, {"-fdump-tree-all=/x"}, {"-o", "/tmp/x"}, {"-I/etc"},
			{"-I../x"}, {"-L/usr/lib/evil"}, {"-x", "c"}, {"-D", "X"}, {"-include", "/etc/passwd"},
			{"-fprofile-generate=/x"}, {"-save-temps"},
		},
		"cpp":    {{"-wrapper", "x"}, {"-fplugin=x"}},
		"java":   {{"-processorpath", "."}, {"-processor", "X"}, {"-J-Xmx1g"}, {"--processor-module-path", "."}, {"-Xplugin:X"}, {"@opts"}, {"-cp", "/"}},
		"rust":   {{"-C", "linker=/bin/sh"}, {"-Clinker=/bin/sh"}, {"-Clink-arg=-fuse-ld=x"}, {"-Clink-args=x"}, {"--extern", "x=/y"}, {"-Zunstable-options"}, {"-Lnative=/x"}},
		"go":     {{"-toolexec=/box/evil"}, {"-ldflags=-extld=/bin/sh"}, {"-exec=/bin/sh"}, {"-overlay=o.json"}, {"-x"}},
		"python": {{"-O"}},
	}
	for lang, cases := range ok {
		for _, args := range cases {
			if err := CheckCompileArgs(entry(lang), args); err != nil {
				t.Errorf("%s %q refused: %v", lang, args, err)
			}
		}
	}
	for lang, cases := range bad {
		for _, args := range cases {
			err := CheckCompileArgs(entry(lang), args)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s %q: %v, want ErrInvalid", lang, args, err)
			}
		}
	}
}
