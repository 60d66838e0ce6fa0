package jobspec

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/lang"
)

// Caps on a submission beyond the body size.
const (
	MaxFiles       = 200
	MaxArgs        = 1000
	MaxArgBytes    = 64 << 10
	MaxTests       = 500
	MaxLabels      = 32
	MaxLabelBytes  = 256
	MaxPriority    = 1000
	MaxJobAttempts = 10
	MaxVersion     = 64
)

// ErrUnknownLanguage is a job whose language no catalogue entry knows
// (errors.Is); the master answers it with the API's unknown_language.
var ErrUnknownLanguage = errors.New("unknown language")

// Catalogue is what Validate needs of the language catalogue.
type Catalogue interface {
	Lookup(name string) (*lang.Entry, bool)
	Names() []string
}

// Limits are the operator's resource limits: Default fills what a job
// leaves zero, Max bounds what it asks (a zero field: no maximum).
type Limits struct {
	Default, Max api.Limits
}

// Job is a submission validated and decoded: sources and inputs as bytes,
// the language the catalogue's entry, the limits filled in. Validate makes
// it; nothing downstream checks a rule again.
type Job struct {
	Lang     *lang.Entry
	Files    []File
	Stdin    []byte
	Expected []byte // nil: no expected output
	Tests    []Test
	Limits   api.Limits
}

// File is one source file; an empty Name is the language's default source
// name (the submission's "source").
type File struct {
	Name    string
	Content []byte
}

// Test is one test case of a job.
type Test struct {
	Stdin       []byte
	Expected    []byte
	HasExpected bool
}

// ReservedLabelPrefix starts the label keys grappe sets itself (the
// master marks interactive jobs with one); a submission may not use them.
const ReservedLabelPrefix = "grappe."

// Validate checks a submission against the catalogue and the limits, once,
// at submission. Every refusal is an *Error naming the field at fault, or
// wraps ErrUnknownLanguage. It does not change req: Normalize does.
func Validate(req *api.JobRequest, cat Catalogue, lim Limits) (*Job, error) {
	if req.Language == "" {
		return nil, &Error{Message: "language is required"}
	}
	entry, ok := cat.Lookup(req.Language)
	if !ok {
		return nil, fmt.Errorf("%w %q; known: %s", ErrUnknownLanguage, req.Language, strings.Join(cat.Names(), ", "))
	}
	j := &Job{Lang: entry}
	if len(req.Version) > MaxVersion {
		return nil, &Error{Message: "version is too long"}
	}
	if req.Source != "" {
		j.Files = append(j.Files, File{Content: []byte(req.Source)})
	}
	if len(req.Files) > MaxFiles {
		return nil, &Error{Message: fmt.Sprintf("at most %d files", MaxFiles)}
	}
	seen := map[string]bool{}
	for i, f := range req.Files {
		field := fmt.Sprintf("files[%d].name", i)
		if err := CheckFileName(f.Name); err != nil {
			return nil, &Error{Field: field, Message: err.Error()}
		}
		if seen[f.Name] {
			return nil, &Error{Field: field, Message: fmt.Sprintf("%q appears twice", f.Name)}
		}
		seen[f.Name] = true
		content, err := Decode(f.Content, f.Encoding)
		if err != nil {
			return nil, &Error{Field: fmt.Sprintf("files[%d]", i), Message: err.Error()}
		}
		j.Files = append(j.Files, File{Name: f.Name, Content: content})
	}
	if len(j.Files) == 0 {
		return nil, &Error{Message: "source or files is required"}
	}
	var err error
	if j.Stdin, err = Decode(req.Stdin, req.StdinEncoding); err != nil {
		return nil, &Error{Field: "stdin", Message: err.Error()}
	}
	if req.ExpectedOutput != nil {
		j.Expected = []byte(*req.ExpectedOutput)
	}
	if err := checkArgs("args", req.Args); err != nil {
		return nil, err
	}
	if err := checkArgs("compile_args", req.CompileArgs); err != nil {
		return nil, err
	}
	if err := CheckCompileArgs(entry, req.CompileArgs); err != nil {
		return nil, err
	}
	if len(req.Tests) > MaxTests {
		return nil, &Error{Message: fmt.Sprintf("at most %d tests", MaxTests)}
	}
	for i, t := range req.Tests {
		stdin, err := Decode(t.Stdin, t.StdinEncoding)
		if err != nil {
			return nil, &Error{Field: fmt.Sprintf("tests[%d].stdin", i), Message: err.Error()}
		}
		dt := Test{Stdin: stdin}
		if t.ExpectedOutput != nil {
			dt.Expected, dt.HasExpected = []byte(*t.ExpectedOutput), true
		}
		j.Tests = append(j.Tests, dt)
	}
	if req.Priority < -MaxPriority || req.Priority > MaxPriority {
		return nil, &Error{Message: fmt.Sprintf("priority must be between %d and %d", -MaxPriority, MaxPriority)}
	}
	if req.MaxAttempts < 0 || req.MaxAttempts > MaxJobAttempts {
		return nil, &Error{Message: fmt.Sprintf("max_attempts must be between 1 and %d", MaxJobAttempts)}
	}
	if len(req.Labels) > MaxLabels {
		return nil, &Error{Message: fmt.Sprintf("at most %d labels", MaxLabels)}
	}
	for k, val := range req.Labels {
		if k == "" || len(k) > MaxLabelBytes || len(val) > MaxLabelBytes {
			return nil, &Error{Field: "labels", Message: fmt.Sprintf("keys must be non-empty and keys and values at most %d bytes", MaxLabelBytes)}
		}
		if strings.HasPrefix(k, ReservedLabelPrefix) {
			return nil, &Error{Field: "labels", Message: fmt.Sprintf("%q: keys starting with %q are grappe's own", k, ReservedLabelPrefix)}
		}
	}
	if req.Interactive {
		switch {
		case len(req.Tests) > 0:
			return nil, &Error{Field: "tests", Message: "an interactive job has no test cases: its input comes from its attached client"}
		case len(j.Stdin) > 0:
			return nil, &Error{Field: "stdin", Message: "an interactive job reads its stdin from its attached client"}
		}
	}
	if j.Limits, err = FillLimits(req.Limits, lim); err != nil {
		return nil, err
	}
	return j, nil
}

// Normalize writes into req what validation decided, so that the stored
// request is the canonical one: the catalogue's name of the language and
// the limits filled in.
func (j *Job) Normalize(req *api.JobRequest) {
	req.Language = j.Lang.Name
	req.Limits = j.Limits
}

// FillLimits fills zero fields with the defaults and refuses what is
// negative or over the maxima.
func FillLimits(l api.Limits, lim Limits) (api.Limits, error) {
	d, mx := lim.Default, lim.Max
	// The output budget has a ceiling of its own (a result must stay far
	// below the transport's message size), and defaults when the operator
	// set other limits but not this one.
	maxTotal := min(cmp.Or(mx.TotalOutputKB, MaxTotalOutputKB), MaxTotalOutputKB)
	defTotal := min(cmp.Or(d.TotalOutputKB, DefaultTotalOutputKB), maxTotal)
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
			return l, &Error{Message: fmt.Sprintf("limits.%s must not be negative", f.name)}
		case *f.v == 0:
			*f.v = f.def
		case f.max > 0 && *f.v > f.max:
			return l, &Error{Message: fmt.Sprintf("limits.%s is %d, over the maximum %d", f.name, *f.v, f.max)}
		}
	}
	return l, nil
}

func checkArgs(field string, args []string) error {
	if len(args) > MaxArgs {
		return &Error{Field: field, Message: fmt.Sprintf("at most %d arguments", MaxArgs)}
	}
	total := 0
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return &Error{Message: fmt.Sprintf("%s[%d] contains a NUL byte", field, i)}
		}
		total += len(a)
	}
	if total > MaxArgBytes {
		return &Error{Field: field, Message: fmt.Sprintf("over %d bytes in all", MaxArgBytes)}
	}
	return nil
}

// Decode decodes a string of the API in its encoding (utf8, the default,
// or base64).
func Decode(s, encoding string) ([]byte, error) {
	switch encoding {
	case "", api.EncodingUTF8:
		return []byte(s), nil
	case api.EncodingBase64:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, errors.New("invalid base64")
		}
		return b, nil
	default:
		return nil, errors.New("encoding must be utf8 or base64")
	}
}
