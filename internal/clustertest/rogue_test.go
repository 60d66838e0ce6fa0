package clustertest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/pki"
)

// A rogue is a worker client that anyone holding the join token could
// write: it joins under a name of its choosing with the real key, CSR and
// gRPC code, then says whatever it likes on its stream.
type rogue struct {
	t      *testing.T
	name   string
	conn   *grpc.ClientConn
	stream clusterpb.Cluster_ConnectClient
	sendMu sync.Mutex
	msgs   chan *clusterpb.MasterMessage
	cancel context.CancelFunc
	// draining is what its heartbeats say.
	draining atomic.Bool
}

// rogueJoin asks for a certificate for name with the join token.
func rogueJoin(t *testing.T, c *clustertest.Cluster, name string) (tls.Certificate, error) {
	t.Helper()
	keyPEM, csr, err := pki.NewWorkerKey(name)
	if err != nil {
		t.Fatal(err)
	}
	conn := rogueDial(t, c, nil)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := clusterpb.NewClusterClient(conn).Join(ctx, &clusterpb.JoinRequest{
		JoinToken: c.Master.JoinToken(), Name: name, CsrDer: csr,
	})
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.CertificateDer})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, nil
}

func rogueDial(t *testing.T, c *clustertest.Cluster, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg, err := pki.ClientTLS(c.Master.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(c.Master.ClusterAddr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// startRogue joins as name and connects announcing bash on one slot; it
// heartbeats (draining or not, see setDraining) until the test ends.
func startRogue(t *testing.T, c *clustertest.Cluster, name string) *rogue {
	t.Helper()
	cert, err := rogueJoin(t, c, name)
	if err != nil {
		t.Fatalf("rogue join: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rogue{t: t, name: name, conn: rogueDial(t, c, &cert), msgs: make(chan *clusterpb.MasterMessage, 100), cancel: cancel}
	t.Cleanup(func() { cancel(); r.conn.Close() })
	if r.stream, err = clusterpb.NewClusterClient(r.conn).Connect(ctx); err != nil {
		t.Fatalf("rogue connect: %v", err)
	}
	r.send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Hello{Hello: &clusterpb.Hello{
		Name: name, Slots: 1, Sandbox: "none", Version: "rogue",
		Languages: []*clusterpb.Language{{Name: "bash", Version: "5"}},
	}}})
	first, err := r.stream.Recv()
	if err != nil || first.GetWelcome() == nil {
		t.Fatalf("rogue hello: %v %v", first, err)
	}
	go func() {
		for {
			m, err := r.stream.Recv()
			if err != nil {
				close(r.msgs)
				return
			}
			r.msgs <- m
		}
	}()
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				r.heartbeat()
			}
		}
	}()
	return r
}

func (r *rogue) send(m *clusterpb.WorkerMessage) {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	_ = r.stream.Send(m)
}

func (r *rogue) heartbeat() {
	r.send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Heartbeat{Heartbeat: &clusterpb.Heartbeat{Draining: r.draining.Load()}}})
}

// setDraining says it is shutting down: the master gives it no new job.
func (r *rogue) setDraining() {
	r.draining.Store(true)
	r.heartbeat()
}

// next returns the next message of the given kind, skipping others.
func (r *rogue) next(timeout time.Duration, match func(*clusterpb.MasterMessage) bool) *clusterpb.MasterMessage {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-r.msgs:
			if !ok {
				r.t.Fatalf("rogue %s: stream closed", r.name)
			}
			if match(m) {
				return m
			}
		case <-deadline:
			r.t.Fatalf("rogue %s: no such message in %s", r.name, timeout)
		}
	}
}

func (r *rogue) nextAssign(timeout time.Duration) *clusterpb.Assign {
	r.t.Helper()
	return r.next(timeout, func(m *clusterpb.MasterMessage) bool { return m.GetAssign() != nil }).GetAssign()
}

func (r *rogue) release(a *clusterpb.AttemptRef) {
	r.send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Release{Release: &clusterpb.Release{
		Attempt: a, Reason: "worker " + r.name + " shut down",
	}}})
}

// auditLog keeps the master's log lines for the test to search.
type auditLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *auditLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *auditLog) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), substr)
}

func withLog(l *auditLog) func(*master.Config) {
	return func(cfg *master.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

// auditedCluster starts a cluster whose master's log (audit lines
// included) the test reads, and a context that bounds the test to a
// minute.
func auditedCluster(t *testing.T) (*clustertest.Cluster, *auditLog, context.Context) {
	t.Helper()
	log := &auditLog{}
	c := clustertest.Start(t, clustertest.Options{Master: withLog(log)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c, log, ctx
}

// TestRogueWorkerCannotForgeAnotherAttempt is the attack of issue 11: a
// worker that joined with the join token gets a job, gives it back, and
// once attempt 2 runs elsewhere reports a forged result and output for
// it. The job keeps the real worker's result and its watchers see only
// the real output.
func TestRogueWorkerCannotForgeAnotherAttempt(t *testing.T) {
	c, log, ctx := auditedCluster(t)
	r := startRogue(t, c, "rogue")
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "sleep 1; echo real"})
	if err != nil {
		t.Fatal(err)
	}
	first := r.nextAssign(10 * time.Second)
	if first.Attempt.JobId != job.ID || first.Attempt.Attempt != 1 {
		t.Fatalf("rogue got %v, want attempt 1 of %s", first.Attempt, job.ID)
	}
	// Shutting down, it says: no new job for it, and this one given back.
	r.setDraining()
	time.Sleep(100 * time.Millisecond)
	r.release(first.Attempt)

	c.AddWorker(clustertest.WorkerOptions{Name: "honest", Slots: 1, Languages: []string{"bash"}})
	c.WaitLanguage("bash")
	events := make(chan api.Event, 100)
	go func() {
		_ = c.Client.Events(ctx, job.ID, func(ev api.Event) error { events <- ev; return nil })
		close(events)
	}()
	running := waitRunning(t, c, job.ID)
	if running.Worker != "honest" || running.Attempts != 2 {
		t.Fatalf("second attempt on %q, attempt %d; want honest, 2", running.Worker, running.Attempts)
	}

	// The forgery, for the attempt that runs on honest.
	second := &clusterpb.AttemptRef{JobId: job.ID, Attempt: 2}
	r.send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Accepted{Accepted: &clusterpb.Accepted{Attempt: second}}})
	r.send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Output{Output: &clusterpb.Output{
		Attempt: second, Stream: "stdout", Data: []byte("forged\n"), Test: -1,
	}}})
	r.send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Result{Result: &clusterpb.Result{
		Attempt: second, Verdict: "ok", Version: "5",
		Run: &clusterpb.RunResult{Stdout: []byte("forged\n")},
	}}})
	r.send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Release{Release: &clusterpb.Release{Attempt: second, Reason: "forged"}}})

	final, err := c.Client.Wait(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != api.StatusDone || final.Worker != "honest" || final.Attempts != 2 || final.Run == nil || final.Run.Stdout != "real\n" {
		t.Fatalf("stored job: status %q worker %q attempts %d run %+v; want done by honest, attempt 2, stdout \"real\\n\"",
			final.Status, final.Worker, final.Attempts, final.Run)
	}
	var streamed strings.Builder
	for ev := range events {
		if ev.Type == "output" {
			streamed.WriteString(ev.Data)
		}
	}
	if got := streamed.String(); strings.Contains(got, "forged") || got != "real\n" {
		t.Fatalf("the owner's live stream showed %q, want only the real output", got)
	}
	if n := log.count("not this worker's"); n < 3 {
		t.Errorf("%d forged messages audit-logged, want the output, result and release at least", n)
	}
}

// TestReleasingWorkerIsDrained: a worker that takes every job and gives it
// back costs the job none of its attempts and is drained; the job then
// finishes on an honest worker.
func TestReleasingWorkerIsDrained(t *testing.T) {
	c, log, ctx := auditedCluster(t)
	r := startRogue(t, c, "releaser")
	job, err := c.Client.Submit(ctx, &api.JobRequest{Language: "bash", Source: "echo ran"})
	if err != nil {
		t.Fatal(err)
	}
	// Alone, the releaser is given the job again and again: more times
	// than the job has attempts (3), until it is drained.
	var drain *clusterpb.Drain
	releases := 0
	for drain == nil {
		m := r.next(10*time.Second, func(m *clusterpb.MasterMessage) bool { return m.GetAssign() != nil || m.GetDrain() != nil })
		if a := m.GetAssign(); a != nil {
			r.release(a.Attempt)
			releases++
		}
		drain = m.GetDrain()
	}
	if !drain.Drain || !strings.Contains(drain.Reason, "gave back") {
		t.Fatalf("drain message %+v", drain)
	}
	if releases != 5 {
		t.Errorf("drained after %d releases, want the first past slots+3 = 4", releases)
	}
	c.Eventually(5*time.Second, "releaser listed draining", func() bool { return workerStatus(c, "releaser") == api.WorkerDraining })
	if log.count("worker drained") != 1 {
		t.Errorf("the drain is not in the audit log once")
	}
	// Its heartbeats (not draining) do not undo the master's drain.
	time.Sleep(500 * time.Millisecond)
	if s := workerStatus(c, "releaser"); s != api.WorkerDraining {
		t.Fatalf("releaser status %q after its heartbeats, want draining", s)
	}

	c.AddWorker(clustertest.WorkerOptions{Name: "honest", Slots: 1, Languages: []string{"bash"}})
	j, err := c.Client.Wait(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != api.StatusDone || j.Worker != "honest" || j.Run == nil || j.Run.Stdout != "ran\n" || j.Attempts != releases+1 {
		t.Fatalf("job: status %q worker %q attempts %d error %q; want done by honest at attempt %d",
			j.Status, j.Worker, j.Attempts, j.Error, releases+1)
	}
}

// TestJoinTokenCannotTakeOverALiveWorker: joining with the join token
// under the name of a live worker is refused, and the worker keeps
// working; once an admin revokes it, the name can be joined again.
func TestJoinTokenCannotTakeOverALiveWorker(t *testing.T) {
	c, log, ctx := auditedCluster(t)
	c.AddWorker(clustertest.WorkerOptions{Name: "victim", Slots: 1, Languages: []string{"bash"}})
	c.WaitLanguage("bash")

	_, err := rogueJoin(t, c, "victim")
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "taken") || !strings.Contains(err.Error(), "revoke") {
		t.Fatalf("join-token join as a live worker: %v, want AlreadyExists saying the name is taken", err)
	}
	if log.count("the name has a live identity") != 1 {
		t.Errorf("the refused join is not in the audit log")
	}
	// The victim is still itself: connected, and its jobs run on it.
	time.Sleep(300 * time.Millisecond)
	if s := workerStatus(c, "victim"); s != api.WorkerUp {
		t.Fatalf("victim status %q", s)
	}
	j := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo still me"})
	if j.Status != api.StatusDone || j.Worker != "victim" || j.Run.Stdout != "still me\n" {
		t.Fatalf("job after the takeover attempt: status %q worker %q run %+v", j.Status, j.Worker, j.Run)
	}

	// An admin revokes the identity: now the name may be joined again.
	c.StopWorker("victim")
	if err := c.Client.RevokeWorker(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	if _, err := rogueJoin(t, c, "victim"); err != nil {
		t.Fatalf("join after the revocation: %v", err)
	}
}

// TestRenewalKeepsTheName: a worker renews with its own certificate (and,
// as every worker does, its join token too): that is not a takeover, and
// the new certificate replaces the old one. A restarted worker with its
// data directory keeps its name.
func TestRenewalKeepsTheName(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cert, err := rogueJoin(t, c, "renewer")
	if err != nil {
		t.Fatal(err)
	}
	_, csr, err := pki.NewWorkerKey("renewer")
	if err != nil {
		t.Fatal(err)
	}
	conn := rogueDial(t, c, &cert)
	defer conn.Close()
	resp, err := clusterpb.NewClusterClient(conn).Join(ctx, &clusterpb.JoinRequest{
		JoinToken: c.Master.JoinToken(), Name: "renewer", CsrDer: csr,
	})
	if err != nil {
		t.Fatalf("renewal with the current certificate: %v", err)
	}
	ids, err := c.Client.WorkerIdentities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id.Name == "renewer" && id.Serial == pki.SerialString(cert.Leaf) {
			t.Fatalf("identity still has the old serial after the renewal: %+v", id)
		}
	}
	if resp.CertificateDer == nil {
		t.Fatal("no certificate")
	}
	// The superseded certificate renews no more, and with the token alone
	// the name is still taken.
	if _, err := clusterpb.NewClusterClient(conn).Join(ctx, &clusterpb.JoinRequest{
		JoinToken: c.Master.JoinToken(), Name: "renewer", CsrDer: csr,
	}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("renewal with a superseded certificate: %v, want AlreadyExists", err)
	}

	c.AddWorker(clustertest.WorkerOptions{Name: "restarted", Slots: 1, Languages: []string{"bash"}})
	c.StopWorker("restarted")
	c.AddWorker(clustertest.WorkerOptions{Name: "restarted", Slots: 1, Languages: []string{"bash"}})
	c.WaitLanguage("bash")
	if j := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo back"}); j.Status != api.StatusDone || j.Worker != "restarted" {
		t.Fatalf("job on the restarted worker: status %q worker %q", j.Status, j.Worker)
	}
}

// TestRevokedWorkerWithTheTokenJoinsAgain: a revoked name is free, so a
// worker that still holds the join token (a local or autoscaled worker
// whose name was retired and is started again) joins again under it with
// a new certificate instead of knocking at the door forever.
func TestRevokedWorkerWithTheTokenJoinsAgain(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	c.AddWorker(clustertest.WorkerOptions{Name: "phoenix", Slots: 1, Languages: []string{"bash"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	serial := func() (string, bool) {
		ids, err := c.Client.WorkerIdentities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if id.Name == "phoenix" {
				return id.Serial, id.RevokedAt == nil
			}
		}
		return "", false
	}
	before, _ := serial()
	if err := c.Client.RevokeWorker(ctx, "phoenix"); err != nil {
		t.Fatal(err)
	}
	c.Eventually(15*time.Second, "phoenix joined again", func() bool {
		s, live := serial()
		return live && s != before && workerStatus(c, "phoenix") == api.WorkerUp
	})
	c.WaitLanguage("bash")
	if j := submitWait(t, c, api.JobRequest{Language: "bash", Source: "echo again"}); j.Status != api.StatusDone || j.Worker != "phoenix" {
		t.Fatalf("job after the re-join: status %q worker %q", j.Status, j.Worker)
	}
}
