package judge0

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
)

func TestStatuses(t *testing.T) {
	want := []string{"In Queue", "Processing", "Accepted", "Wrong Answer", "Time Limit Exceeded",
		"Compilation Error", "Runtime Error (SIGSEGV)", "Runtime Error (SIGXFSZ)", "Runtime Error (SIGFPE)",
		"Runtime Error (SIGABRT)", "Runtime Error (NZEC)", "Runtime Error (Other)", "Internal Error", "Exec Format Error"}
	if len(statuses) != len(want) {
		t.Fatalf("%d statuses", len(statuses))
	}
	for i, s := range statuses {
		if s.ID != i+1 || s.Description != want[i] {
			t.Errorf("status %d: %+v, want %d %q", i, s, i+1, want[i])
		}
	}
}

func TestLanguageIDs(t *testing.T) {
	for id, name := range map[int]string{50: "c", 54: "cpp", 62: "java", 63: "javascript", 71: "python", 60: "go", 73: "rust", 46: "bash", 72: "ruby", 85: "perl"} {
		l, ok := languageByID(id)
		if !ok || l.Grappe != name {
			t.Errorf("id %d: %+v, want %s", id, l, name)
		}
	}
	got := available([]api.Language{{Name: "python", Version: "3.11.2"}, {Name: "c", Version: "12.2.0"}, {Name: "cobol", Version: "3"}})
	want := []languageEntry{{50, "C (GCC 12.2.0)"}, {71, "Python (3.11.2)"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("available: %+v, want %+v", got, want)
	}
}

func TestFields(t *testing.T) {
	for _, tc := range []struct {
		param   string
		fields  []string
		invalid []string
	}{
		{"", defaultFields, nil},
		{"stdout,status", []string{"stdout", "status"}, nil},
		{"*", allFields, nil},
		{"stdout,bogus,x", []string{"stdout"}, []string{"bogus", "x"}},
		{"bogus", defaultFields, []string{"bogus"}},
	} {
		fields, invalid := requestedFields(tc.param)
		if !reflect.DeepEqual(fields, tc.fields) || !reflect.DeepEqual(invalid, tc.invalid) {
			t.Errorf("fields %q: %v %v, want %v %v", tc.param, fields, invalid, tc.fields, tc.invalid)
		}
	}
}

func TestBase64(t *testing.T) {
	long := bytes.Repeat([]byte("abc"), 40)
	enc := encodeBase64(long)
	lines := strings.Split(strings.TrimSuffix(enc, "\n"), "\n")
	if len(lines) != 3 || len(lines[0]) != 60 || !strings.HasSuffix(enc, "\n") {
		t.Errorf("encode64 layout: %q", enc)
	}
	for _, in := range []string{enc, base64.StdEncoding.EncodeToString(long), base64.RawStdEncoding.EncodeToString(long), base64.URLEncoding.EncodeToString(long)} {
		b, err := decodeBase64(in)
		if err != nil || !bytes.Equal(b, long) {
			t.Errorf("decode %q: %q %v", in, b, err)
		}
	}
	if _, err := decodeBase64("!!!"); err == nil {
		t.Error("decoded garbage")
	}
}

func TestTimeFormats(t *testing.T) {
	for ms, want := range map[int64]string{0: "0.0", 2: "0.002", 1500: "1.5", 3000: "3.0", 12: "0.012"} {
		if got := seconds(ms); got != want {
			t.Errorf("seconds(%d) = %q, want %q", ms, got, want)
		}
	}
	if got := railsTime(time.Date(2026, 1, 2, 3, 4, 5, 600e6, time.UTC)); got != "2026-01-02T03:04:05.600Z" {
		t.Errorf("rails time %q", got)
	}
}

func TestShellWords(t *testing.T) {
	for in, want := range map[string][]string{
		"a b  c":              {"a", "b", "c"},
		`"hello world" 'x y'`: {"hello world", "x y"},
		`a\ b`:                {"a b"},
		`x; rm -rf / | cat`:   {"x", "rm", "-rf", "/", "cat"},
		`"a \"q\""`:           {`a "q"`},
		`$HOME`:               {"HOME"},
		"":                    nil,
	} {
		if got := shellWords(in); !reflect.DeepEqual(got, want) {
			t.Errorf("shellWords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSameOutput(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		same      bool
	}{
		{"1\n2\n", "1\n2", true},
		{"1  \n2\t\n\n\n", "1\n2", true},
		{"1\r\n2\r\n", "1\n2\n", true},
		{" 1\n", "1\n", false},
		{"1\n\n2", "1\n2", false},
		{"a\x00\n", "a", true}, // Ruby's rstrip drops NUL; grappe's comparison does not
	} {
		if got := sameOutput([]byte(tc.got), []byte(tc.want)); got != tc.same {
			t.Errorf("sameOutput(%q, %q) = %v", tc.got, tc.want, got)
		}
	}
}

func TestParseSubmission(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name   string
		body   string
		b64    bool
		errors fieldErrors
		check  func(t *testing.T, p *parsed)
	}{
		{name: "blank", body: `{}`, errors: fieldErrors{"source_code": {"can't be blank"}, "language_id": {"can't be blank"}}},
		{name: "unknown language", body: `{"source_code":"x","language_id":150000}`, errors: fieldErrors{"language_id": {"language with id 150000 doesn't exist"}}},
		{name: "not numbers", body: `{"source_code":"x","language_id":"abc","cpu_time_limit":"fast"}`,
			errors: fieldErrors{"language_id": {"is not a number"}, "cpu_time_limit": {"is not a number"}}},
		{name: "ranges", body: `{"source_code":"x","language_id":71,"wall_time_limit":0.5,"memory_limit":100,"number_of_runs":21,"max_processes_and_or_threads":0}`,
			errors: fieldErrors{"wall_time_limit": {"must be greater than or equal to 1"}, "memory_limit": {"must be greater than or equal to 2048"},
				"number_of_runs": {"must be less than or equal to 20"}, "max_processes_and_or_threads": {"must be greater than 0"}}},
		{name: "compiler options of a script", body: `{"source_code":"x","language_id":71,"compiler_options":"-O3"}`,
			errors: fieldErrors{"compiler_options": {"setting compiler options is only allowed for compiled languages"}}},
		{name: "network and callbacks", body: `{"source_code":"x","language_id":71,"enable_network":true,"callback_url":true}`,
			errors: fieldErrors{"enable_network": {"enabling network is not allowed"}, "callback_url": {"must be a string"}}},
		{name: "bad base64", body: `{"source_code":"!!!","language_id":71}`, b64: true, errors: fieldErrors{"source_code": {"is not valid Base64"}}},
		{name: "plain", body: `{"source_code":"print(input())","language_id":"71","stdin":"x","expected_output":"x","command_line_arguments":"a 'b c'","cpu_time_limit":"1.5","wall_time_limit":3,"memory_limit":128000,"max_processes_and_or_threads":30,"redirect_stderr_to_stdout":true,"number_of_runs":1,"stack_limit":64000}`,
			check: func(t *testing.T, p *parsed) {
				r := p.req
				if r.Language != "python" || r.Source != "print(input())" || r.Stdin != "x" || *r.ExpectedOutput != "x" || !reflect.DeepEqual(r.Args, []string{"a", "b c"}) {
					t.Errorf("request %+v", r)
				}
				if r.Limits != (api.Limits{CPUMs: 1500, WallMs: 3000, MemoryMB: 125, Processes: 30}) {
					t.Errorf("limits %+v", r.Limits)
				}
				if !p.redirect {
					t.Error("redirect lost")
				}
			}},
		{name: "base64", b64: true, body: `{"source_code":"` + b64("int main(){}") + `","language_id":50,"stdin":"` + b64("\xff\x00") + `","expected_output":"` + b64("ok") + `","compiler_options":"-Wall"}`,
			check: func(t *testing.T, p *parsed) {
				r := p.req
				if r.Language != "c" || r.Source != "int main(){}" || *r.ExpectedOutput != "ok" || !reflect.DeepEqual(r.CompileArgs, []string{"-Wall"}) {
					t.Errorf("request %+v", r)
				}
				if r.Stdin != "/wA=" || r.StdinEncoding != api.EncodingBase64 {
					t.Errorf("binary stdin %q %q", r.Stdin, r.StdinEncoding)
				}
			}},
		{name: "additional files", body: `{"source_code":"import m","language_id":71,"additional_files":"` + zipOf(t, map[string]string{"m.py": "X=1", "d/data.txt": "hi"}) + `"}`,
			check: func(t *testing.T, p *parsed) {
				if len(p.req.Files) != 2 {
					t.Fatalf("files %+v", p.req.Files)
				}
				names := []string{p.req.Files[0].Name, p.req.Files[1].Name}
				if !reflect.DeepEqual(names, []string{"d/data.txt", "m.py"}) && !reflect.DeepEqual(names, []string{"m.py", "d/data.txt"}) {
					t.Errorf("names %v", names)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, errs, err := parseSubmission([]byte(tc.body), tc.b64)
			if err != nil {
				t.Fatal(err)
			}
			if tc.errors != nil {
				if !reflect.DeepEqual(errs, tc.errors) {
					t.Fatalf("errors %v, want %v", errs, tc.errors)
				}
				return
			}
			if errs != nil {
				t.Fatalf("errors %v", errs)
			}
			tc.check(t, p)
		})
	}
}

func zipOf(t *testing.T, files map[string]string) string {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func TestJudge(t *testing.T) {
	want := "hello"
	req := &api.JobRequest{ExpectedOutput: &want}
	done := func(verdict string, run *api.Run) *api.Job {
		return &api.Job{Status: api.StatusDone, Verdict: verdict, Run: run, Request: req}
	}
	for _, tc := range []struct {
		name     string
		job      *api.Job
		redirect bool
		status   int
		message  string
		signal   *int
	}{
		{"queued", &api.Job{Status: api.StatusQueued}, false, 1, "", nil},
		{"running", &api.Job{Status: api.StatusRunning}, false, 2, "", nil},
		{"accepted", done(api.VerdictOK, &api.Run{Stdout: "hello  \n"}), false, 3, "", nil},
		// grappe and Judge0 agree here; the status is Judge0's own decision.
		{"wrong answer", done(api.VerdictWrongAnswer, &api.Run{Stdout: "bye"}), false, 4, "", nil},
		{"redirected stderr counts", done(api.VerdictWrongAnswer, &api.Run{Stdout: "hel", Stderr: "lo"}), true, 3, "", nil},
		{"time limit", done(api.VerdictTimeLimit, &api.Run{Signal: "SIGKILL"}), false, 5, "Time limit exceeded", ptr(9)},
		{"compile error", &api.Job{Status: api.StatusDone, Verdict: api.VerdictCompileError, Compile: &api.Compile{ExitCode: 1, Stderr: "err"}}, false, 6, "", nil},
		{"sigsegv", done(api.VerdictRuntimeError, &api.Run{Signal: "SIGSEGV", ExitCode: 139}), false, 7, "Caught fatal signal 11", ptr(11)},
		{"sigfpe", done(api.VerdictRuntimeError, &api.Run{Signal: "SIGFPE"}), false, 9, "Caught fatal signal 8", ptr(8)},
		{"sigabrt", done(api.VerdictRuntimeError, &api.Run{Signal: "SIGABRT"}), false, 10, "Caught fatal signal 6", ptr(6)},
		{"sigxfsz", done(api.VerdictRuntimeError, &api.Run{Signal: "SIGXFSZ"}), false, 8, "Caught fatal signal 25", ptr(25)},
		{"other signal", done(api.VerdictRuntimeError, &api.Run{Signal: "SIGTERM"}), false, 12, "Caught fatal signal 15", ptr(15)},
		{"nzec", done(api.VerdictRuntimeError, &api.Run{ExitCode: 3}), false, 11, "Exited with error status 3", nil},
		{"output limit", done(api.VerdictOutputLimit, &api.Run{}), false, 8, "Output limit exceeded", nil},
		{"memory", done(api.VerdictMemoryLimit, &api.Run{Signal: "SIGKILL"}), false, 12, "Memory limit exceeded", ptr(9)},
		{"failed", &api.Job{Status: api.StatusFailed, Error: "no worker"}, false, 13, "no worker", nil},
		{"cancelled", &api.Job{Status: api.StatusCancelled}, false, 13, "the submission was cancelled", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := judge(tc.job, tc.redirect)
			if o.status != tc.status || o.message != tc.message {
				t.Errorf("status %d %q, want %d %q", o.status, o.message, tc.status, tc.message)
			}
			if (o.exitSignal == nil) != (tc.signal == nil) || (o.exitSignal != nil && *o.exitSignal != *tc.signal) {
				t.Errorf("exit signal %v, want %v", o.exitSignal, tc.signal)
			}
		})
	}
}

func TestRender(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	job := &api.Job{ID: "j1", Language: "python", Version: "3.11.2", Status: api.StatusDone, Verdict: api.VerdictOK,
		CreatedAt: start, StartedAt: &start, FinishedAt: &start,
		Run:     &api.Run{Stdout: "hi\n", CPUMs: 12, WallMs: 30, MemoryKB: 4000},
		Request: &api.JobRequest{Source: "print('hi')", Limits: api.Limits{CPUMs: 5000, WallMs: 10000, MemoryMB: 256, Processes: 64}}}
	out, err := render(job, "j1", false, false, defaultFields)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"token": "j1", "time": "0.012", "memory": int64(4000), "stdout": "hi\n", "stderr": nil,
		"compile_output": nil, "message": nil, "status": Status{3, "Accepted"}}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("render: %#v\nwant %#v", out, want)
	}
	out, _ = render(job, "j1", false, true, []string{"stdout", "source_code", "language", "memory_limit", "wall_time", "exit_code", "exit_signal"})
	if out["stdout"] != "aGkK\n" || out["source_code"] != "cHJpbnQoJ2hpJyk=\n" || out["memory_limit"] != int64(256*1024) || out["wall_time"] != "0.03" ||
		out["exit_code"] != 0 || out["exit_signal"] != nil {
		t.Errorf("render base64: %#v", out)
	}
	if l := out["language"].(map[string]any); l["id"] != 71 || l["name"] != "Python (3.11.2)" {
		t.Errorf("language %v", l)
	}
	other := *job
	other.Language = "kotlin"
	out, _ = render(&other, "j1", false, false, []string{"language_id", "language"})
	if out["language_id"] != nil || !reflect.DeepEqual(out["language"], map[string]any{"id": nil, "name": "kotlin"}) {
		t.Errorf("a language without a Judge0 id: %#v", out)
	}
	job.Run.Stdout, job.Run.StdoutEncoding = "/w==", api.EncodingBase64
	if _, err := render(job, "j1", false, false, defaultFields); err == nil || err.Error() != errNotUTF8 {
		t.Errorf("binary stdout without base64: %v", err)
	}
}

func TestToken(t *testing.T) {
	for _, redirect := range []bool{false, true} {
		id, r := parseToken(tokenOf("abc-123", redirect))
		if id != "abc-123" || r != redirect {
			t.Errorf("token round trip (%v): %s %v", redirect, id, r)
		}
	}
}

func ptr[T any](v T) *T { return &v }
