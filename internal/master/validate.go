package master

import (
	"cmp"
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/jobspec"
	"github.com/grappe/grappe/internal/lang"
)

// Caps on a submission beyond the body size.
const (
	maxFiles       = 200
	maxArgs        = 1000
	maxArgBytes    = 64 << 10
	maxTests       = 500
	maxLabels      = 32
	maxLabelBytes  = 256
	maxPriority    = 1000
	maxJobAttempts = 10
)

func invalid(format string, args ...any) error {
	return jobs.Errorf(jobs.CodeInvalid, format, args...)
}

// validated is a submission checked and decoded: sources and inputs as
// bytes, limits filled with the operator's defaults.
type validated struct {
	lang     *lang.Entry
	files    []decodedFile
	stdin    []byte
	expected []byte
	tests    []decodedTest
	limits   api.Limits
}

type decodedFile struct {
	name    string // empty: the language's default source name
	content []byte
}

type decodedTest struct {
	stdin       []byte
	expected    []byte
	hasExpected bool
}

// validate checks a submission against the catalogue and the limits. Every
// refusal names the field at fault.
func (m *Master) validate(req *api.JobRequest) (*validated, error) {
	if req.Language == "" {
		return nil, invalid("language is required")
	}
	entry, ok := m.catalogue.Lookup(req.Language)
	if !ok {
		return nil, jobs.Errorf(jobs.CodeUnknownLanguage,
			"unknown language %q; known: %s", req.Language, strings.Join(m.catalogue.Names(), ", "))
	}
	v := &validated{lang: entry}
	if len(req.Version) > 64 {
		return nil, invalid("version is too long")
	}
	if req.Source != "" {
		v.files = append(v.files, decodedFile{content: []byte(req.Source)})
	}
	if len(req.Files) > maxFiles {
		return nil, invalid("at most %d files", maxFiles)
	}
	seen := map[string]bool{}
	for i, f := range req.Files {
		if err := jobspec.CheckFileName(f.Name); err != nil {
			return nil, invalid("files[%d].name: %v", i, err)
		}
		if seen[f.Name] {
			return nil, invalid("files[%d].name: %q appears twice", i, f.Name)
		}
		seen[f.Name] = true
		content, err := decode(f.Content, f.Encoding)
		if err != nil {
			return nil, invalid("files[%d]: %v", i, err)
		}
		v.files = append(v.files, decodedFile{name: f.Name, content: content})
	}
	if len(v.files) == 0 {
		return nil, invalid("source or files is required")
	}
	var err error
	if v.stdin, err = decode(req.Stdin, req.StdinEncoding); err != nil {
		return nil, invalid("stdin: %v", err)
	}
	if req.ExpectedOutput != nil {
		v.expected = []byte(*req.ExpectedOutput)
	}
	if err := checkArgs("args", req.Args); err != nil {
		return nil, err
	}
	if err := checkArgs("compile_args", req.CompileArgs); err != nil {
		return nil, err
	}
	if err := jobspec.CheckCompileArgs(entry, req.CompileArgs); err != nil {
		return nil, invalid("%v", err)
	}
	if len(req.Tests) > maxTests {
		return nil, invalid("at most %d tests", maxTests)
	}
	for i, t := range req.Tests {
		stdin, err := decode(t.Stdin, t.StdinEncoding)
		if err != nil {
			return nil, invalid("tests[%d].stdin: %v", i, err)
		}
		dt := decodedTest{stdin: stdin}
		if t.ExpectedOutput != nil {
			dt.expected, dt.hasExpected = []byte(*t.ExpectedOutput), true
		}
		v.tests = append(v.tests, dt)
	}
	if req.Priority < -maxPriority || req.Priority > maxPriority {
		return nil, invalid("priority must be between %d and %d", -maxPriority, maxPriority)
	}
	if req.MaxAttempts < 0 || req.MaxAttempts > maxJobAttempts {
		return nil, invalid("max_attempts must be between 1 and %d", maxJobAttempts)
	}
	if len(req.Labels) > maxLabels {
		return nil, invalid("at most %d labels", maxLabels)
	}
	for k, val := range req.Labels {
		if k == "" || len(k) > maxLabelBytes || len(val) > maxLabelBytes {
			return nil, invalid("labels: keys must be non-empty and keys and values at most %d bytes", maxLabelBytes)
		}
	}
	if v.limits, err = m.limits(req.Limits); err != nil {
		return nil, err
	}
	return v, nil
}

// limits fills zero fields with the defaults and refuses what is negative
// or over the maxima.
func (m *Master) limits(l api.Limits) (api.Limits, error) {
	d, mx := m.cfg.DefaultLimits, m.cfg.MaxLimits
	// The output budget has a ceiling of its own (a result must stay far
	// below the transport's message size), and defaults when the operator
	// set other limits but not this one.
	maxTotal := min(cmp.Or(mx.TotalOutputKB, jobspec.MaxTotalOutputKB), jobspec.MaxTotalOutputKB)
	defTotal := min(cmp.Or(d.TotalOutputKB, jobspec.DefaultTotalOutputKB), maxTotal)
	fields := []struct {
		name     string
		v        *int64
		def, max int64
	}{
		{"cpu_ms", &l.CPUMs, d.CPUMs, mx.CPUMs},
		{"wall_ms", &l.WallMs, d.WallMs, mx.WallMs},
		{"memory_mb", &l.MemoryMB, d.MemoryMB, mx.MemoryMB},
		{"processes", &l.Processes, d.Processes, mx.Processes},
		{"output_kb", &l.OutputKB, d.OutputKB, mx.OutputKB},
		{"total_output_kb", &l.TotalOutputKB, defTotal, maxTotal},
	}
	for _, f := range fields {
		switch {
		case *f.v < 0:
			return l, invalid("limits.%s must not be negative", f.name)
		case *f.v == 0:
			*f.v = f.def
		case f.max > 0 && *f.v > f.max:
			return l, invalid("limits.%s is %d, over the maximum %d", f.name, *f.v, f.max)
		}
	}
	return l, nil
}

type errString string

func (e errString) Error() string { return string(e) }

func checkArgs(field string, args []string) error {
	if len(args) > maxArgs {
		return invalid("%s: at most %d arguments", field, maxArgs)
	}
	total := 0
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return invalid("%s[%d] contains a NUL byte", field, i)
		}
		total += len(a)
	}
	if total > maxArgBytes {
		return invalid("%s: over %d bytes in all", field, maxArgBytes)
	}
	return nil
}

func decode(s, encoding string) ([]byte, error) {
	switch encoding {
	case "", api.EncodingUTF8:
		return []byte(s), nil
	case api.EncodingBase64:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, errString("invalid base64")
		}
		return b, nil
	default:
		return nil, errString("encoding must be utf8 or base64")
	}
}

// encodeOutput returns output as a JSON-safe string: as is when it is valid
// UTF-8, else base64 with the encoding to say so.
func encodeOutput(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), api.EncodingBase64
}
