package clustertest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// compatClient calls the Piston and Judge0 APIs as their clients do:
// the token in a header of the caller's choosing, any Content-Type.
type compatClient struct {
	raw *rawClient
	// header and prefix carry the token: "Authorization" with "Bearer ",
	// "Authorization" bare, or "X-Auth-Token".
	header, prefix string
	token          string
	contentType    string
}

func newCompat(t *testing.T, c *clustertest.Cluster) *compatClient {
	return &compatClient{raw: newRaw(t, c), header: "Authorization", prefix: "Bearer ", token: c.Token, contentType: "application/json"}
}

func (cc *compatClient) with(header, prefix, token string) *compatClient {
	n := *cc
	n.header, n.prefix, n.token = header, prefix, token
	return &n
}

func (cc *compatClient) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, cc.raw.c.Master.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if cc.token != "" {
		req.Header.Set(cc.header, cc.prefix+cc.token)
	}
	if body != "" {
		req.Header.Set("Content-Type", cc.contentType)
	}
	client := *cc.raw.http
	client.Timeout = 3 * time.Minute
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// json calls and decodes the answer into v, checking the status.
func (cc *compatClient) json(t *testing.T, method, path, body string, status int, v any) {
	t.Helper()
	got, b := cc.do(t, method, path, body)
	if got != status {
		t.Fatalf("%s %s: status %d, want %d; body %.500s", method, path, got, status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v; body %.500s", method, path, err, b)
		}
	}
}

// userToken adds a user with role user and returns an API token of it.
func userToken(t *testing.T, c *clustertest.Cluster, name string) string {
	t.Helper()
	ctx := context.Background()
	if err := c.Client.AddUser(ctx, name, "correct horse "+name, "user"); err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	anon := c.NewClient("")
	defer anon.Close()
	token, err := anon.Login(ctx, name, "correct horse "+name)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return token
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func programFor(t *testing.T, lang string) program {
	for _, p := range programs {
		if p.lang == lang {
			return p
		}
	}
	t.Fatalf("no test program for %s", lang)
	return program{}
}

func TestCompatAnonymousUser(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{
		Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 1, Languages: []string{"python"}}},
		Master:  func(cfg *master.Config) { cfg.AnonymousUser = "guest" },
	})
	c.WaitLanguage("python")
	anon := newCompat(t, c).with("Authorization", "", "")
	var res pistonResult
	anon.json(t, "POST", "/api/v2/execute", `{"language":"python","version":"*","files":[{"content":"print('anon')"}]}`, 200, &res)
	if res.Run.Stdout != "anon\n" {
		t.Fatalf("anonymous execute: %+v", res.Run)
	}
	var sub judge0Submission
	anon.json(t, "POST", "/judge0/submissions?wait=true", `{"source_code":"print(1)","language_id":71}`, 201, &sub)
	if sub.status() != 3 {
		t.Fatalf("anonymous submission: %+v", sub)
	}
	// The guest's submissions are every anonymous caller's: not listed
	// to a caller without a token.
	var refused map[string]string
	anon.json(t, "GET", "/judge0/submissions", "", 403, &refused)
	if !strings.Contains(refused["error"], "token") {
		t.Fatalf("anonymous list: %v", refused)
	}
	// A wrong token is not taken for no token.
	anon.with("X-Auth-Token", "", "wrong").json(t, "GET", "/judge0/statuses", "", 401, nil)
	// The rest of the API still wants a token.
	if status, _ := anon.do(t, "GET", "/api/v1/jobs", ""); status != 401 {
		t.Fatalf("GET /api/v1/jobs without a token: %d", status)
	}
	// The jobs are the guest's, an ordinary user.
	jobs, err := c.Client.Jobs(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].Owner != "guest" || jobs[1].Owner != "guest" {
		t.Fatalf("jobs %+v", jobs)
	}
	users, err := c.Client.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(users, func(u api.User) bool { return u.Username == "guest" }); i < 0 || users[i].Role != "user" {
		t.Fatalf("users %+v: no guest with role user", users)
	}
}
