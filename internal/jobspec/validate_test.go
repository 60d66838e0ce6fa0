package jobspec_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/jobspec"
	"github.com/grappe/grappe/internal/lang"
)

func limits() jobspec.Limits {
	return jobspec.Limits{
		Default: api.Limits{CPUMs: 5000, WallMs: 10000, MemoryMB: 256, Processes: 64, OutputKB: 1024},
		Max:     api.Limits{CPUMs: 60000, WallMs: 120000, MemoryMB: 4096, Processes: 1024, OutputKB: 65536},
	}
}

// Every refusal names its field, in the same words the API has always
// answered with.
func TestValidateRefusals(t *testing.T) {
	cat, err := lang.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body, field, msg string
	}{
		{`{"source":"x"}`, "", "language is required"},
		{`{"language":"c"}`, "", "source or files is required"},
		{`{"language":"c","files":[{"name":"-x.c","content":""}]}`, "files[0].name", `file name "-x.c" must not have a component starting with '-'`},
		{`{"language":"c","files":[{"name":"a.c","content":""},{"name":"a.c","content":""}]}`, "files[1].name", `"a.c" appears twice`},
		{`{"language":"c","files":[{"name":"a.c","content":"!","encoding":"base64"}]}`, "files[0]", "invalid base64"},
		{`{"language":"c","source":"x","stdin":"x","stdin_encoding":"rot13"}`, "stdin", "encoding must be utf8 or base64"},
		{`{"language":"c","source":"x","compile_args":["-fplugin=p.so"]}`, "compile_args[0]", `"-fplugin=p.so" is not an allowed compile flag for c (see the README's compile flag lists)`},
		{`{"language":"c","source":"x","tests":[{"stdin":"%","stdin_encoding":"base64"}]}`, "tests[0].stdin", "invalid base64"},
		{`{"language":"c","source":"x","priority":1001}`, "", "priority must be between -1000 and 1000"},
		{`{"language":"c","source":"x","max_attempts":11}`, "", "max_attempts must be between 1 and 10"},
		{`{"language":"c","source":"x","labels":{"":"v"}}`, "labels", "keys must be non-empty and keys and values at most 256 bytes"},
		{`{"language":"c","source":"x","labels":{"grappe.attach":"j1"}}`, "labels", `"grappe.attach": keys starting with "grappe." are grappe's own`},
		{`{"language":"c","source":"x","interactive":true,"tests":[{"stdin":""}]}`, "tests", "an interactive job has no test cases: its input comes from its attached client"},
		{`{"language":"c","source":"x","interactive":true,"stdin":"x"}`, "stdin", "an interactive job reads its stdin from its attached client"},
		{`{"language":"c","source":"x","limits":{"cpu_ms":-1}}`, "", "limits.cpu_ms must not be negative"},
		{`{"language":"c","source":"x","limits":{"memory_mb":5000}}`, "", "limits.memory_mb is 5000, over the maximum 4096"},
		{`{"language":"c","source":"x","limits":{"total_output_kb":40000}}`, "", "limits.total_output_kb is 40000, over the maximum 32768"},
	} {
		var req api.JobRequest
		if err := json.Unmarshal([]byte(tc.body), &req); err != nil {
			t.Fatal(err)
		}
		_, err := jobspec.Validate(&req, cat, limits())
		var e *jobspec.Error
		if !errors.As(err, &e) || e.Field != tc.field || e.Message != tc.msg || !errors.Is(err, jobspec.ErrInvalid) {
			t.Errorf("%s: %#v, want field %q message %q", tc.body, err, tc.field, tc.msg)
		}
	}
	_, err = jobspec.Validate(&api.JobRequest{Language: "cobol", Source: "x"}, cat, limits())
	if !errors.Is(err, jobspec.ErrUnknownLanguage) || !strings.Contains(err.Error(), `unknown language "cobol"; known: `) {
		t.Errorf("unknown language: %v", err)
	}
}

// A valid job comes back decoded, and Normalize makes the stored request
// canonical: the catalogue's name, every limit filled.
func TestValidateDecodesAndNormalizes(t *testing.T) {
	cat, err := lang.Default()
	if err != nil {
		t.Fatal(err)
	}
	want := "yes"
	req := &api.JobRequest{
		Language: "c", Files: []api.File{{Name: "main.c", Content: "aGk=", Encoding: api.EncodingBase64}},
		Stdin: "in", Tests: []api.TestCase{{Stdin: "t", ExpectedOutput: &want}},
		Limits: api.Limits{CPUMs: 100},
	}
	j, err := jobspec.Validate(req, cat, limits())
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Files) != 1 || string(j.Files[0].Content) != "hi" || string(j.Stdin) != "in" ||
		len(j.Tests) != 1 || !j.Tests[0].HasExpected || string(j.Tests[0].Expected) != "yes" {
		t.Errorf("decoded %+v", j)
	}
	if j.Limits.CPUMs != 100 || j.Limits.WallMs != 10000 || j.Limits.TotalOutputKB != jobspec.DefaultTotalOutputKB {
		t.Errorf("limits %+v", j.Limits)
	}
	j.Normalize(req)
	if req.Language != j.Lang.Name || req.Limits != j.Limits {
		t.Errorf("normalized request %+v", req)
	}
	// The stored form validates again to the same job.
	again, err := jobspec.Validate(req, cat, limits())
	if err != nil || again.Limits != j.Limits {
		t.Errorf("stored form: %+v, %v", again, err)
	}
}
