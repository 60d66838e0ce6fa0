package piston

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/grappe/grappe/api"
)

func TestSatisfies(t *testing.T) {
	for _, tc := range []struct {
		version, selector string
		want              bool
	}{
		{"3.11.2", "*", true},
		{"3.11.2", "", true},
		{"3.11.2", "3.11.2", true},
		{"3.11.2", "3.11.1", false},
		{"3.11.2", "3", true},
		{"3.11.2", "3.x", true},
		{"3.11.2", "3.11.x", true},
		{"3.11.2", "3.*", true},
		{"3.11.2", "2.x", false},
		{"3.11.2", "3.1", false},
		{"3.11.2", "^3.8", true},
		{"3.11.2", "^3.12", false},
		{"0.4.2", "^0.4.0", true},
		{"0.5.0", "^0.4.0", false},
		{"3.11.2", "~3.11.0", true},
		{"3.12.0", "~3.11.0", false},
		{"3.11.2", ">=3.8", true},
		{"3.11.2", ">=3.8 <3.11", false},
		{"3.11.2", "<4", true},
		{"3.11.2", ">3.11", false},
		{"3.11.2", "<=3.11", true},
		{"12", "12.x", true},
		{"21.0.2+13", "21", true},
		{"1.22rc1", "*", true},
		{"1.22rc1", "1.22rc1", true},
		{"3.11.2", "latest", false},
	} {
		if got := satisfies(tc.version, tc.selector); got != tc.want {
			t.Errorf("satisfies(%q, %q) = %v, want %v", tc.version, tc.selector, got, tc.want)
		}
	}
}

func TestResolve(t *testing.T) {
	langs := []api.Language{
		{Name: "python", Version: "3.11.2", Versions: []string{"3.11.2", "3.9.1"}},
		{Name: "cpp", Version: "12.2.0"},
	}
	aliases := func(name string) []string {
		return map[string][]string{"python": {"py", "python3"}, "cpp": {"c++", "g++"}}[name]
	}
	for _, tc := range []struct {
		lang, version string
		want          selected
		ok            bool
	}{
		{"python", "*", selected{"python", "3.11.2"}, true},
		{"py", "3.9", selected{"python", "3.9.1"}, true},
		{"Python3", "3.x", selected{"python", "3.11.2"}, true},
		{"c++", "*", selected{"cpp", "12.2.0"}, true},
		{"python", "2.x", selected{}, false},
		{"cobol", "*", selected{}, false},
	} {
		got, ok := resolve(langs, aliases, tc.lang, tc.version)
		if got != tc.want || ok != tc.ok {
			t.Errorf("resolve(%q, %q) = %v %v, want %v %v", tc.lang, tc.version, got, ok, tc.want, tc.ok)
		}
	}
}

func TestJobRequest(t *testing.T) {
	langs := []api.Language{{Name: "python", Version: "3.11.2"}}
	aliases := func(string) []string { return []string{"py"} }
	for _, tc := range []struct {
		name    string
		body    string
		wantErr string
		check   func(t *testing.T, r *api.JobRequest)
	}{
		{name: "missing language", body: `{"version":"*","files":[]}`, wantErr: "language is required as a string"},
		{name: "language not a string", body: `{"language":3,"version":"*","files":[]}`, wantErr: "language is required as a string"},
		{name: "missing version", body: `{"language":"py","files":[]}`, wantErr: "version is required as a string"},
		{name: "files not an array", body: `{"language":"py","version":"*","files":{}}`, wantErr: "files is required as an array"},
		{name: "content not a string", body: `{"language":"py","version":"*","files":[{"content":1}]}`, wantErr: "files[0].content is required as a string"},
		{name: "unknown runtime", body: `{"language":"py","version":"2","files":[{"content":"x"}]}`, wantErr: "py-2 runtime is unknown"},
		{name: "no utf8 file", body: `{"language":"py","version":"*","files":[{"content":"eA==","encoding":"base64"}]}`, wantErr: "files must include at least one utf8 encoded file"},
		{name: "limit not a number", body: `{"language":"py","version":"*","files":[{"content":"x"}],"run_timeout":"fast"}`, wantErr: "If specified, run_timeout must be a number"},
		{name: "negative limit", body: `{"language":"py","version":"*","files":[{"content":"x"}],"run_cpu_time":-5}`, wantErr: "run_cpu_time must be non-negative"},
		{name: "bad hex", body: `{"language":"py","version":"*","files":[{"content":"x"},{"name":"d","content":"zz","encoding":"hex"}]}`, wantErr: "invalid hex"},
		{name: "unnamed main is the source", body: `{"language":"py","version":"*","files":[{"content":"print(1)"}],"stdin":"a","args":["x"]}`,
			check: func(t *testing.T, r *api.JobRequest) {
				if r.Language != "python" || r.Version != "3.11.2" || r.Source != "print(1)" || len(r.Files) != 0 {
					t.Errorf("request %+v", r)
				}
				if r.Stdin != "a\n" || len(r.Args) != 1 {
					t.Errorf("stdin %q (Piston adds a newline), args %v", r.Stdin, r.Args)
				}
			}},
		{name: "files, main first, hex to base64, limits", body: `{"language":"python","version":"3.x","files":[{"name":"data.bin","content":"00ff","encoding":"hex"},{"name":"m.py","content":"x"},{"content":"y"}],"run_timeout":1500,"run_cpu_time":1000,"run_memory_limit":1000000,"compile_timeout":-1,"run_memory_limit_x":1}`,
			check: func(t *testing.T, r *api.JobRequest) {
				if len(r.Files) != 3 || r.Files[0].Name != "m.py" || r.Files[1].Name != "data.bin" || r.Files[2].Name != "file2.code" {
					t.Fatalf("files %+v", r.Files)
				}
				if r.Files[1].Content != "AP8=" || r.Files[1].Encoding != api.EncodingBase64 {
					t.Errorf("hex file %+v", r.Files[1])
				}
				if r.Limits.WallMs != 1500 || r.Limits.CPUMs != 1000 || r.Limits.MemoryMB != 1 {
					t.Errorf("limits %+v", r.Limits)
				}
			}},
		{name: "minus one is the default", body: `{"language":"py","version":"*","files":[{"content":"x"}],"run_memory_limit":-1,"run_timeout":-1}`,
			check: func(t *testing.T, r *api.JobRequest) {
				if r.Limits != (api.Limits{}) {
					t.Errorf("limits %+v, want the defaults", r.Limits)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in executeRequest
			if err := json.Unmarshal([]byte(tc.body), &in); err != nil {
				t.Fatal(err)
			}
			req, _, err := in.jobRequest(langs, aliases)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if se, ok := err.(StatusError); !ok || se.HTTPStatus() != 400 {
					t.Fatalf("error %v is not a 400", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, req)
		})
	}
}

func TestResult(t *testing.T) {
	done := func(verdict string, run *api.Run, c *api.Compile) *api.Job {
		return &api.Job{Language: "c", Version: "12.2.0", Status: api.StatusDone, Verdict: verdict, Run: run, Compile: c}
	}
	for _, tc := range []struct {
		name           string
		job            *api.Job
		status, msg    string
		code           *int
		signal         string
		compile, equal bool
	}{
		{name: "ok", job: done(api.VerdictOK, &api.Run{Stdout: "hi\n"}, nil), code: ptr(0)},
		{name: "wrong answer is not Piston's business", job: done(api.VerdictWrongAnswer, &api.Run{Stdout: "hi\n"}, nil), code: ptr(0)},
		{name: "exit status", job: done(api.VerdictRuntimeError, &api.Run{ExitCode: 3}, nil), status: "RE", msg: "Exited with error status 3", code: ptr(3)},
		{name: "signal", job: done(api.VerdictRuntimeError, &api.Run{ExitCode: 139, Signal: "SIGSEGV"}, nil), status: "SG", msg: "Caught fatal signal 11", signal: "SIGSEGV"},
		{name: "time limit", job: done(api.VerdictTimeLimit, &api.Run{Signal: "SIGKILL"}, nil), status: "TO", msg: "Time limit exceeded", signal: "SIGKILL"},
		{name: "memory", job: done(api.VerdictMemoryLimit, &api.Run{}, nil), status: "SG", msg: "Memory limit exceeded", signal: "SIGKILL"},
		{name: "stdout limit", job: done(api.VerdictOutputLimit, &api.Run{Stdout: "xxxx", OutputTruncated: true}, nil), status: "OL", msg: "stdout length exceeded", signal: "SIGKILL"},
		{name: "stderr limit", job: done(api.VerdictOutputLimit, &api.Run{Stderr: "xxxx", OutputTruncated: true}, nil), status: "EL", msg: "stderr length exceeded", signal: "SIGKILL"},
		{name: "compiled", job: done(api.VerdictOK, &api.Run{}, &api.Compile{}), code: ptr(0), compile: true},
		{name: "compile error answers as run too", job: done(api.VerdictCompileError, nil, &api.Compile{ExitCode: 1, Stderr: "error"}),
			status: "RE", msg: "Exited with error status 1", code: ptr(1), compile: true, equal: true},
		{name: "failed", job: &api.Job{Status: api.StatusFailed, Error: "no worker runs c"}, status: "XX", msg: "no worker runs c"},
		{name: "cancelled", job: &api.Job{Status: api.StatusCancelled}, status: "XX", msg: "job cancelled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := result(tc.job, selected{"c", "12.2.0"})
			if res.Language != "c" || res.Version != "12.2.0" {
				t.Errorf("runtime %s %s", res.Language, res.Version)
			}
			r := res.Run
			if got := deref(r.Status); got != tc.status {
				t.Errorf("status %q, want %q", got, tc.status)
			}
			if got := deref(r.Message); got != tc.msg {
				t.Errorf("message %q, want %q", got, tc.msg)
			}
			if got := deref(r.Signal); got != tc.signal {
				t.Errorf("signal %q, want %q", got, tc.signal)
			}
			if (r.Code == nil) != (tc.code == nil) || (r.Code != nil && *r.Code != *tc.code) {
				t.Errorf("code %v, want %v", r.Code, tc.code)
			}
			if (res.Compile != nil) != tc.compile {
				t.Errorf("compile %+v", res.Compile)
			}
			if tc.equal && res.Compile != res.Run {
				t.Errorf("run is not the compile stage")
			}
		})
	}
}

func TestRunStageOutput(t *testing.T) {
	s := runStage(&api.Run{Stdout: "/w==", StdoutEncoding: api.EncodingBase64, Stderr: "e", CPUMs: 3, WallMs: 5, MemoryKB: 2}, api.VerdictOK)
	if s.Stdout != "\ufffd" || s.Output != "\ufffde" {
		t.Errorf("stdout %q output %q", s.Stdout, s.Output)
	}
	if *s.CPUTime != 3 || *s.WallTime != 5 || *s.Memory != 2048 {
		t.Errorf("cpu %d wall %d memory %d (bytes)", *s.CPUTime, *s.WallTime, *s.Memory)
	}
	b, _ := json.Marshal(s)
	for _, key := range []string{`"stdout"`, `"stderr"`, `"output"`, `"code"`, `"signal":null`, `"message":null`, `"status":null`, `"cpu_time"`, `"wall_time"`, `"memory"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s lacks %s", b, key)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
