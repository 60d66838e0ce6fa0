package clustertest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// addUser creates a user and returns a client logged in as them.
func addUser(t *testing.T, c *clustertest.Cluster, name, role string) *client.Client {
	t.Helper()
	ctx := context.Background()
	if err := c.Client.AddUser(ctx, name, "correct horse "+name, role); err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	anon := c.NewClient("")
	defer anon.Close()
	token, err := anon.Login(ctx, name, "correct horse "+name)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return c.NewClient(token)
}

func TestUsersAndIsolation(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 2, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	ctx := context.Background()
	alice := addUser(t, c, "alice", "user")
	bob := addUser(t, c, "bob", "user")

	job := clustertest.Must(t).Finished(alice.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo secret"}, time.Minute))
	if job.Owner != "alice" || clustertest.RunOf(t, job).Stdout != "secret\n" {
		t.Fatalf("alice's job: %+v", job)
	}
	// Bob can neither read, wait on, stream nor cancel it: 404, not 403.
	if _, err := bob.Job(ctx, job.ID); !client.IsNotFound(err) {
		t.Fatalf("bob reading alice's job: %v, want 404", err)
	}
	if _, err := bob.Cancel(ctx, job.ID); !client.IsNotFound(err) {
		t.Fatalf("bob cancelling alice's job: %v, want 404", err)
	}
	if err := bob.Events(ctx, job.ID, func(api.Event) error { return nil }); !client.IsNotFound(err) {
		t.Fatalf("bob streaming alice's job: %v, want 404", err)
	}
	if jobs, err := bob.Jobs(ctx, "", 100); err != nil || len(jobs) != 0 {
		t.Fatalf("bob's list: %d jobs, %v; want none", len(jobs), err)
	}
	if jobs, err := c.Client.Jobs(ctx, "", 100); err != nil || len(jobs) != 1 {
		t.Fatalf("admin's list: %d jobs, %v; want alice's", len(jobs), err)
	}
	// Admin-only endpoints answer 403 to a user.
	if _, err := bob.Workers(ctx); !client.IsForbidden(err) {
		t.Fatalf("bob listing workers: %v, want 403", err)
	}
	if err := bob.AddUser(ctx, "mallory", "password123", "admin"); !client.IsForbidden(err) {
		t.Fatalf("bob adding a user: %v, want 403", err)
	}
	// Wrong password and unknown user both answer 401, the same way.
	anon := c.NewClient("")
	defer anon.Close()
	for _, who := range []string{"alice", "nobody"} {
		if _, err := anon.Login(ctx, who, "wrong password"); !client.IsUnauthorized(err) {
			t.Fatalf("bad login as %s: %v, want 401", who, err)
		}
	}
	// A user changes their own password, not someone else's.
	if err := bob.SetPassword(ctx, "alice", "hijacked-pass"); !client.IsForbidden(err) {
		t.Fatalf("bob setting alice's password: %v, want 403", err)
	}
	if err := bob.SetPassword(ctx, "bob", "a new password"); err != nil {
		t.Fatalf("bob's own password: %v", err)
	}
	if _, err := anon.Login(ctx, "bob", "a new password"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	// Removing a user revokes their tokens at once.
	if err := c.Client.RemoveUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Jobs(ctx, "", 1); !client.IsUnauthorized(err) {
		t.Fatalf("removed user's token: %v, want 401", err)
	}
	if err := c.Client.RemoveUser(ctx, "admin"); err == nil {
		t.Fatal("the built-in admin was removed")
	}
	if err := c.Client.AddUser(ctx, "alice", "another password", "user"); !client.IsConflict(err) {
		t.Fatalf("duplicate user: %v, want 409", err)
	}
	if err := c.Client.AddUser(ctx, "../evil", "password123", "user"); client.StatusCode(err) != 422 {
		t.Fatalf("hostile user name: %v, want 422", err)
	}
	if err := c.Client.AddUser(ctx, "shortpw", "x", "user"); client.StatusCode(err) != 422 {
		t.Fatalf("short password: %v, want 422", err)
	}
}

func TestFairShareBetweenUsers(t *testing.T) {
	// Alice floods the queue with 40 jobs; Bob's one job, submitted after,
	// must run within the next few slots, not after all of Alice's.
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 1, Languages: []string{"bash"}}}})
	c.WaitLanguage("bash")
	ctx := context.Background()
	alice := addUser(t, c, "alice", "user")
	bob := addUser(t, c, "bob", "user")
	var ids []string
	for i := range 40 {
		j, err := alice.Submit(ctx, &api.JobRequest{Language: "bash", Source: fmt.Sprintf("sleep 0.05; echo %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	bj, err := bob.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo bob"}, time.Minute)
	if err != nil || bj.Status != api.StatusDone {
		t.Fatalf("bob's job: %+v %v", bj, err)
	}
	var wg sync.WaitGroup
	before := 0
	var mu sync.Mutex
	for _, id := range ids {
		wg.Go(func() {
			j, err := alice.Wait(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			// Alice's jobs that started while Bob's was waiting: some
			// of hers may have started before he even submitted.
			if j.StartedAt.After(bj.CreatedAt) && j.StartedAt.Before(*bj.StartedAt) {
				mu.Lock()
				before++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if before > 1 {
		t.Fatalf("%d of alice's jobs started while bob's single job waited; round robin allows one at most", before)
	}
	t.Logf("alice's jobs started while bob's waited: %d of 40", before)
}

func TestQueueCapAndRateLimits(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.MaxQueuedPerUser = 3 }})
	ctx := context.Background()
	erin := addUser(t, c, "erin", "user")
	for range 3 {
		if _, err := erin.Submit(ctx, &api.JobRequest{Language: "bash", Source: "true"}); err != nil {
			t.Fatal(err)
		}
	}
	// No worker: the jobs wait, and the fourth is refused with 429 and
	// Retry-After; another user is not affected.
	raw := newRaw(t, c)
	tok, err := erin.CreateToken(ctx, "raw")
	if err != nil {
		t.Fatal(err)
	}
	raw.token = tok.Token
	status, body := raw.do(t, "POST", "/api/v1/jobs", strings.NewReader(`{"language":"bash","source":"true"}`))
	if status != 429 || !strings.Contains(string(body), "rate_limited") {
		t.Fatalf("fourth queued job: %d %s, want 429", status, body)
	}
	if _, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "true"}); err != nil {
		t.Fatalf("another user's job was refused: %v", err)
	}

	// Login attempts are throttled per user name: after the burst, even
	// the right password is refused for a while.
	anon := c.NewClient("")
	defer anon.Close()
	throttled := false
	for range 12 {
		_, err := anon.Login(ctx, "erin", "wrong password")
		if client.IsRateLimited(err) {
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("12 wrong passwords in a row were never throttled")
	}
	if _, err := anon.Login(ctx, "erin", "correct horse erin"); !client.IsRateLimited(err) {
		t.Fatalf("login right after the throttle: %v, want 429", err)
	}
}

func TestLoginTokensExpireAndPasswordChangeRevokesThem(t *testing.T) {
	const ttl = 2 * time.Second
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.LoginTTL = ttl }})
	ctx := context.Background()
	loggedIn := time.Now()
	alice := addUser(t, c, "alice", "user")
	apiTok, err := alice.CreateToken(ctx, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if apiTok.Kind != api.TokenKindAPI || apiTok.ExpiresAt != nil {
		t.Fatalf("created token: kind %q expires %v, want api, never", apiTok.Kind, apiTok.ExpiresAt)
	}
	shortTok, err := alice.CreateTokenExpiring(ctx, "short", time.Now().Add(ttl))
	if err != nil || shortTok.ExpiresAt == nil {
		t.Fatalf("token with an expiry: %+v %v", shortTok, err)
	}
	ts, err := alice.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	var last time.Time // the latest expiry of the two that expire
	for _, tk := range ts {
		kinds[tk.Name] = tk.Kind
		if tk.ExpiresAt != nil && tk.ExpiresAt.After(last) {
			last = *tk.ExpiresAt
		}
		if tk.Kind == api.TokenKindLogin && (tk.ExpiresAt == nil || tk.ExpiresAt.Before(loggedIn.Add(ttl)) || tk.ExpiresAt.After(time.Now().Add(ttl))) {
			t.Errorf("login token expires %v, want %v after the login", tk.ExpiresAt, ttl)
		}
	}
	if kinds["login"] != api.TokenKindLogin || kinds["ci"] != api.TokenKindAPI {
		t.Fatalf("token kinds %v, want login and api", kinds)
	}

	// Past the TTL, the login token and the short one answer 401 saying
	// why; the API token without expiry still works.
	time.Sleep(time.Until(last.Add(100 * time.Millisecond)))
	short := c.NewClient(shortTok.Token)
	defer short.Close()
	for name, cl := range map[string]interface {
		Jobs(context.Context, string, int) ([]api.Job, error)
	}{"login": alice, "short": short} {
		_, err := cl.Jobs(ctx, "", 1)
		if !client.IsUnauthorized(err) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("%s token past its expiry: %v, want 401 saying it expired", name, err)
		}
	}
	ci := c.NewClient(apiTok.Token)
	defer ci.Close()
	if _, err := ci.Jobs(ctx, "", 1); err != nil {
		t.Fatalf("API token without expiry: %v", err)
	}

	// A password change revokes the login tokens (a fresh one here) and
	// keeps the API tokens.
	anon := c.NewClient("")
	defer anon.Close()
	fresh, err := anon.Login(ctx, "alice", "correct horse alice")
	if err != nil {
		t.Fatal(err)
	}
	session := c.NewClient(fresh)
	defer session.Close()
	if _, err := session.Jobs(ctx, "", 1); err != nil {
		t.Fatalf("fresh login token: %v", err)
	}
	if err := ci.SetPassword(ctx, "alice", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := session.Jobs(ctx, "", 1); !client.IsUnauthorized(err) {
		t.Fatalf("login token after a password change: %v, want 401", err)
	}
	if _, err := ci.Jobs(ctx, "", 1); err != nil {
		t.Fatalf("API token after a password change: %v", err)
	}
	// An admin changing the password revokes them the same way.
	again, err := anon.Login(ctx, "alice", "a brand new password")
	if err != nil {
		t.Fatal(err)
	}
	session2 := c.NewClient(again)
	defer session2.Close()
	if err := c.Client.SetPassword(ctx, "alice", "set by the admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := session2.Jobs(ctx, "", 1); !client.IsUnauthorized(err) {
		t.Fatalf("login token after an admin's password change: %v, want 401", err)
	}
}
