package clustertest_test

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/clustertest"
)

// judge0Submission is a Judge0 submission as its API answers it; pointers
// tell null from a value.
type judge0Submission struct {
	Token         string  `json:"token"`
	Stdout        *string `json:"stdout"`
	Stderr        *string `json:"stderr"`
	CompileOutput *string `json:"compile_output"`
	Message       *string `json:"message"`
	ExitCode      *int    `json:"exit_code"`
	ExitSignal    *int    `json:"exit_signal"`
	Time          *string `json:"time"`
	WallTime      *string `json:"wall_time"`
	Memory        *int64  `json:"memory"`
	Status        *struct {
		ID          int    `json:"id"`
		Description string `json:"description"`
	} `json:"status"`
	SourceCode *string `json:"source_code"`
	LanguageID *int    `json:"language_id"`
	Language   *struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	} `json:"language"`
	MemoryLimit *int64 `json:"memory_limit"`
}

func (s judge0Submission) status() int {
	if s.Status == nil {
		return 0
	}
	return s.Status.ID
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func unb64(t *testing.T, p *string) string {
	t.Helper()
	if p == nil {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(*p, "\n", ""))
	if err != nil {
		t.Fatalf("base64 %q: %v", *p, err)
	}
	return string(b)
}

func TestJudge0API(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 2}}})
	jc := newCompat(t, c).with("X-Auth-Token", "", c.Token)
	c.WaitLanguage("python")

	// run submits with ?wait=true and returns the finished submission.
	run := func(t *testing.T, query string, body map[string]any) judge0Submission {
		t.Helper()
		var s judge0Submission
		jc.json(t, "POST", "/judge0/submissions?wait=true&"+query, mustJSON(body), 201, &s)
		if s.status() <= 2 {
			t.Fatalf("wait=true answered an unfinished submission: %+v", s)
		}
		return s
	}

	t.Run("languages, statuses, about, config", func(t *testing.T) {
		var langs []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		}
		jc.json(t, "GET", "/judge0/languages", "", 200, &langs)
		found := false
		for _, l := range langs {
			if l.ID == 71 && strings.HasPrefix(l.Name, "Python (") {
				found = true
			}
		}
		if !found {
			t.Fatalf("languages %+v: no 71 Python", langs)
		}
		var one map[string]any
		jc.json(t, "GET", "/judge0/languages/71", "", 200, &one)
		if one["id"] != float64(71) || one["source_file"] == "" || one["is_archived"] != false {
			t.Fatalf("language 71: %v", one)
		}
		jc.json(t, "GET", "/judge0/languages/9999", "", 404, nil)
		var sts []struct {
			ID          int    `json:"id"`
			Description string `json:"description"`
		}
		jc.json(t, "GET", "/judge0/statuses", "", 200, &sts)
		if len(sts) != 14 || sts[0].Description != "In Queue" || sts[5].Description != "Compilation Error" || sts[13].ID != 14 {
			t.Fatalf("statuses %+v", sts)
		}
		var about, cfg map[string]any
		jc.json(t, "GET", "/judge0/about", "", 200, &about)
		jc.json(t, "GET", "/judge0/config_info", "", 200, &cfg)
		if about["version"] == nil || cfg["enable_wait_result"] != true || cfg["max_memory_limit"] == float64(0) {
			t.Fatalf("about %v config %v", about, cfg)
		}
	})

	t.Run("accepted, wrong answer, stdin and args", func(t *testing.T) {
		p := programFor(t, "python")
		s := run(t, "", map[string]any{"source_code": p.echo, "language_id": 71, "stdin": "from stdin", "command_line_arguments": `a "b c"`,
			"expected_output": "a b c  \nfrom stdin"})
		if s.status() != 3 || s.Status.Description != "Accepted" || *s.Stdout != "a b c\nfrom stdin\n" || s.Stderr != nil || s.Time == nil || s.Memory == nil {
			t.Fatalf("accepted: %+v", s)
		}
		s = run(t, "", map[string]any{"source_code": `print("nope")`, "language_id": 71, "expected_output": "yes"})
		if s.status() != 4 || s.Status.Description != "Wrong Answer" {
			t.Fatalf("wrong answer: %+v", s)
		}
	})

	t.Run("runtime errors and limits", func(t *testing.T) {
		s := run(t, "fields=*", map[string]any{"source_code": "import sys\nprint('bye')\nsys.exit(3)", "language_id": "71"})
		if s.status() != 11 || s.ExitCode == nil || *s.ExitCode != 3 || str(s.Message) != "Exited with error status 3" || s.LanguageID == nil || *s.LanguageID != 71 {
			t.Fatalf("NZEC: %+v", s)
		}
		s = run(t, "", map[string]any{"source_code": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "language_id": 71})
		if s.status() != 7 || s.Status.Description != "Runtime Error (SIGSEGV)" {
			t.Fatalf("SIGSEGV: %+v", s)
		}
		s = run(t, "", map[string]any{"source_code": "while True: pass", "language_id": 71, "cpu_time_limit": 0.5, "wall_time_limit": 2})
		if s.status() != 5 || s.Status.Description != "Time Limit Exceeded" {
			t.Fatalf("time limit: %+v", s)
		}
	})

	t.Run("compile error", func(t *testing.T) {
		c.WaitLanguage("c")
		s := run(t, "", map[string]any{"source_code": programFor(t, "c").broken, "language_id": 50})
		if s.status() != 6 || s.CompileOutput == nil || *s.CompileOutput == "" || s.Stdout != nil || s.Time != nil {
			t.Fatalf("compile error: %+v", s)
		}
		s = run(t, "", map[string]any{"source_code": programFor(t, "c").hello, "language_id": 50, "compiler_options": "-Wall -O0"})
		if s.status() != 3 || *s.Stdout != "hello\n" {
			t.Fatalf("compiler options: %+v", s)
		}
	})

	t.Run("base64", func(t *testing.T) {
		// Binary stdout is fine; a binary expected output grappe cannot
		// keep, and says so.
		var e map[string][]string
		jc.json(t, "POST", "/judge0/submissions?base64_encoded=true", mustJSON(map[string]any{"source_code": b64("print(1)"), "language_id": 71, "expected_output": b64("\xffin")}), 422, &e)
		if len(e["expected_output"]) != 1 {
			t.Fatalf("binary expected output: %v", e)
		}
		s := run(t, "base64_encoded=true&fields=token,stdout,stderr,source_code,status", map[string]any{
			"source_code": b64("import sys\nsys.stdout.buffer.write(b'\\xff' + sys.stdin.buffer.read())\nsys.stderr.write('e')"), "language_id": 71,
			"stdin": b64("in\n"), "expected_output": b64("\u00e9\n")})
		if s.status() != 4 {
			t.Fatalf("wrong answer in base64: %+v", s)
		}
		s = run(t, "base64_encoded=true&fields=token,stdout,stderr,source_code,status", map[string]any{
			"source_code": b64("import sys\nsys.stdout.buffer.write(b'\\xff' + sys.stdin.buffer.read())\nsys.stderr.write('e')"), "language_id": 71,
			"stdin": b64("in\n")})
		if s.status() != 3 || unb64(t, s.Stdout) != "\xffin\n" || unb64(t, s.Stderr) != "e" || !strings.Contains(unb64(t, s.SourceCode), "sys.stdout") {
			t.Fatalf("base64: %+v", s)
		}
		// The same output without base64 cannot be JSON text: Judge0's 400.
		var ne map[string]string
		jc.json(t, "GET", "/judge0/submissions/"+s.Token+"?base64_encoded=false", "", 400, &ne)
		if !strings.Contains(ne["error"], "base64_encoded=true") {
			t.Fatalf("non-UTF-8 without base64: %v", ne)
		}
	})

	t.Run("without wait, then by token", func(t *testing.T) {
		var created map[string]any
		jc.json(t, "POST", "/judge0/submissions", mustJSON(map[string]any{"source_code": "print(6*7)", "language_id": 71}), 201, &created)
		token, _ := created["token"].(string)
		if token == "" || len(created) != 1 {
			t.Fatalf("create answered %v, want only a token", created)
		}
		var s judge0Submission
		c.Eventually(time.Minute, "the submission to finish", func() bool {
			s = judge0Submission{}
			jc.json(t, "GET", "/judge0/submissions/"+token, "", 200, &s)
			return s.status() > 2
		})
		if s.status() != 3 || *s.Stdout != "42\n" || s.Token != token {
			t.Fatalf("by token: %+v", s)
		}
		var only map[string]any
		jc.json(t, "GET", "/judge0/submissions/"+token+"?fields=stdout,language", "", 200, &only)
		if len(only) != 2 || only["stdout"] != "42\n" {
			t.Fatalf("fields: %v", only)
		}
		var e map[string]string
		jc.json(t, "GET", "/judge0/submissions/"+token+"?fields=stdout,bogus", "", 400, &e)
		if e["error"] != "invalid fields: [bogus]" {
			t.Fatalf("bad fields: %v", e)
		}
		jc.json(t, "GET", "/judge0/submissions/no-such-token", "", 404, nil)
		// Another user's token is unknown to this one.
		other := jc.with("X-Auth-Token", "", userToken(t, c, "judge0user"))
		other.json(t, "GET", "/judge0/submissions/"+token, "", 404, nil)
	})

	t.Run("redirect stderr to stdout", func(t *testing.T) {
		s := run(t, "", map[string]any{"source_code": "import sys\nprint('out', flush=True)\nsys.stderr.write('err\\n')", "language_id": 71, "redirect_stderr_to_stdout": true})
		if *s.Stdout != "out\nerr\n" || s.Stderr != nil || !strings.HasSuffix(s.Token, ".r") {
			t.Fatalf("redirect: %+v", s)
		}
		var again judge0Submission
		jc.json(t, "GET", "/judge0/submissions/"+s.Token, "", 200, &again)
		if *again.Stdout != "out\nerr\n" {
			t.Fatalf("redirect by token: %+v", again)
		}
	})

	t.Run("validation", func(t *testing.T) {
		var e map[string][]string
		jc.json(t, "POST", "/judge0/submissions", `{"source_code":"x"}`, 422, &e)
		if len(e["language_id"]) != 1 || e["language_id"][0] != "can't be blank" {
			t.Fatalf("blank language: %v", e)
		}
		jc.json(t, "POST", "/judge0/submissions", `{"source_code":"x","language_id":150000}`, 422, &e)
		if e["language_id"][0] != "language with id 150000 doesn't exist" {
			t.Fatalf("unknown language: %v", e)
		}
		e = nil
		jc.json(t, "POST", "/judge0/submissions", `{"source_code":"x","language_id":71,"memory_limit":99999999}`, 422, &e)
		if len(e["memory_limit"]) != 1 {
			t.Fatalf("over the operator's maximum: %v", e)
		}
	})

	t.Run("batch", func(t *testing.T) {
		body := mustJSON(map[string]any{"submissions": []map[string]any{
			{"source_code": "print(1)", "language_id": 71},
			{"source_code": "print(2)", "language_id": 150000},
			{"source_code": b64("print(3)"), "language_id": 71},
		}})
		var created []map[string]any
		jc.json(t, "POST", "/judge0/submissions/batch", body, 201, &created)
		if len(created) != 3 || created[0]["token"] == nil || created[1]["language_id"] == nil || created[2]["token"] == nil {
			t.Fatalf("batch create: %v", created)
		}
		tokens := created[0]["token"].(string) + ",no-such-token," + created[2]["token"].(string)
		var got struct {
			Submissions []*judge0Submission `json:"submissions"`
		}
		c.Eventually(time.Minute, "the batch to finish", func() bool {
			got.Submissions = nil
			jc.json(t, "GET", "/judge0/submissions/batch?tokens="+tokens+"&fields=token,stdout,status", "", 200, &got)
			return len(got.Submissions) == 3 && got.Submissions[0].status() > 2 && got.Submissions[2].status() > 2
		})
		if got.Submissions[1] != nil || *got.Submissions[0].Stdout != "1\n" {
			t.Fatalf("batch show: %+v %+v", got.Submissions[0], got.Submissions[1])
		}
		// The third was sent base64 without saying so: Python reads it as
		// a name and fails, as on Judge0.
		if got.Submissions[2].status() == 3 {
			t.Fatalf("base64 source without base64_encoded ran: %+v", got.Submissions[2])
		}
		var e map[string]string
		jc.json(t, "POST", "/judge0/submissions/batch", `{"submissions":[]}`, 400, &e)
		if e["error"] != "there should be at least one submission in a batch" {
			t.Fatalf("empty batch: %v", e)
		}
		var all []map[string]any
		jc.json(t, "POST", "/judge0/submissions/batch", `{"submissions":[{"language_id":71}]}`, 422, &all)
	})

	t.Run("list, delete, system info, statistics, workers", func(t *testing.T) {
		// Another user's jobs are not listed.
		other := jc.with("X-Auth-Token", "", userToken(t, c, "judge0lister"))
		var mine struct {
			Submissions []map[string]any `json:"submissions"`
			Meta        map[string]any   `json:"meta"`
		}
		other.json(t, "POST", "/judge0/submissions?wait=true", mustJSON(map[string]any{"source_code": "print('listed')", "language_id": 71}), 201, nil)
		other.json(t, "GET", "/judge0/submissions", "", 200, &mine)
		if len(mine.Submissions) != 1 || mine.Submissions[0]["stdout"] != "listed\n" ||
			!reflect.DeepEqual(mine.Meta, map[string]any{"current_page": 1.0, "next_page": nil, "prev_page": nil, "total_pages": 1.0, "total_count": 1.0}) {
			t.Fatalf("the other user's list: %+v", mine)
		}
		var all struct {
			Submissions []map[string]any `json:"submissions"`
			Meta        map[string]any   `json:"meta"`
		}
		jc.json(t, "GET", "/judge0/submissions?per_page=3&page=2&fields=token,status,language_id", "", 200, &all)
		total := int(all.Meta["total_count"].(float64))
		if len(all.Submissions) != 3 || total < 10 || all.Meta["prev_page"] != 1.0 || len(all.Submissions[0]) != 3 {
			t.Fatalf("page 2: %+v", all)
		}
		// A token of the list reads back.
		var one judge0Submission
		jc.json(t, "GET", "/judge0/submissions/"+all.Submissions[0]["token"].(string), "", 200, &one)
		var e map[string]string
		jc.json(t, "GET", "/judge0/submissions?page=-4", "", 400, &e)
		if e["error"] != "invalid page: -4" {
			t.Fatalf("bad page: %v", e)
		}
		// Judge0's answer where deletion is off; the job stays.
		jc.json(t, "DELETE", "/judge0/submissions/"+one.Token, "", 400, &e)
		if e["error"] != "delete not allowed" {
			t.Fatalf("delete: %v", e)
		}
		jc.json(t, "GET", "/judge0/submissions/"+one.Token, "", 200, nil)

		var info map[string]string
		jc.json(t, "GET", "/judge0/system_info", "", 200, &info)
		if info["CPU(s)"] == "" || info["Mem"] == "" || info["Workers"] != "1" {
			t.Fatalf("system_info: %v", info)
		}
		var queues []map[string]any
		jc.json(t, "GET", "/judge0/workers", "", 200, &queues)
		found := false
		for _, q := range queues {
			if q["queue"] == "python" {
				found = q["available"] == 1.0 && q["size"] != nil && q["idle"] != nil && q["working"] != nil && q["paused"] != nil
			}
		}
		if !found {
			t.Fatalf("workers: %v", queues)
		}
		var stats struct {
			Submissions struct{ Total int }
			Languages   []struct {
				Language struct{ ID int }
				Count    int
			}
			Statuses []struct {
				Status struct {
					ID   int
					Name string
				}
				Count int
			}
			Database struct {
				SizeInBytes int64 `json:"size_in_bytes"`
			}
		}
		jc.json(t, "GET", "/judge0/statistics", "", 200, &stats)
		if stats.Submissions.Total < total+1 || len(stats.Languages) == 0 || stats.Languages[0].Language.ID != 71 ||
			len(stats.Statuses) == 0 || stats.Database.SizeInBytes <= 0 {
			t.Fatalf("statistics: %+v", stats)
		}
		var langs []map[string]any
		jc.json(t, "GET", "/judge0/languages/all", "", 200, &langs)
		for _, l := range langs {
			if l["id"] == 71.0 && (l["is_archived"] != false || !strings.HasPrefix(l["name"].(string), "Python (")) {
				t.Fatalf("languages/all: %v", l)
			}
		}
	})

	t.Run("auth", func(t *testing.T) {
		for _, cl := range []*compatClient{jc.with("Authorization", "Bearer ", c.Token), jc.with("Authorization", "", c.Token)} {
			cl.json(t, "GET", "/judge0/statuses", "", 200, nil)
		}
		for _, cl := range []*compatClient{jc.with("X-Auth-Token", "", ""), jc.with("X-Auth-Token", "", "wrong")} {
			cl.json(t, "GET", "/judge0/statuses", "", 401, nil)
		}
	})
}
