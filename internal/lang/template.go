package lang

import (
	"fmt"
	"regexp"
	"strings"
)

// Vars are the values of the command template placeholders (see the
// header of catalogue.yaml).
type Vars struct {
	Bin    string // {bin}
	BinDir string // {bindir}
	Work   string // {work}
	Main   string // {main}
	Class  string // {class}
	Cache  string // {cache}
	Out    string // {out}
	// MemoryMB is the step's memory limit in MiB ({memory_mb}): a runtime
	// that sizes its heap from the machine (the JVM) is told the sandbox's
	// limit instead, which it cannot see from inside.
	MemoryMB string

	Src         []string // {src}
	Args        []string // {args}
	CompileArgs []string // {compile_args}
}

// placeholder matches an escaped brace or a {name}.
var placeholder = regexp.MustCompile(`\{\{|\}\}|\{([a-z_]+)\}`)

// listVars are the placeholders that expand to several words.
var listVars = map[string]bool{"src": true, "args": true, "compile_args": true}

func (v *Vars) str(name string) (string, bool) {
	switch name {
	case "bin":
		return v.Bin, true
	case "bindir":
		return v.BinDir, true
	case "work":
		return v.Work, true
	case "main":
		return v.Main, true
	case "class":
		return v.Class, true
	case "cache":
		return v.Cache, true
	case "out":
		return v.Out, true
	case "memory_mb":
		return v.MemoryMB, true
	}
	return "", false
}

func (v *Vars) list(name string) []string {
	switch name {
	case "src":
		return v.Src
	case "args":
		return v.Args
	case "compile_args":
		return v.CompileArgs
	}
	return nil
}

// Expand expands a command template into argument words. Templates are
// checked when the catalogue is loaded, so Expand does not fail: an
// unknown placeholder is left as it is.
func Expand(words []string, v *Vars) []string {
	out := make([]string, 0, len(words)+len(v.Src)+len(v.Args)+len(v.CompileArgs))
	for _, w := range words {
		if len(w) > 2 && w[0] == '{' && w[len(w)-1] == '}' && listVars[w[1:len(w)-1]] {
			out = append(out, v.list(w[1:len(w)-1])...)
			continue
		}
		out = append(out, ExpandString(w, v))
	}
	return out
}

// ExpandString expands the string placeholders of one word.
func ExpandString(s string, v *Vars) string {
	if !strings.ContainsAny(s, "{}") {
		return s
	}
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		switch m {
		case "{{":
			return "{"
		case "}}":
			return "}"
		}
		if val, ok := v.str(m[1 : len(m)-1]); ok {
			return val
		}
		return m
	})
}

// Where each placeholder may be used.
var (
	probeVars   = set("bin", "bindir")
	resolveVars = set("out")
	compileVars = set("bin", "bindir", "work", "main", "class", "cache", "src", "compile_args", "memory_mb")
	runVars     = set("bin", "bindir", "work", "main", "class", "src", "args", "memory_mb")
	envVars     = set("bin", "bindir", "work", "main", "class")
	sourceVars  = set("class")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// checkTemplate rejects placeholders that are unknown or out of place, and
// list placeholders that are not a whole word.
func checkTemplate(field string, words []string, allowed map[string]bool) error {
	for _, w := range words {
		whole := len(w) > 2 && w[0] == '{' && w[len(w)-1] == '}'
		for _, m := range placeholder.FindAllStringSubmatch(w, -1) {
			name := m[1]
			if name == "" {
				continue // escaped brace
			}
			if !allowed[name] {
				return fmt.Errorf("%s: placeholder {%s} not allowed here", field, name)
			}
			if listVars[name] && !(whole && w[1:len(w)-1] == name) {
				return fmt.Errorf("%s: list placeholder {%s} must be a whole word, not part of %q", field, name, w)
			}
		}
	}
	return nil
}

func checkEnv(field string, env []string, allowed map[string]bool) error {
	for _, kv := range env {
		if i := strings.IndexByte(kv, '='); i <= 0 {
			return fmt.Errorf("%s: %q is not KEY=VALUE", field, kv)
		}
	}
	return checkTemplate(field, env, allowed)
}

func (e *Entry) checkTemplates() error {
	if err := checkTemplate("version.command", e.Version.Command, probeVars); err != nil {
		return err
	}
	if e.Resolve != nil {
		if len(e.Resolve.Command) == 0 {
			return fmt.Errorf("resolve: no command")
		}
		if err := checkTemplate("resolve.command", e.Resolve.Command, probeVars); err != nil {
			return err
		}
		if err := checkTemplate("resolve.path", []string{e.Resolve.Path}, resolveVars); err != nil {
			return err
		}
	}
	if err := checkTemplate("dirs", e.Dirs, probeVars); err != nil {
		return err
	}
	if err := checkTemplate("source", []string{e.Source}, sourceVars); err != nil {
		return err
	}
	if strings.Contains(e.Source, "{class}") && e.Class == nil {
		return fmt.Errorf("source uses {class} without a class rule")
	}
	if err := checkTemplate("compile", e.Compile, compileVars); err != nil {
		return err
	}
	if err := checkTemplate("run", e.Run, runVars); err != nil {
		return err
	}
	if err := checkEnv("env", e.Env, envVars); err != nil {
		return err
	}
	compileEnv := set("bin", "bindir", "work", "main", "class", "cache")
	return checkEnv("compile_env", e.CompileEnv, compileEnv)
}
