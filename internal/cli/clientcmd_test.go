package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
)

// fakeMaster is an httptest TLS server standing in for a master.
type fakeMaster struct {
	srv    *httptest.Server
	caFile string

	mu       sync.Mutex
	requests []*api.JobRequest
	auth     []string
}

func newFakeMaster(t *testing.T, h func(f *fakeMaster, w http.ResponseWriter, r *http.Request)) *fakeMaster {
	t.Helper()
	f := &fakeMaster{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.mu.Unlock()
		h(f, w, r)
	}))
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeMaster) lastRequest() *api.JobRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return nil
	}
	return f.requests[len(f.requests)-1]
}

func (f *fakeMaster) lastAuth() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.auth[len(f.auth)-1]
}

// decodeJob reads a submission and records it.
func (f *fakeMaster) decodeJob(w http.ResponseWriter, r *http.Request) *api.JobRequest {
	var req api.JobRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSONTest(w, 400, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeInvalidJSON, Message: err.Error()}})
		return nil
	}
	f.mu.Lock()
	f.requests = append(f.requests, &req)
	f.mu.Unlock()
	return &req
}

func writeJSONTest(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// cliEnv isolates a test from the user's environment and config file.
func cliEnv(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv(client.EnvAddr, "")
	t.Setenv(client.EnvToken, "")
	t.Setenv(client.EnvCA, "")
	return dir
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := Main(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLanguageOf(t *testing.T) {
	tests := map[string]string{
		"a.py": "python", "dir/x.c": "c", "a.cpp": "cpp", "a.cc": "cpp", "a.cxx": "cpp",
		"Main.java": "java", "a.js": "javascript", "main.go": "go", "lib.rs": "rust",
		"run.sh": "bash", "A.PY": "python", "a.txt": "", "Makefile": "", "a.h": "",
	}
	for file, want := range tests {
		if got := languageOf(file); got != want {
			t.Errorf("languageOf(%q) = %q, want %q", file, got, want)
		}
	}
}

func TestSignalNumber(t *testing.T) {
	tests := map[string]int{"SIGSEGV": 11, "SEGV": 11, "sigkill": 9, "9": 9, "SIGXCPU": 24, "nonsense": 0, "": 0}
	for s, want := range tests {
		if got := signalNumber(s); got != want {
			t.Errorf("signalNumber(%q) = %d, want %d", s, got, want)
		}
	}
	if signalName("11") != "SIGSEGV" || signalName("weird") != "weird" {
		t.Errorf("signalName: %q %q", signalName("11"), signalName("weird"))
	}
}

// finished returns a done job with the given verdict and run.
func finished(verdict string, run *api.Run, compile *api.Compile) api.Job {
	return api.Job{ID: "job-1", Status: api.StatusDone, Verdict: verdict, Run: run, Compile: compile}
}

func TestRunExitCodesAndOutput(t *testing.T) {
	binary := []byte{0xff, 0x00, 0xfe, 'x', '\n'}
	jobs := map[string]api.Job{
		"exit3": finished(api.VerdictRuntimeError, &api.Run{ExitCode: 3, Stdout: "out\n", Stderr: "err\n"}, nil),
		"ok":    finished(api.VerdictOK, &api.Run{Stdout: "hello\n"}, nil),
		"b64": finished(api.VerdictOK, &api.Run{
			Stdout: base64.StdEncoding.EncodeToString(binary), StdoutEncoding: api.EncodingBase64,
			Stderr: base64.StdEncoding.EncodeToString([]byte("e\xff")), StderrEncoding: api.EncodingBase64,
		}, nil),
		"compile": finished(api.VerdictCompileError, nil, &api.Compile{ExitCode: 1, Stderr: "main.c:1: error: expected ';'\n"}),
		"segv":    finished(api.VerdictRuntimeError, &api.Run{ExitCode: -1, Signal: "SIGSEGV", Stdout: "partial"}, nil),
		"tle":     finished(api.VerdictTimeLimit, &api.Run{Signal: "SIGKILL", CPUMs: 5000, WallMs: 5010, Stdout: "so far\n"}, nil),
		"mle":     finished(api.VerdictMemoryLimit, &api.Run{Signal: "SIGKILL", MemoryKB: 262144}, nil),
		"failed":  {ID: "job-1", Status: api.StatusFailed, Error: `no worker runs "cobol"`},
		"cancel":  {ID: "job-1", Status: api.StatusCancelled},
	}
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/jobs" {
			writeJSONTest(w, 404, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeNotFound, Message: r.URL.String()}})
			return
		}
		req := f.decodeJob(w, r)
		if req == nil {
			return
		}
		writeJSONTest(w, 200, jobs[strings.TrimSpace(req.Source)])
	})
	tests := []struct {
		source     string
		code       int
		stdout     string
		stderr     string // exact, or a prefix for messages when stderrHas is set
		stderrHas  string
		exactError bool
	}{
		{source: "exit3", code: 3, stdout: "out\n", stderr: "err\n", exactError: true},
		{source: "ok", code: 0, stdout: "hello\n", stderr: "", exactError: true},
		{source: "b64", code: 0, stdout: string(binary), stderr: "e\xff", exactError: true},
		{source: "compile", code: 1, stdout: "", stderrHas: "expected ';'"},
		{source: "segv", code: 139, stdout: "partial", stderrHas: "SIGSEGV"},
		{source: "tle", code: exitTimeLimit, stdout: "so far\n", stderrHas: "time limit"},
		{source: "mle", code: 1, stdout: "", stderrHas: "memory limit"},
		{source: "failed", code: 1, stdout: "", stderrHas: `no worker runs "cobol"`},
		{source: "cancel", code: 1, stdout: "", stderrHas: "cancelled"},
	}
	cliEnv(t)
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			prog := writeFile(t, "prog.py", tt.source+"\n")
			res := runCLI(t, "", "run", prog, "--addr", f.srv.URL, "--token", "tok", "--ca", f.caFile)
			if res.code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", res.code, tt.code, res.stderr)
			}
			if res.stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", res.stdout, tt.stdout)
			}
			if tt.exactError && res.stderr != tt.stderr {
				t.Errorf("stderr %q, want %q", res.stderr, tt.stderr)
			}
			if tt.stderrHas != "" && !strings.Contains(res.stderr, tt.stderrHas) {
				t.Errorf("stderr %q lacks %q", res.stderr, tt.stderrHas)
			}
			if got := f.lastRequest(); got.Language != "python" {
				t.Errorf("language %q, want python (guessed from .py)", got.Language)
			}
		})
	}
}

func TestRunRequest(t *testing.T) {
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		if f.decodeJob(w, r) != nil {
			writeJSONTest(w, 200, finished(api.VerdictOK, &api.Run{}, nil))
		}
	})
	cliEnv(t)
	dir := t.TempDir()
	mainC := filepath.Join(dir, "main.c")
	utilC := filepath.Join(dir, "util.h")
	os.WriteFile(mainC, []byte("int main(){}"), 0o644)
	os.WriteFile(utilC, []byte("\x00\xff"), 0o644)
	in := writeFile(t, "in.txt", "5 6\n")
	res := runCLI(t, "", "run", mainC, utilC, "--addr", f.srv.URL, "--ca", f.caFile,
		"--stdin", in, "--cpu-ms", "100", "--memory-mb", "64", "--version", "12", "--", "-x", "--lang", "y")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	req := f.lastRequest()
	if req.Language != "c" || req.Version != "12" || req.Source != "" || len(req.Files) != 2 {
		t.Fatalf("request %+v", req)
	}
	if req.Files[0].Name != "main.c" || req.Files[0].Content != "int main(){}" || req.Files[0].Encoding != "" {
		t.Errorf("file 0 = %+v", req.Files[0])
	}
	if req.Files[1].Encoding != api.EncodingBase64 || req.Files[1].Content != base64.StdEncoding.EncodeToString([]byte("\x00\xff")) {
		t.Errorf("binary file = %+v", req.Files[1])
	}
	if req.Stdin != "5 6\n" || req.Limits.CPUMs != 100 || req.Limits.MemoryMB != 64 {
		t.Errorf("stdin/limits: %q %+v", req.Stdin, req.Limits)
	}
	if strings.Join(req.Args, " ") != "-x --lang y" {
		t.Errorf("args %q", req.Args)
	}

	// --lang wins over the extension; stdin from grappe's own with --stdin -.
	prog := writeFile(t, "prog.txt", "echo hi")
	res = runCLI(t, "piped\n", "run", prog, "--lang", "bash", "--stdin", "-", "--addr", f.srv.URL, "--ca", f.caFile)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if req := f.lastRequest(); req.Language != "bash" || req.Source != "echo hi" || req.Stdin != "piped\n" {
		t.Errorf("request %+v", req)
	}

	// An unknown extension without --lang is refused before any request.
	res = runCLI(t, "", "run", prog, "--addr", f.srv.URL, "--ca", f.caFile)
	if res.code == 0 || !strings.Contains(res.stderr, "--lang") {
		t.Errorf("unknown extension: exit %d, %q", res.code, res.stderr)
	}
}

// TestRunWaits: run submits, then waits for the job (by polling, this
// master having no event stream).
func TestRunWaits(t *testing.T) {
	var mu sync.Mutex
	polls := 0
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			if f.decodeJob(w, r) != nil {
				writeJSONTest(w, 201, api.Job{ID: "j9", Status: api.StatusQueued})
			}
		case r.URL.Path == "/api/v1/jobs/j9":
			mu.Lock()
			polls++
			n := polls
			mu.Unlock()
			if n < 3 {
				writeJSONTest(w, 200, api.Job{ID: "j9", Status: api.StatusRunning})
				return
			}
			writeJSONTest(w, 200, finished(api.VerdictOK, &api.Run{ExitCode: 7, Stdout: "late\n"}, nil))
		default:
			writeJSONTest(w, 404, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeNotFound, Message: "no"}})
		}
	})
	cliEnv(t)
	res := runCLI(t, "", "run", writeFile(t, "p.py", "x"), "--addr", f.srv.URL, "--ca", f.caFile)
	if res.code != 7 || res.stdout != "late\n" {
		t.Fatalf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}

	res = runCLI(t, "", "run", writeFile(t, "p.py", "x"), "--json", "--addr", f.srv.URL, "--ca", f.caFile)
	var job api.Job
	if err := json.Unmarshal([]byte(res.stdout), &job); err != nil {
		t.Fatalf("--json output %q: %v", res.stdout, err)
	}
	if res.code != 0 || job.Status != api.StatusDone || job.Run.Stdout != "late\n" {
		t.Errorf("--json: exit %d, job %+v", res.code, job)
	}
}

func TestConfigResolutionOrder(t *testing.T) {
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		writeJSONTest(w, 200, api.JobList{Jobs: []api.Job{}})
	})
	other := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		writeJSONTest(w, 200, api.JobList{Jobs: []api.Job{}})
	})
	dir := cliEnv(t)
	path := filepath.Join(dir, "grappe", "config.json")
	if err := client.WriteConfigFile(path, client.FileConfig{Addr: f.srv.URL, Token: "file-token", CA: f.caFile}); err != nil {
		t.Fatal(err)
	}

	// The login file alone.
	if res := runCLI(t, "", "jobs"); res.code != 0 {
		t.Fatalf("file only: exit %d: %s", res.code, res.stderr)
	}
	if got := f.lastAuth(); got != "Bearer file-token" {
		t.Errorf("file only: Authorization %q", got)
	}

	// The environment beats the file.
	t.Setenv(client.EnvToken, "env-token")
	if res := runCLI(t, "", "jobs"); res.code != 0 {
		t.Fatalf("env: exit %d: %s", res.code, res.stderr)
	}
	if got := f.lastAuth(); got != "Bearer env-token" {
		t.Errorf("env: Authorization %q", got)
	}

	// Flags beat the environment.
	if res := runCLI(t, "", "jobs", "--token", "flag-token"); res.code != 0 {
		t.Fatalf("flag: exit %d: %s", res.code, res.stderr)
	}
	if got := f.lastAuth(); got != "Bearer flag-token" {
		t.Errorf("flag: Authorization %q", got)
	}

	// Another master by GRAPPE_ADDR and GRAPPE_CA: the env token goes there,
	// the file's never would.
	t.Setenv(client.EnvAddr, other.srv.URL)
	t.Setenv(client.EnvCA, other.caFile)
	if res := runCLI(t, "", "jobs"); res.code != 0 {
		t.Fatalf("env addr: exit %d: %s", res.code, res.stderr)
	}
	if got := other.lastAuth(); got != "Bearer env-token" {
		t.Errorf("env addr: Authorization %q", got)
	}
	t.Setenv(client.EnvToken, "")
	if res := runCLI(t, "", "jobs"); res.code != 0 {
		t.Fatalf("env addr without token: exit %d: %s", res.code, res.stderr)
	}
	if got := other.lastAuth(); got != "" {
		t.Errorf("the file's token was sent to another master: %q", got)
	}

	// Nothing at all.
	cliEnv(t)
	if res := runCLI(t, "", "jobs"); res.code == 0 || !strings.Contains(res.stderr, "GRAPPE_ADDR") {
		t.Errorf("no config: exit %d, %q", res.code, res.stderr)
	}
}

func TestLogin(t *testing.T) {
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		var in api.LoginRequest
		json.NewDecoder(r.Body).Decode(&in)
		if r.URL.Path != "/api/v1/login" || in.Username != "alice" || in.Password != "s3cret" {
			writeJSONTest(w, 401, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeUnauthorized, Message: "bad credentials"}})
			return
		}
		writeJSONTest(w, 200, api.LoginResponse{Token: "alice-token"})
	})
	dir := cliEnv(t)
	res := runCLI(t, "s3cret\n", "login", "--addr", f.srv.URL, "--ca", f.caFile, "--user", "alice")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	path := filepath.Join(dir, "grappe", "config.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o", fi.Mode().Perm())
	}
	fc, err := client.ReadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Addr != f.srv.URL || fc.Token != "alice-token" || fc.CA != f.caFile {
		t.Errorf("config %+v", fc)
	}

	if res := runCLI(t, "wrong\n", "login", "--addr", f.srv.URL, "--ca", f.caFile, "--user", "alice"); res.code == 0 || !strings.Contains(res.stderr, "bad credentials") {
		t.Errorf("wrong password: exit %d, %q", res.code, res.stderr)
	}
	if res := runCLI(t, "s3cret\n", "login", "--addr", f.srv.URL, "--ca", f.caFile); res.code == 0 {
		t.Error("login without --user and without a terminal succeeded")
	}
}

func TestUserCommands(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+body["username"]+" "+body["password"]+" "+body["role"])
		mu.Unlock()
		if r.Method == http.MethodGet {
			writeJSONTest(w, 200, api.UserList{Users: []api.User{{Username: "root", Role: api.RoleAdmin}}})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	cliEnv(t)
	conn := []string{"--addr", f.srv.URL, "--ca", f.caFile, "--token", "adm"}
	for _, args := range [][]string{
		{"user", "add", "bob", "--role", "admin"},
		{"user", "passwd", "bob"},
		{"user", "remove", "bob"},
		{"user", "list"},
	} {
		res := runCLI(t, "pw1\n", append(args, conn...)...)
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		if args[1] == "list" && !strings.Contains(res.stdout, "root") {
			t.Errorf("user list: %q", res.stdout)
		}
	}
	want := []string{
		"POST /api/v1/users bob pw1 admin",
		"PUT /api/v1/users/bob/password  pw1 ",
		"DELETE /api/v1/users/bob   ",
		"GET /api/v1/users   ",
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("requests\n%q\nwant\n%q", seen, want)
	}
	if res := runCLI(t, "pw\n", append([]string{"user", "add", "x", "--role", "root"}, conn...)...); res.code == 0 {
		t.Error("a bad role was accepted")
	}
}

func TestListings(t *testing.T) {
	now := time.Now()
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/workers":
			writeJSONTest(w, 200, api.WorkerList{Workers: []api.Worker{
				{Name: "w1", Status: "up", Sandbox: "cgroup-v2", Slots: 4, Running: 1, CPUPercent: 12.5,
					Languages: []api.WorkerLanguage{{Name: "python", Version: "3.11"}}, LastHeartbeat: now},
				{Name: "w2", Status: "up", Sandbox: "none", Slots: 2, LastHeartbeat: now},
			}})
		case "/api/v1/languages":
			writeJSONTest(w, 200, api.LanguageList{Languages: []api.Language{{Name: "python", Version: "3.11", Versions: []string{"3.11", "3.12"}, Workers: 2}}})
		case "/api/v1/jobs":
			writeJSONTest(w, 200, api.JobList{Jobs: []api.Job{{ID: "j1", Status: "done", Verdict: "ok", Language: "c", CreatedAt: now}}})
		case "/api/v1/jobs/j1":
			writeJSONTest(w, 200, api.Job{ID: "j1", Status: "done", Verdict: "ok", Language: "c", Worker: "w1", Attempts: 1,
				CreatedAt: now, Run: &api.Run{ExitCode: 0, CPUMs: 1, WallMs: 2, MemoryKB: 800}})
		case "/api/v1/jobs/j1/cancel":
			writeJSONTest(w, 409, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeConflict, Message: "job j1 is already done"}})
		}
	})
	cliEnv(t)
	conn := []string{"--addr", f.srv.URL, "--ca", f.caFile}
	tests := []struct {
		args []string
		code int
		has  []string
	}{
		{[]string{"workers"}, 0, []string{"NAME", "w1", "cgroup-v2", "1/4", "python 3.11", "none (INSECURE)"}},
		{[]string{"languages"}, 0, []string{"python", "3.11", "3.12"}},
		{[]string{"jobs", "--status", "done"}, 0, []string{"j1", "done", "ok"}},
		{[]string{"status", "j1"}, 0, []string{"j1", "done (ok)", "w1 (attempt 1)", "exit 0, cpu 1 ms"}},
		{[]string{"status", "j1", "--json"}, 0, []string{`"id": "j1"`}},
		{[]string{"cancel", "j1"}, 1, []string{"already done"}},
	}
	for _, tt := range tests {
		res := runCLI(t, "", append(tt.args, conn...)...)
		if res.code != tt.code {
			t.Errorf("%v: exit %d, want %d (%s)", tt.args, res.code, tt.code, res.stderr)
		}
		for _, s := range tt.has {
			if !strings.Contains(res.stdout+res.stderr, s) {
				t.Errorf("%v: output lacks %q:\n%s%s", tt.args, s, res.stdout, res.stderr)
			}
		}
	}
}

func TestSubmit(t *testing.T) {
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "" {
			t.Error("submit waited")
		}
		if f.decodeJob(w, r) != nil {
			writeJSONTest(w, 201, api.Job{ID: "new-id", Status: api.StatusQueued})
		}
	})
	cliEnv(t)
	res := runCLI(t, "", "submit", writeFile(t, "a.go", "package main"), "--addr", f.srv.URL, "--ca", f.caFile)
	if res.code != 0 || res.stdout != "new-id\n" {
		t.Errorf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if f.lastRequest().Language != "go" {
		t.Errorf("language %q", f.lastRequest().Language)
	}
}

func TestBench(t *testing.T) {
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		if f.decodeJob(w, r) != nil {
			writeJSONTest(w, 200, finished(api.VerdictOK, &api.Run{}, nil))
		}
	})
	cliEnv(t)
	res := runCLI(t, "", "bench", "--jobs", "6", "--concurrency", "2", "--addr", f.srv.URL, "--ca", f.caFile)
	if res.code != 0 {
		t.Fatalf("exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	t.Log("\n" + res.stdout)
	for _, s := range []string{"cluster", "throughput", "p50", "p95", "p99", "6 / 0"} {
		if !strings.Contains(res.stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "local bash") && !strings.Contains(res.stdout, "p50 added by the cluster") {
		t.Errorf("local baseline without the p50 difference:\n%s", res.stdout)
	}
	if req := f.lastRequest(); req.Language != "bash" || req.Source != "exit 0" {
		t.Errorf("request %+v", req)
	}
}

func TestTokenCommands(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	soon := time.Now().Add(48 * time.Hour)
	past := time.Now().Add(-time.Hour)
	var mu sync.Mutex
	var req api.TokenRequest
	f := newFakeMaster(t, func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			mu.Lock()
			req = api.TokenRequest{}
			json.NewDecoder(r.Body).Decode(&req)
			mu.Unlock()
			writeJSONTest(w, 201, api.APIToken{ID: "t1", Name: "ci", Kind: api.TokenKindAPI, Token: "grp_secret", CreatedAt: created, ExpiresAt: req.ExpiresAt})
		case http.MethodGet:
			writeJSONTest(w, 200, api.APITokenList{Tokens: []api.APIToken{
				{ID: "t1", Name: "ci", Kind: api.TokenKindAPI, CreatedAt: created},
				{ID: "t2", Name: "login", Kind: api.TokenKindLogin, CreatedAt: created, ExpiresAt: &soon},
				{ID: "t3", Name: "login", Kind: api.TokenKindLogin, CreatedAt: created, ExpiresAt: &past},
			}})
		}
	})
	cliEnv(t)
	conn := []string{"--addr", f.srv.URL, "--ca", f.caFile, "--token", "adm"}

	res := runCLI(t, "", append([]string{"token", "create", "ci", "--expires", "90d"}, conn...)...)
	if res.code != 0 || res.stdout != "grp_secret\n" {
		t.Fatalf("token create --expires 90d: exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	mu.Lock()
	got := req.ExpiresAt
	mu.Unlock()
	if want := time.Now().Add(90 * 24 * time.Hour); got == nil || got.Sub(want).Abs() > time.Minute {
		t.Errorf("expires_at sent %v, want about %v", got, want)
	}
	res = runCLI(t, "", append([]string{"token", "create", "ci"}, conn...)...)
	mu.Lock()
	got = req.ExpiresAt
	mu.Unlock()
	if res.code != 0 || got != nil {
		t.Errorf("token create without --expires: exit %d, expires_at %v, want none", res.code, got)
	}
	if res := runCLI(t, "", append([]string{"token", "create", "ci", "--expires", "soon"}, conn...)...); res.code == 0 {
		t.Error("--expires soon was accepted")
	}

	res = runCLI(t, "", append([]string{"token", "list"}, conn...)...)
	if res.code != 0 {
		t.Fatalf("token list: exit %d: %s", res.code, res.stderr)
	}
	for _, s := range []string{"KIND", "EXPIRES", "never", soon.Local().Format(time.DateTime), "expired " + past.Local().Format(time.DateTime)} {
		if !strings.Contains(res.stdout, s) {
			t.Errorf("token list lacks %q:\n%s", s, res.stdout)
		}
	}
}

func TestSplitAddrs(t *testing.T) {
	got := splitAddrs(" https://a:1, ,https://b:2 ,https://c:3,")
	want := []string{"https://a:1", "https://b:2", "https://c:3"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("splitAddrs = %q, want %q", got, want)
	}
}

// TestBenchSpread: with --spread, jobs go to the masters in turn (each gets
// a third of them, its warm-up included), and the header says so; without
// it, all go to the first.
func TestBenchSpread(t *testing.T) {
	answer := func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		if f.decodeJob(w, r) != nil {
			writeJSONTest(w, 200, finished(api.VerdictOK, &api.Run{}, nil))
		}
	}
	// httptest's TLS servers share one certificate: any one's CA file
	// trusts all three.
	fs := []*fakeMaster{newFakeMaster(t, answer), newFakeMaster(t, answer), newFakeMaster(t, answer)}
	addrs := fs[0].srv.URL + "," + fs[1].srv.URL + "," + fs[2].srv.URL
	cliEnv(t)
	count := func(f *fakeMaster) int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.requests)
	}

	res := runCLI(t, "", "bench", "--jobs", "9", "--concurrency", "2", "--no-local", "--spread",
		"--addr", addrs, "--ca", fs[0].caFile)
	if res.code != 0 {
		t.Fatalf("exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "spread over "+strings.ReplaceAll(addrs, ",", ", ")) || !strings.Contains(res.stdout, "9 / 0") {
		t.Errorf("output:\n%s", res.stdout)
	}
	for i, f := range fs {
		if n := count(f); n != 4 { // 1 warm-up + 9/3
			t.Errorf("master %d got %d jobs, want 4", i, n)
		}
	}

	res = runCLI(t, "", "bench", "--jobs", "3", "--concurrency", "2", "--no-local",
		"--addr", addrs, "--ca", fs[0].caFile)
	if res.code != 0 || !strings.Contains(res.stdout, "against "+fs[0].srv.URL) {
		t.Fatalf("exit %d: %s%s", res.code, res.stdout, res.stderr)
	}
	if n := count(fs[0]); n != 8 {
		t.Errorf("without --spread the first master got %d jobs in all, want 8", n)
	}
}
