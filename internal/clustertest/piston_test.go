package clustertest_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/grappe/grappe/internal/clustertest"
)

// pistonStage and pistonResult are Piston's answer to /api/v2/execute.
type pistonStage struct {
	Stdout   string  `json:"stdout"`
	Stderr   string  `json:"stderr"`
	Output   string  `json:"output"`
	Code     *int    `json:"code"`
	Signal   *string `json:"signal"`
	Message  *string `json:"message"`
	Status   *string `json:"status"`
	CPUTime  *int64  `json:"cpu_time"`
	WallTime *int64  `json:"wall_time"`
	Memory   *int64  `json:"memory"`
}

type pistonResult struct {
	Language string       `json:"language"`
	Version  string       `json:"version"`
	Run      pistonStage  `json:"run"`
	Compile  *pistonStage `json:"compile"`
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestPistonAPI(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 2}}})
	pc := newCompat(t, c)
	c.WaitLanguage("python")

	execute := func(t *testing.T, body map[string]any) pistonResult {
		t.Helper()
		var res pistonResult
		pc.json(t, "POST", "/api/v2/execute", mustJSON(body), 200, &res)
		return res
	}

	t.Run("runtimes and packages", func(t *testing.T) {
		var rts []struct {
			Language string   `json:"language"`
			Version  string   `json:"version"`
			Aliases  []string `json:"aliases"`
		}
		pc.json(t, "GET", "/api/v2/runtimes", "", 200, &rts)
		i := slices.IndexFunc(rts, func(r struct {
			Language string   `json:"language"`
			Version  string   `json:"version"`
			Aliases  []string `json:"aliases"`
		}) bool {
			return r.Language == "python"
		})
		if i < 0 || rts[i].Version == "" || !slices.Contains(rts[i].Aliases, "py") {
			t.Fatalf("runtimes %+v: no python with its alias py", rts)
		}
		var pkgs []map[string]any
		pc.json(t, "GET", "/api/v2/packages", "", 200, &pkgs)
		if len(pkgs) < len(rts) || pkgs[0]["installed"] != true || pkgs[0]["language_version"] == "" {
			t.Fatalf("packages %v", pkgs)
		}
		var msg map[string]string
		pc.json(t, "POST", "/api/v2/packages", `{"language":"python","version":"*"}`, 403, &msg)
		if !strings.Contains(msg["message"], "operator") {
			t.Fatalf("install answer %v", msg)
		}
		pc.json(t, "DELETE", "/api/v2/packages", `{"language":"python","version":"*"}`, 403, nil)
	})

	for _, p := range programs {
		t.Run(p.lang, func(t *testing.T) {
			c.WaitLanguage(p.lang)
			res := execute(t, map[string]any{"language": p.lang, "version": "*", "files": []map[string]any{{"content": p.hello}}})
			want := p.lang
			if want == "cpp" {
				want = "c++" // Piston's name
			}
			if res.Language != want || res.Version == "" || res.Run.Stdout != "hello\n" || res.Run.Output != "hello\n" ||
				res.Run.Code == nil || *res.Run.Code != 0 || res.Run.Status != nil || res.Run.Signal != nil {
				t.Fatalf("hello: %+v", res)
			}
			if res.Run.WallTime == nil || res.Run.CPUTime == nil || res.Run.Memory == nil || *res.Run.Memory <= 0 {
				t.Fatalf("hello: no measures: %+v", res.Run)
			}
			// Piston ends stdin with a newline when it has none.
			res = execute(t, map[string]any{"language": p.lang, "version": "*", "files": []map[string]any{{"content": p.echo}},
				"stdin": "from stdin", "args": []string{"a", "b c"}})
			if res.Run.Stdout != "a b c\nfrom stdin\n" {
				t.Fatalf("stdin and args: %+v", res.Run)
			}
			res = execute(t, map[string]any{"language": p.lang, "version": "*", "files": []map[string]any{{"content": p.exit3}}})
			if str(res.Run.Status) != "RE" || res.Run.Code == nil || *res.Run.Code != 3 || str(res.Run.Message) != "Exited with error status 3" {
				t.Fatalf("exit 3: %+v", res.Run)
			}
			if p.broken != "" {
				res = execute(t, map[string]any{"language": p.lang, "version": "*", "files": []map[string]any{{"content": p.broken}}})
				if res.Compile == nil || res.Compile.Code == nil || *res.Compile.Code == 0 || res.Compile.Output == "" {
					t.Fatalf("compile error: compile %+v", res.Compile)
				}
				if res.Run.Output != res.Compile.Output || str(res.Run.Status) != "RE" {
					t.Fatalf("compile error: run %+v is not the compile stage", res.Run)
				}
			}
		})
	}

	t.Run("time limit", func(t *testing.T) {
		res := execute(t, map[string]any{"language": "py", "version": "3.x", "files": []map[string]any{{"content": "while True: pass"}},
			"run_timeout": 2000, "run_cpu_time": 500})
		if str(res.Run.Status) != "TO" || str(res.Run.Signal) != "SIGKILL" || res.Run.Code != nil {
			t.Fatalf("time limit: %+v", res.Run)
		}
	})

	t.Run("files and encodings", func(t *testing.T) {
		// The first utf8 file is the main one, whatever its place; the
		// others sit beside it.
		res := execute(t, map[string]any{"language": "python", "version": "*", "run_memory_limit": -1, "compile_timeout": 10000,
			"files": []map[string]any{
				{"name": "data.txt", "content": "6869", "encoding": "hex"},
				{"name": "main.py", "content": "import helper\nprint(open('data.txt').read(), helper.X)"},
				{"name": "helper.py", "content": "WD0z", "encoding": "base64"},
			}})
		if res.Run.Stdout != "hi 3\n" {
			t.Fatalf("files: %+v", res.Run)
		}
	})

	t.Run("text/plain body", func(t *testing.T) {
		// npm's piston-client sends its JSON as text/plain.
		plain := *pc
		plain.contentType = "text/plain;charset=UTF-8"
		var res pistonResult
		plain.json(t, "POST", "/api/v2/execute", `{"language":"python","version":"*","files":[{"content":"print(42)"}]}`, 200, &res)
		if res.Run.Stdout != "42\n" {
			t.Fatalf("text/plain: %+v", res.Run)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			body, message string
			status        int
		}{
			{`{"language":`, "malformed JSON", 400},
			{`{"version":"*","files":[]}`, "language is required as a string", 400},
			{`{"language":"python","files":[]}`, "version is required as a string", 400},
			{`{"language":"python","version":"*"}`, "files is required as an array", 400},
			{`{"language":"python","version":"*","files":[{"content":null}]}`, "files[0].content is required as a string", 400},
			{`{"language":"cobol","version":"*","files":[{"content":"x"}]}`, "cobol-* runtime is unknown", 400},
			{`{"language":"python","version":"1.x","files":[{"content":"x"}]}`, "python-1.x runtime is unknown", 400},
			{`{"language":"python","version":"*","files":[{"content":"x"}],"run_timeout":"1s"}`, "If specified, run_timeout must be a number", 400},
			// Over the operator's maximum: grappe's refusal, as Piston's 400.
			{`{"language":"python","version":"*","files":[{"content":"x"}],"run_memory_limit":1e15}`, "memory_mb", 400},
		} {
			var msg map[string]string
			pc.json(t, "POST", "/api/v2/execute", tc.body, tc.status, &msg)
			if !strings.Contains(msg["message"], tc.message) {
				t.Errorf("%s: message %q, want %q", tc.body, msg["message"], tc.message)
			}
		}
		var msg map[string]string
		pc.json(t, "GET", "/api/v2/nothing", "", 404, &msg)
		if msg["message"] == "" {
			t.Errorf("404 without a message")
		}
	})

	t.Run("auth", func(t *testing.T) {
		body := `{"language":"python","version":"*","files":[{"content":"print(1)"}]}`
		for _, cl := range []*compatClient{pc.with("Authorization", "", c.Token), pc.with("X-Auth-Token", "", c.Token)} {
			cl.json(t, "POST", "/api/v2/execute", body, 200, nil)
		}
		for _, cl := range []*compatClient{pc.with("Authorization", "", ""), pc.with("Authorization", "Bearer ", "wrong")} {
			var msg map[string]string
			cl.json(t, "GET", "/api/v2/runtimes", "", 401, &msg)
			if msg["message"] == "" {
				t.Errorf("401 without a message")
			}
		}
	})

	t.Run("jobs are grappe jobs", func(t *testing.T) {
		tok := userToken(t, c, "pistonuser")
		var res pistonResult
		pc.with("Authorization", "", tok).json(t, "POST", "/api/v2/execute",
			`{"language":"python","version":"*","files":[{"content":"print('mine')"}]}`, 200, &res)
		jobs, err := c.NewClient(tok).Jobs(context.Background(), "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 || jobs[0].Owner != "pistonuser" || jobs[0].Run == nil || jobs[0].Run.Stdout != "mine\n" {
			b, _ := json.Marshal(jobs)
			t.Fatalf("grappe jobs of the user: %s", b)
		}
	})
}
