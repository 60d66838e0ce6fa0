package jobspec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/grappe/grappe/internal/lang"
)

// CheckCompileArgs checks a job's compile_args against its language's
// allow-list (lang.CompileFlags, from the catalogue). Compilers have
// options that load or run other programs (gcc -wrapper and -fplugin,
// javac -processorpath, rustc -C linker=, go -toolexec); an allow-list of
// known-safe flags keeps every one of them out, including those nobody
// thought of. A language without a compile step, or without a list,
// accepts no compile_args.
func CheckCompileArgs(e *lang.Entry, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if !e.Compiled() {
		return &Error{Field: "compile_args", Message: fmt.Sprintf("%s has no compile step", e.Name)}
	}
	for i, a := range args {
		if !flagAllowed(&e.CompileFlags, a) {
			return &Error{
				Field:   fmt.Sprintf("compile_args[%d]", i),
				Message: fmt.Sprintf("%q is not an allowed compile flag for %s (see the README's compile flag lists)", a, e.Name),
			}
		}
	}
	return nil
}

func flagAllowed(f *lang.CompileFlags, arg string) bool {
	if slices.ContainsFunc(f.Deny, func(p string) bool { return Match(p, arg) }) {
		return false
	}
	for _, p := range f.Paths {
		if rest, ok := strings.CutPrefix(arg, p); ok && rest != "" {
			return rest == "." || CheckFileName(rest) == nil
		}
	}
	return slices.ContainsFunc(f.Allow, func(p string) bool { return Match(p, arg) })
}

// Match reports whether s matches the glob pattern, where "*" matches any
// run of characters (including "/" and ",", unlike path.Match) and every
// other character only itself.
func Match(pattern, s string) bool {
	star, resume := -1, 0 // the last "*" seen and where in s its match ends
	p, i := 0, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, resume = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			// Let the last "*" take one more character and try again.
			resume++
			p, i = star+1, resume
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
