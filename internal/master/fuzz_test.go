package master

import (
	"bytes"
	"encoding/json"
	"path"
	"strings"
	"testing"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/jobspec"
	"github.com/grappe/grappe/internal/lang"
)

// FuzzValidate feeds arbitrary bytes through what a submission goes
// through before it is stored: the API's strict JSON decoding, the
// validation, the worker spec and the stored form. Nothing may panic, and
// whatever is accepted must satisfy the rules the rest of the system
// relies on.
//
//	go test -run '^$' -fuzz FuzzValidate -fuzztime 30s ./internal/master
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		`{"language":"python","source":"print(1)"}`,
		`{"language":"c","files":[{"name":"main.c","content":"aW50IG1haW4oKXt9","encoding":"base64"}],"stdin":"x","args":["a"],"limits":{"cpu_ms":100}}`,
		`{"language":"java","files":[{"name":"a/B.java","content":"class B{}"}],"tests":[{"stdin":"1","expected_output":"2"}],"priority":5,"labels":{"gpu":"yes"}}`,
		`{"language":"c","files":[{"name":"../x","content":""}]}`,
		`{"language":"c","files":[{"name":"-x.c","content":""}]}`,
		`{"language":"c","files":[{"name":"src/-x.c","content":""}]}`,
		`{"language":"c","source":"x","compile_args":["-wrapper","/bin/sh,-c,id"]}`,
		`{"language":"c","source":"x","compile_args":["-O2"],"limits":{"total_output_kb":100}}`,
		`{"language":"c","source":"x","limits":{"total_output_kb":99999999}}`,
		`{"language":"py","source":"x","limits":{"memory_mb":-1}}`,
		`{"language":"bash","source":"x","stdin":"////","stdin_encoding":"base64","max_attempts":3}`,
		`{"language":"","source":""}`,
		`[]`, `null`, `{"language":1}`,
	} {
		f.Add([]byte(seed))
	}
	cat, err := lang.Default()
	if err != nil {
		f.Fatal(err)
	}
	m := &Master{catalogue: cat}
	m.cfg.setDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var req api.JobRequest
		if dec.Decode(&req) != nil {
			return
		}
		v, err := m.validate(&req)
		if err != nil {
			return
		}
		if len(v.Files) == 0 {
			t.Fatal("accepted a job without files")
		}
		for _, f := range v.Files {
			if f.Name == "" {
				continue
			}
			hostile := jobspec.CheckFileName(f.Name) != nil || strings.HasPrefix(path.Base(f.Name), "-") || strings.HasPrefix(f.Name, "/") || strings.ContainsAny(f.Name, "\\\x00")
			for _, part := range strings.Split(f.Name, "/") {
				hostile = hostile || part == "" || part == "." || part == ".."
			}
			if hostile {
				t.Fatalf("accepted a hostile file name %q", f.Name)
			}
		}
		l, mx := v.Limits, m.cfg.MaxLimits
		if l.CPUMs <= 0 || l.CPUMs > mx.CPUMs || l.WallMs <= 0 || l.WallMs > mx.WallMs ||
			l.MemoryMB <= 0 || l.MemoryMB > mx.MemoryMB || l.OutputKB <= 0 || l.OutputKB > mx.OutputKB ||
			l.TotalOutputKB <= 0 || l.TotalOutputKB > jobspec.MaxTotalOutputKB {
			t.Fatalf("accepted limits %+v outside (0, %+v]", l, mx)
		}
		spec := buildSpec(v, &req)
		if spec.Language != v.Lang.Name || len(spec.Files) != len(v.Files) {
			t.Fatalf("spec %+v does not match the submission", spec)
		}
		// The stored form must decode back and validate again (recovery
		// after a restart depends on it).
		v.Normalize(&req)
		b, err := json.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		var again api.JobRequest
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("stored form does not decode: %v", err)
		}
		if _, err := m.validate(&again); err != nil {
			t.Fatalf("stored form no longer validates: %v", err)
		}
	})
}

// TestValidateOneRule: what the runner would refuse is refused at
// submission (422), by the same rules (jobspec): a file name a compiler
// reads as an option, and compile flags that run other programs.
func TestValidateOneRule(t *testing.T) {
	cat, err := lang.Default()
	if err != nil {
		t.Fatal(err)
	}
	m := &Master{catalogue: cat}
	m.cfg.setDefaults()
	for _, body := range []string{
		`{"language":"c","files":[{"name":"-x.c","content":"int main(){}"}]}`,
		`{"language":"c","files":[{"name":"main.c","content":"int main(){}"},{"name":"lib/-o","content":""}]}`,
		`{"language":"c","source":"int main(){}","compile_args":["-wrapper","/bin/sh,-c,touch /tmp/x"]}`,
		`{"language":"c","source":"int main(){}","compile_args":["-fplugin=/box/p.so"]}`,
		`{"language":"java","source":"class A{}","compile_args":["-processorpath","."]}`,
		`{"language":"rust","source":"fn main(){}","compile_args":["-Clinker=/bin/sh"]}`,
		`{"language":"go","source":"package main","compile_args":["-toolexec=/box/x"]}`,
		`{"language":"python","source":"print(1)","compile_args":["-O2"]}`,
		`{"language":"c","source":"int main(){}","limits":{"total_output_kb":40000}}`,
	} {
		var req api.JobRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		if _, err := m.validate(&req); err == nil {
			t.Errorf("accepted %s", body)
		} else if !strings.Contains(err.Error(), "compile_args") && !strings.Contains(err.Error(), "name") && !strings.Contains(err.Error(), "total_output_kb") {
			t.Errorf("%s: refusal %q does not name the field", body, err)
		}
	}
	var req api.JobRequest
	json.Unmarshal([]byte(`{"language":"c","source":"int main(){}","compile_args":["-O3","-Wall","-DX=1"]}`), &req)
	v, err := m.validate(&req)
	if err != nil {
		t.Fatalf("usual flags refused: %v", err)
	}
	if v.Limits.TotalOutputKB != jobspec.DefaultTotalOutputKB {
		t.Errorf("total_output_kb defaults to %d, want %d", v.Limits.TotalOutputKB, jobspec.DefaultTotalOutputKB)
	}
	if got := buildSpec(v, &req).Limits.TotalOutputKb; got != jobspec.DefaultTotalOutputKB {
		t.Errorf("the worker's spec has total_output_kb %d", got)
	}
}
