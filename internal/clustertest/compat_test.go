package clustertest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/clustertest"
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
