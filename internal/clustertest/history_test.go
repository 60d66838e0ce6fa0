package clustertest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// listIDs asks GET /api/v1/jobs?query and returns the ids and the next cursor.
func listIDs(t *testing.T, raw *rawClient, query string) ([]string, string) {
	t.Helper()
	code, body := raw.do(t, "GET", "/api/v1/jobs?"+query, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/jobs?%s: %d %s", query, code, body)
	}
	var list api.JobList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range list.Jobs {
		ids = append(ids, j.ID)
	}
	return ids, list.Next
}

// TestJobHistory: the history's cursor paging and filters, as the web UI
// uses them, and the refusal of bad parameters with a message naming them.
func TestJobHistory(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 2, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	ctx := context.Background()
	aliceToken := userToken(t, c, "alice")
	alice := c.NewClient(aliceToken)
	defer alice.Close()
	run := func(src string) api.Job {
		j, err := alice.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: src}, time.Minute)
		if err != nil || j.Status != api.StatusDone {
			t.Fatalf("run %q: %+v %v", src, j, err)
		}
		return *j
	}
	ok1 := run("echo needle")
	bad := run("exit 3")
	ok2 := run("echo hay")
	// Someone else's job is in no page of alice's.
	if _, err := c.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo needle"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	raw := newRaw(t, c)
	raw.token = aliceToken

	// Pages of one, newest first, each naming the next.
	var got []string
	next := ""
	for range 5 {
		ids, n := listIDs(t, raw, "limit=1&before="+url.QueryEscape(next))
		got = append(got, ids...)
		if n == "" {
			break
		}
		next = n
	}
	if want := []string{ok2.ID, bad.ID, ok1.ID}; !slices.Equal(got, want) {
		t.Errorf("paging by one: %v, want %v", got, want)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"verdict=runtime_error", []string{bad.ID}},
		{"verdict=ok", []string{ok2.ID, ok1.ID}},
		{"language=bash&verdict=ok&q=needle", []string{ok1.ID}},
		{"language=python", nil},
		{"q=" + url.QueryEscape(ok2.ID[len(ok2.ID)-6:]), []string{ok2.ID}},
		{"since=" + url.QueryEscape(ok1.CreatedAt.Add(time.Hour).Format(time.RFC3339)), nil},
		{"until=" + ok1.CreatedAt.Format(time.DateOnly), []string{ok2.ID, bad.ID, ok1.ID}},
	} {
		if ids, _ := listIDs(t, raw, tc.query); !slices.Equal(ids, tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, ids, tc.want)
		}
	}

	for _, tc := range []struct{ query, message string }{
		{"verdict=great", "unknown verdict"},
		{"language=" + url.QueryEscape("c; drop table"), "is not a language name"},
		{"since=yesterday", "since:"},
		{"since=2026-01-02&until=2026-01-01", "since must be before until"},
		{"before=no-such-job", "before: no such job"},
		{"q=" + strings.Repeat("x", 201), "q is over 200 bytes"},
		{"limit=0", "limit must be between 1 and 1000"},
	} {
		code, body := raw.do(t, "GET", "/api/v1/jobs?"+tc.query, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(body), tc.message) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.query, code, body, tc.message)
		}
	}
}

// TestJobShare: a job's owner makes a read-only link, which opens that job
// without a session and nothing more; a new link replaces the old one;
// revoking it closes it. Nobody else may share, read or revoke the link.
func TestJobShare(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{
		Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}},
		// The job's callback goes to a closed port on loopback.
		Master: func(cfg *master.Config) { cfg.Callbacks.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} },
	})
	c.WaitLanguage("bash")
	ctx := context.Background()
	aliceToken := userToken(t, c, "alice")
	alice := c.NewClient(aliceToken)
	defer alice.Close()
	// Its callback URL carries a key of its receiver's: not for readers
	// of the link.
	j, err := alice.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo shared",
		CallbackURL: "http://127.0.0.1:1/hook?key=receiver-secret"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	owner := newRaw(t, c)
	owner.token = aliceToken
	other := newRaw(t, c)
	other.token = userToken(t, c, "bob")
	admin := newRaw(t, c)
	anon := newRaw(t, c)
	anon.token = ""
	share := "/api/v1/jobs/" + j.ID + "/share"

	// Another user's job is no cursor of one's history: it would tell
	// that the job exists.
	if code, _ := other.do(t, "GET", "/api/v1/jobs?before="+j.ID, nil); code != http.StatusBadRequest {
		t.Errorf("bob's history before alice's job: %d, want 400 as for no such job", code)
	}
	if code, body := owner.do(t, "GET", share, nil); code != http.StatusOK || !strings.Contains(string(body), `"shared":false`) {
		t.Fatalf("share of a job never shared: %d %s", code, body)
	}
	for name, r := range map[string]*rawClient{"another user": other, "an admin": admin, "no session": anon} {
		if code, _ := r.do(t, "POST", share, nil); code < 400 || code >= 500 {
			t.Errorf("%s shared alice's job: %d", name, code)
		}
	}

	code, body := owner.do(t, "POST", share, nil)
	var sh api.Share
	if code != http.StatusCreated || json.Unmarshal(body, &sh) != nil || !sh.Shared || sh.Token == "" || sh.URL != "/shared/"+sh.Token {
		t.Fatalf("POST share: %d %s", code, body)
	}
	code, body = anon.do(t, "GET", "/api/v1/shared/"+sh.Token, nil)
	var pub api.Job
	if code != http.StatusOK || json.Unmarshal(body, &pub) != nil {
		t.Fatalf("shared job without a session: %d %s", code, body)
	}
	if pub.ID != j.ID || pub.Run == nil || pub.Run.Stdout != "shared\n" || pub.Request == nil || pub.Request.Source != "echo shared" {
		t.Errorf("shared job: %s", body)
	}
	if pub.Owner != "" || pub.Worker != "" || len(pub.Labels) != 0 || len(pub.Request.Labels) != 0 {
		t.Errorf("the shared job shows its owner, worker or labels: %s", body)
	}
	if strings.Contains(string(body), "receiver-secret") {
		t.Errorf("the shared job shows its callback URL: %s", body)
	}
	// The link's token is no credential for anything else.
	tokenAsBearer := newRaw(t, c)
	tokenAsBearer.token = sh.Token
	for _, path := range []string{"/api/v1/jobs/" + j.ID, "/api/v1/jobs", "/api/v1/session"} {
		if code, _ := tokenAsBearer.do(t, "GET", path, nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s with the share token: %d, want 401", path, code)
		}
	}
	if code, _ := anon.do(t, "GET", "/api/v1/shared/not-a-token", nil); code != http.StatusNotFound {
		t.Errorf("an unknown share token: %d, want 404", code)
	}
	if code, body := owner.do(t, "GET", share, nil); code != http.StatusOK || !strings.Contains(string(body), `"shared":true`) || strings.Contains(string(body), sh.Token) {
		t.Errorf("GET share: %d %s (shared, without the token)", code, body)
	}

	// A new link replaces the old.
	_, body = owner.do(t, "POST", share, nil)
	var second api.Share
	_ = json.Unmarshal(body, &second)
	if code, _ := anon.do(t, "GET", "/api/v1/shared/"+sh.Token, nil); code != http.StatusNotFound {
		t.Errorf("the replaced link still opens the job: %d", code)
	}
	if code, _ := anon.do(t, "GET", "/api/v1/shared/"+second.Token, nil); code != http.StatusOK {
		t.Errorf("the new link: %d", code)
	}

	if code, _ := other.do(t, "DELETE", share, nil); code != http.StatusNotFound {
		t.Errorf("bob revoked alice's link: %d", code)
	}
	if code, body := owner.do(t, "DELETE", share, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE share: %d %s", code, body)
	}
	if code, _ := anon.do(t, "GET", "/api/v1/shared/"+second.Token, nil); code != http.StatusNotFound {
		t.Errorf("a revoked link still opens the job: %d", code)
	}
	if code, _ := owner.do(t, "DELETE", share, nil); code != http.StatusNotFound {
		t.Errorf("revoking twice: %d, want 404", code)
	}

	// The audit log tells who made and revoked links, never their tokens.
	code, body = admin.do(t, "GET", "/api/v1/audit?actor=alice", nil)
	var audit api.AuditList
	if code != http.StatusOK || json.Unmarshal(body, &audit) != nil {
		t.Fatalf("audit: %d %s", code, body)
	}
	counts := map[string]int{}
	for _, e := range audit.Entries {
		if e.Target == j.ID {
			counts[e.Action]++
		}
	}
	if counts["job.share"] != 2 || counts["job.unshare"] != 1 {
		t.Errorf("audit of alice's links: %v, want 2 job.share and 1 job.unshare", counts)
	}
	if strings.Contains(string(body), sh.Token) || strings.Contains(string(body), second.Token) {
		t.Errorf("the audit log shows a link's token: %s", body)
	}
}

// TestLanguagesShowLimits: the languages list carries the cluster's
// default and maximum limits, for the limits form.
func TestLanguagesShowLimits(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	code, body := newRaw(t, c).do(t, "GET", "/api/v1/languages", nil)
	var list api.LanguageList
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil || list.Limits == nil {
		t.Fatalf("languages: %d %s", code, body)
	}
	if list.Limits.Max.CPUMs <= 0 || list.Limits.Default.CPUMs <= 0 || list.Limits.Default.CPUMs > list.Limits.Max.CPUMs {
		t.Errorf("limits: %+v", list.Limits)
	}
}
