package clustertest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
)

func TestWebSessionCookiesAndCSRF(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	if err := c.Client.AddUser(context.Background(), "carol", "carol's password", "user"); err != nil {
		t.Fatal(err)
	}
	raw := newRaw(t, c)
	jar, _ := cookiejar.New(nil)
	raw.http.Jar = jar
	raw.token = ""

	status, body := raw.do(t, "POST", "/api/v1/session", strings.NewReader(`{"username":"carol","password":"wrong"}`))
	if status != 401 {
		t.Fatalf("bad password: %d %s", status, body)
	}
	req, _ := http.NewRequest("POST", c.Master.URL()+"/api/v1/session", strings.NewReader(`{"username":"carol","password":"carol's password"}`))
	resp, err := raw.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session, csrf *http.Cookie
	for _, ck := range resp.Cookies() {
		switch ck.Name {
		case "grappe_session":
			session = ck
		case "grappe_csrf":
			csrf = ck
		}
	}
	if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", session)
	}
	if csrf == nil || csrf.HttpOnly || !csrf.Secure {
		t.Fatalf("csrf cookie %+v", csrf)
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": "frame-ancestors 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
	} {
		if !strings.Contains(resp.Header.Get(h), want) {
			t.Errorf("header %s = %q, want it to contain %q", h, resp.Header.Get(h), want)
		}
	}

	// Reading with the cookie works; changing state needs the CSRF header.
	status, body = raw.do(t, "GET", "/api/v1/session", nil)
	var s api.Session
	if status != 200 || json.Unmarshal(body, &s) != nil || s.Username != "carol" || s.CSRFToken != csrf.Value {
		t.Fatalf("GET session: %d %s", status, body)
	}
	job := `{"language":"bash","source":"echo web"}`
	if status, body = raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(job)); status != 403 {
		t.Fatalf("cookie POST without CSRF header: %d %s, want 403", status, body)
	}
	req, _ = http.NewRequest("POST", c.Master.URL()+"/api/v1/jobs?wait=true", strings.NewReader(job))
	req.Header.Set("X-CSRF-Token", "forged")
	if resp, err = raw.http.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("forged CSRF header: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", c.Master.URL()+"/api/v1/jobs?wait=true", strings.NewReader(job))
	req.Header.Set("X-CSRF-Token", csrf.Value)
	if resp, err = raw.http.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("cookie POST with CSRF header: %v %v", resp.StatusCode, err)
	}
	var j api.Job
	json.NewDecoder(resp.Body).Decode(&j)
	resp.Body.Close()
	if j.Owner != "carol" || j.Run == nil || j.Run.Stdout != "web\n" {
		t.Fatalf("job via the web session: %+v", j)
	}

	// Logout revokes the token: the old cookie no longer works.
	req, _ = http.NewRequest("DELETE", c.Master.URL()+"/api/v1/session", nil)
	req.Header.Set("X-CSRF-Token", csrf.Value)
	if resp, err = raw.http.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("logout: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("GET", c.Master.URL()+"/api/v1/jobs", nil)
	req.AddCookie(session)
	if resp, err = raw.http.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("old session cookie after logout: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestClientsAndStats(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{
		Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}},
	})
	c.WaitLanguage("bash")
	for range 3 {
		submitWait(t, c, api.JobRequest{Language: "bash", Source: "true"})
	}
	raw := newRaw(t, c)
	status, body := raw.do(t, "GET", "/api/v1/clients", nil)
	var cl api.ClientList
	if status != 200 || json.Unmarshal(body, &cl) != nil || len(cl.Clients) == 0 {
		t.Fatalf("clients: %d %s", status, body)
	}
	if cl.Clients[0].User != "admin" || cl.Clients[0].JobsTotal != 3 || cl.Clients[0].Requests < 3 {
		t.Fatalf("client entry %+v, want admin with 3 jobs", cl.Clients[0])
	}
	// The stats ring closes an interval every 5 s.
	var st api.Stats
	c.Eventually(8*time.Second, "a stats point", func() bool {
		_, body := raw.do(t, "GET", "/api/v1/stats", nil)
		return json.Unmarshal(body, &st) == nil && len(st.Points) > 0
	})
	if st.IntervalSeconds != 5 || st.Points[0].Completed != 3 || st.Points[0].Submitted != 3 {
		t.Fatalf("stats %+v, want the 3 jobs in the first point", st)
	}
}
