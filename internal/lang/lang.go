// Package lang is grappe's language catalogue: what languages exist, how to
// find and recognise their toolchains on a machine, and how to compile and
// run a program in each. Languages are data: an embedded YAML catalogue
// (catalogue.yaml, whose header documents the format) that operators extend
// or override with their own file.
//
// lang only describes and detects; internal/runner expands the command
// templates, runs the commands and the self-tests.
package lang

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed catalogue.yaml
var builtin []byte

// ErrInvalid marks a catalogue file that cannot be used.
var ErrInvalid = errors.New("lang: invalid catalogue")

// Entry is one language. Entries are immutable once loaded.
type Entry struct {
	Name       string       `yaml:"name"`
	Aliases    []string     `yaml:"aliases"`
	Extensions []string     `yaml:"extensions"`
	Binaries   []string     `yaml:"binaries"`
	Resolve    *Resolve     `yaml:"resolve"`
	Version    VersionProbe `yaml:"version"`
	Dirs       []string     `yaml:"dirs"`
	Source     string       `yaml:"source"`
	Class      *ClassRule   `yaml:"class"`
	Compile    []string     `yaml:"compile"`
	CompileEnv []string     `yaml:"compile_env"`
	Run        []string     `yaml:"run"`
	Env        []string     `yaml:"env"`
	Test       SelfTest     `yaml:"test"`
	// CompileFlags is the allow-list of the job's compile_args; a
	// language without one takes none. Checked by jobspec.
	CompileFlags CompileFlags `yaml:"compile_flags"`
	// Artifacts are the glob patterns (path.Match, relative to the work
	// directory) of what a compile produces that the run needs: only those
	// files are kept in the compile cache.
	Artifacts []string `yaml:"artifacts"`
	// Disabled, in an operator's file, removes the entry of that name.
	Disabled bool `yaml:"disabled"`

	versionRE *regexp.Regexp
	classRE   *regexp.Regexp
	packageRE *regexp.Regexp
	layer     int // 0 for the embedded catalogue, +1 per Load
}

// Resolve finds the real binary behind a detected one.
type Resolve struct {
	Command []string `yaml:"command"`
	// Path turns the command's first output line ({out}) into the binary's
	// path; empty means "{out}".
	Path string `yaml:"path"`
}

// VersionProbe tells the toolchain's version.
type VersionProbe struct {
	Command []string `yaml:"command"`
	Regex   string   `yaml:"regex"`
}

// ClassRule finds the main class of a Java-like source.
type ClassRule struct {
	Regex        string `yaml:"regex"`
	PackageRegex string `yaml:"package_regex"`
	Default      string `yaml:"default"`
}

// CompileFlags says which compile_args a language accepts. Patterns are
// whole-argument globs where "*" matches any run of characters (also "/"
// and ","). An argument is accepted when it matches Allow and no Deny
// pattern, or when it starts with one of Paths and the rest is a relative
// path inside the work directory ("-Iinclude", not "-I/etc" or "-I..").
type CompileFlags struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	Paths []string `yaml:"paths"`
}

// SelfTest is a tiny program that proves a toolchain works.
type SelfTest struct {
	Source string `yaml:"source"`
	Stdin  string `yaml:"stdin"`
	Stdout string `yaml:"stdout"`
}

// Compiled reports whether the language has a compile step.
func (e *Entry) Compiled() bool { return len(e.Compile) > 0 }

// UsesCache reports whether the compile step uses a toolchain cache
// ({cache}, Go's GOCACHE). The runner shows it to each compile as a
// read-only seed that only grappe's own self-test compile writes, under a
// layer private to the job.
func (e *Entry) UsesCache() bool {
	for _, w := range append(append([]string{}, e.Compile...), e.CompileEnv...) {
		if strings.Contains(w, "{cache}") {
			return true
		}
	}
	return false
}

// IsSource reports whether a file name has one of the language's
// extensions (compared case-insensitively).
func (e *Entry) IsSource(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext != "" && slices.Contains(e.Extensions, ext)
}

// ClassName is the {class} of a main source file: the package-qualified
// public class found in src, or else the file's base name without
// extension, or else the entry's default. It is "" for languages without a
// class rule.
func (e *Entry) ClassName(name string, src []byte) string {
	if e.Class == nil {
		return ""
	}
	class := ""
	if m := e.classRE.FindSubmatch(src); m != nil {
		class = string(m[1])
	} else if name != "" {
		base := path.Base(name)
		class = strings.TrimSuffix(base, path.Ext(base))
	} else {
		class = e.Class.Default
	}
	if e.packageRE != nil {
		if m := e.packageRE.FindSubmatch(src); m != nil {
			class = string(m[1]) + "." + class
		}
	}
	return class
}

// DefaultSourceName is the name to give a main source that came without
// one: Source with {class} expanded for src (a Java file is named after its
// public class, without the package).
func (e *Entry) DefaultSourceName(src []byte) string {
	class := e.ClassName("", src)
	if i := strings.LastIndexByte(class, '.'); i >= 0 {
		class = class[i+1:]
	}
	return ExpandString(e.Source, &Vars{Class: class})
}

// Catalogue is a set of languages, looked up by name, alias or extension.
// It is immutable and safe for concurrent use.
type Catalogue struct {
	entries []*Entry          // in file order, base entries first
	byName  map[string]*Entry // lower-cased names and aliases
	byExt   map[string]*Entry // lower-cased extensions with the dot
	layers  int
}

type file struct {
	Languages []*Entry `yaml:"languages"`
}

// Default returns the embedded catalogue.
func Default() (*Catalogue, error) {
	entries, err := parse(builtin, "embedded catalogue", 0)
	if err != nil {
		return nil, err
	}
	return build(nil, entries, 0)
}

// Load returns base extended with the catalogue file at path: an entry
// whose name exists in base replaces it, new ones are appended, disabled
// ones are removed. base may be nil. base itself is not modified.
func Load(base *Catalogue, path string) (*Catalogue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lang: %w", err)
	}
	layer := 1
	if base != nil {
		layer = base.layers + 1
	}
	entries, err := parse(data, path, layer)
	if err != nil {
		return nil, err
	}
	return build(base, entries, layer)
}

// Parse is Load for a catalogue held in memory; name is used in errors.
func Parse(base *Catalogue, data []byte, name string) (*Catalogue, error) {
	layer := 1
	if base != nil {
		layer = base.layers + 1
	}
	entries, err := parse(data, name, layer)
	if err != nil {
		return nil, err
	}
	return build(base, entries, layer)
}

// Lookup finds a language by name or alias, case-insensitively.
func (c *Catalogue) Lookup(name string) (*Entry, bool) {
	e, ok := c.byName[strings.ToLower(strings.TrimSpace(name))]
	return e, ok
}

// ByExtension finds the language of a file extension (".py" or "py") or
// file name ("main.py"), case-insensitively.
func (c *Catalogue) ByExtension(ext string) (*Entry, bool) {
	ext = strings.ToLower(ext)
	if i := strings.LastIndexByte(ext, '.'); i > 0 {
		ext = ext[i:]
	} else if i < 0 {
		ext = "." + ext
	}
	e, ok := c.byExt[ext]
	return e, ok
}

// Names returns the languages' names, sorted.
func (c *Catalogue) Names() []string {
	names := make([]string, 0, len(c.entries))
	for _, e := range c.entries {
		names = append(names, e.Name)
	}
	slices.Sort(names)
	return names
}

// Entries returns the entries in catalogue order.
func (c *Catalogue) Entries() []*Entry { return slices.Clone(c.entries) }

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9+#._-]*$`)

func parse(data []byte, src string, layer int) ([]*Entry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt field is a mistake, not a default
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, src, err)
	}
	seen := make(map[string]bool)
	for i, e := range f.Languages {
		if e == nil {
			return nil, fmt.Errorf("%w: %s: entry %d is empty", ErrInvalid, src, i)
		}
		e.layer = layer
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("%w: %s: entry %q: %v", ErrInvalid, src, e.Name, err)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("%w: %s: entry %q defined twice", ErrInvalid, src, e.Name)
		}
		seen[e.Name] = true
	}
	return f.Languages, nil
}

// check validates an entry and compiles its regular expressions.
func (e *Entry) check() error {
	e.Name = strings.ToLower(strings.TrimSpace(e.Name))
	if !validName.MatchString(e.Name) {
		return fmt.Errorf("invalid name %q", e.Name)
	}
	if e.Disabled {
		return nil
	}
	for i, a := range e.Aliases {
		e.Aliases[i] = strings.ToLower(strings.TrimSpace(a))
		if !validName.MatchString(e.Aliases[i]) {
			return fmt.Errorf("invalid alias %q", a)
		}
	}
	for i, x := range e.Extensions {
		x = strings.ToLower(x)
		if len(x) < 2 || x[0] != '.' || strings.ContainsAny(x[1:], "./\\ \x00") {
			return fmt.Errorf("invalid extension %q (want e.g. \".py\")", e.Extensions[i])
		}
		e.Extensions[i] = x
	}
	if len(e.Binaries) == 0 {
		return errors.New("no binaries")
	}
	if e.Source == "" {
		return errors.New("no source")
	}
	if len(e.Run) == 0 {
		return errors.New("no run command")
	}
	if len(e.Version.Command) == 0 || e.Version.Regex == "" {
		return errors.New("version needs command and regex")
	}
	var err error
	if e.versionRE, err = compileRE(e.Version.Regex); err != nil {
		return fmt.Errorf("version regex: %v", err)
	}
	if e.Class != nil {
		if e.classRE, err = compileRE(e.Class.Regex); err != nil {
			return fmt.Errorf("class regex: %v", err)
		}
		if e.Class.PackageRegex != "" {
			if e.packageRE, err = compileRE(e.Class.PackageRegex); err != nil {
				return fmt.Errorf("class package_regex: %v", err)
			}
		}
		if e.Class.Default == "" {
			e.Class.Default = "Main"
		}
	}
	if e.Test.Source == "" {
		return errors.New("no self-test source")
	}
	for _, p := range e.Artifacts {
		if _, err := path.Match(p, ""); err != nil || p == "" || strings.HasPrefix(p, "/") {
			return fmt.Errorf("invalid artifact pattern %q", p)
		}
	}
	if !e.Compiled() && (len(e.Artifacts) > 0 || len(e.CompileFlags.Allow)+len(e.CompileFlags.Paths) > 0) {
		return errors.New("artifacts and compile_flags need a compile command")
	}
	for _, p := range slices.Concat(e.CompileFlags.Allow, e.CompileFlags.Deny, e.CompileFlags.Paths) {
		if p == "" || strings.IndexByte(p, 0) >= 0 {
			return fmt.Errorf("invalid compile_flags pattern %q", p)
		}
	}
	return e.checkTemplates()
}

func compileRE(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, err
	}
	if re.NumSubexp() < 1 {
		return nil, fmt.Errorf("%q has no group", s)
	}
	return re, nil
}

// build merges entries of the given layer over base and indexes them.
func build(base *Catalogue, entries []*Entry, layer int) (*Catalogue, error) {
	c := &Catalogue{layers: layer}
	var list []*Entry
	if base != nil {
		list = slices.Clone(base.entries)
	}
	for _, e := range entries {
		i := slices.IndexFunc(list, func(o *Entry) bool { return o.Name == e.Name })
		switch {
		case e.Disabled && i >= 0:
			list = slices.Delete(list, i, i+1)
		case e.Disabled:
		case i >= 0:
			list[i] = e
		default:
			list = append(list, e)
		}
	}
	c.entries = list
	c.byName = make(map[string]*Entry)
	c.byExt = make(map[string]*Entry)
	// Aliases and extensions of later layers win over earlier ones; inside
	// one layer a conflict is an error. Names win over every alias.
	owner := make(map[string]int) // key → layer that claimed it
	claim := func(m map[string]*Entry, key string, e *Entry) error {
		if prev, ok := m[key]; ok && prev != e && owner[key] == e.layer {
			return fmt.Errorf("%w: %q claimed by both %q and %q", ErrInvalid, key, prev.Name, e.Name)
		}
		m[key] = e
		owner[key] = e.layer
		return nil
	}
	byLayer := slices.Clone(list)
	slices.SortStableFunc(byLayer, func(a, b *Entry) int { return a.layer - b.layer })
	for _, e := range byLayer {
		for _, a := range e.Aliases {
			if err := claim(c.byName, a, e); err != nil {
				return nil, err
			}
		}
	}
	clear(owner)
	for _, e := range byLayer {
		for _, x := range e.Extensions {
			if err := claim(c.byExt, x, e); err != nil {
				return nil, err
			}
		}
	}
	for _, e := range list {
		if prev, ok := c.byName[e.Name]; ok && prev != e && prev.layer == e.layer {
			return nil, fmt.Errorf("%w: %q is the name of %q and an alias of %q", ErrInvalid, e.Name, e.Name, prev.Name)
		}
		c.byName[e.Name] = e
	}
	return c, nil
}
