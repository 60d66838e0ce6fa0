package top

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
)

// TestFetcherAgainstCluster drives the real fetcher, through the SDK,
// against a real master and worker: an admin's snapshot, a plain user's
// 403, and a stopped master.
func TestFetcherAgainstCluster(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "w", Slots: 2, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("bash")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo hi"}, time.Minute); err != nil {
		t.Fatal(err)
	}

	f := &Fetcher{Source: c.Client}
	r := f.Fetch(ctx)
	if r.Err != nil {
		t.Fatalf("fetch: %v", r.Err)
	}
	s := r.Snapshot
	if len(s.Workers) != 1 || s.Workers[0].Name != "w" || s.Workers[0].Slots != 2 || s.Workers[0].Status != api.WorkerUp {
		t.Errorf("workers: %+v", s.Workers)
	}
	if s.Cluster.Jobs[api.StatusDone] != 1 || s.Cluster.Slots != 2 || s.Cluster.Workers[api.WorkerUp] != 1 {
		t.Errorf("cluster: %+v", s.Cluster)
	}
	var admin *api.Client
	for i := range s.Clients {
		if s.Clients[i].User == "admin" {
			admin = &s.Clients[i]
		}
	}
	if admin == nil || admin.JobsTotal != 1 {
		t.Errorf("clients: %+v, want admin with 1 job", s.Clients)
	}
	if s.Stats.IntervalSeconds <= 0 {
		t.Errorf("stats: %+v", s.Stats)
	}
	text := feed(New(Options{Addr: c.Master.URL()}), r).Text()
	sandbox := clustertest.SharedToolbox(t).Sandbox
	if sandbox == "none" {
		sandbox = "none (INSECURE)"
	}
	for _, want := range []string{c.Master.URL(), "1 up", "slots 0/2 used", "1 done", sandbox, "bash", "admin"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}

	// A plain user may not see the cluster.
	if err := c.Client.AddUser(ctx, "bob", "correct horse bob", api.RoleUser); err != nil {
		t.Fatal(err)
	}
	tok, err := c.NewClient("").Login(ctx, "bob", "correct horse bob")
	if err != nil {
		t.Fatal(err)
	}
	r = (&Fetcher{Source: c.NewClient(tok)}).Fetch(ctx)
	if Classify(r.Err) != Forbidden || r.Snapshot != nil {
		t.Errorf("bob's fetch: %v (problem %d), want forbidden", r.Err, Classify(r.Err))
	}

	// A stopped master is unreachable, and a fetch says so quickly.
	c.StopMaster()
	start := time.Now()
	r = (&Fetcher{Source: c.Client, Timeout: 2 * time.Second}).Fetch(ctx)
	if Classify(r.Err) != Unreachable {
		t.Errorf("fetch from a stopped master: %v (problem %d), want unreachable", r.Err, Classify(r.Err))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("fetch from a stopped master took %s", d)
	}
	if msg := Explain(r.Err, c.Master.URL()); !strings.Contains(msg, "master unreachable at "+c.Master.URL()) {
		t.Errorf("explanation: %q", msg)
	}
}
