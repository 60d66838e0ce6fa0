package clustertest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/pki"
)

// protoWorker speaks the worker protocol by hand, message by message, to
// send what grappe's own worker would not (an old worker's hello, pieces
// out of order).
type protoWorker struct {
	t    *testing.T
	name string
	conn *grpc.ClientConn
}

func newProtoWorker(t *testing.T, c *clustertest.Cluster, name string) *protoWorker {
	t.Helper()
	tlsCfg, err := pki.ClientTLS(c.Master.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csr, err := pki.NewWorkerKey(name)
	if err != nil {
		t.Fatal(err)
	}
	joinConn, err := grpc.NewClient(c.Master.ClusterAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg.Clone())))
	if err != nil {
		t.Fatal(err)
	}
	defer joinConn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := clusterpb.NewClusterClient(joinConn).Join(ctx, &clusterpb.JoinRequest{JoinToken: c.Master.JoinToken(), Name: name, CsrDer: csr})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.CertificateDer}), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg.Certificates = []tls.Certificate{cert}
	conn, err := grpc.NewClient(c.Master.ClusterAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &protoWorker{t: t, name: name, conn: conn}
}

// connect opens a session with this hello (name, slot and python added)
// and returns the stream once welcomed.
func (p *protoWorker) connect(h *clusterpb.Hello) (clusterpb.Cluster_ConnectClient, context.CancelFunc) {
	p.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := clusterpb.NewClusterClient(p.conn).Connect(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	h.Name, h.Slots = p.name, 1
	h.Languages = []*clusterpb.Language{{Name: "python", Version: "3"}}
	if err := stream.Send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Hello{Hello: h}}); err != nil {
		p.t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
		p.t.Fatalf("welcome: %v %v", m, err)
	}
	return stream, cancel
}

// until receives until a message satisfies ok.
func until(t *testing.T, stream clusterpb.Cluster_ConnectClient, ok func(*clusterpb.MasterMessage) bool) *clusterpb.MasterMessage {
	t.Helper()
	got := make(chan *clusterpb.MasterMessage, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				close(got)
				return
			}
			if ok(m) {
				got <- m
				return
			}
		}
	}()
	select {
	case m, open := <-got:
		if !open {
			t.Fatal("the stream ended")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("nothing came")
		return nil
	}
}

func isAssign(m *clusterpb.MasterMessage) bool { return m.GetAssign() != nil }
func isAck(m *clusterpb.MasterMessage) bool    { return m.GetResultAck() != nil }

func sendParts(t *testing.T, stream clusterpb.Cluster_ConnectClient, r *clusterpb.Result, size int, order []int) {
	t.Helper()
	data, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var parts []*clusterpb.ResultPart
	for off := 0; off < len(data); off += size {
		end := min(off+size, len(data))
		parts = append(parts, &clusterpb.ResultPart{Attempt: r.Attempt, Offset: int64(off), Data: data[off:end], Last: end == len(data)})
	}
	if order == nil {
		for i := range parts {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if err := stream.Send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_ResultPart{ResultPart: parts[i]}}); err != nil {
			t.Fatal(err)
		}
	}
}

func okResult(a *clusterpb.AttemptRef, stdout []byte) *clusterpb.Result {
	return &clusterpb.Result{Attempt: a, Verdict: api.VerdictOK, Run: &clusterpb.RunResult{Verdict: api.VerdictOK, Stdout: stdout}}
}

// An older worker sends the results it finished while disconnected in its
// hello: still taken.
func TestOldWorkersPendingResultsInHelloStillTaken(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.WorkerTimeout = 10 * time.Second }})
	pw := newProtoWorker(t, c, "old")
	stream, cancel := pw.connect(&clusterpb.Hello{})
	job := submitAsync(t, c, "print(1)")
	a := until(t, stream, isAssign).GetAssign().Attempt
	cancel()

	stream, cancel = pw.connect(&clusterpb.Hello{PendingResults: []*clusterpb.Result{okResult(a, []byte("1\n"))}})
	defer cancel()
	until(t, stream, isAck)
	final, err := c.Client.Wait(context.Background(), job)
	if err != nil || final.Status != api.StatusDone || final.Attempts != 1 || final.Run.Stdout != "1\n" {
		t.Fatalf("%+v %v", final, err)
	}
}

// A worker reconnecting with a finished attempt keeps it while the result
// follows in pieces; pieces out of order are refused, the result sent
// again whole is taken.
func TestFinishedAttemptKeptWhileItsPiecesCome(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.WorkerTimeout = 10 * time.Second }})
	pw := newProtoWorker(t, c, "pieces")
	stream, cancel := pw.connect(&clusterpb.Hello{})
	job := submitAsync(t, c, "print(2)")
	a := until(t, stream, isAssign).GetAssign().Attempt
	cancel()

	stream, cancel = pw.connect(&clusterpb.Hello{Finished: []*clusterpb.AttemptRef{a}})
	defer cancel()
	// A beat later the attempt is still running, not queued again.
	time.Sleep(500 * time.Millisecond)
	if j, err := c.Client.Job(context.Background(), job); err != nil || j.Status != api.StatusRunning || j.Attempts != 1 {
		t.Fatalf("a finished attempt while its result comes: %+v %v", j, err)
	}
	out := bytes.Repeat([]byte("z"), 3<<20)
	sendParts(t, stream, okResult(a, out), 1<<20, []int{0, 2, 1, 3})
	sendParts(t, stream, okResult(a, out), 1<<20, nil)
	until(t, stream, isAck)
	final, err := c.Client.Wait(context.Background(), job)
	if err != nil || final.Status != api.StatusDone || final.Attempts != 1 || len(final.Run.Stdout) != 3<<20 {
		t.Fatalf("status %s attempts %d error %q (%v)", final.Status, final.Attempts, final.Error, err)
	}
}

// A result past the master's cap fails its job with a plain sentence and
// is acknowledged, so the worker forgets it.
func TestResultOverTheMastersCapFailsTheJob(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) { cfg.MaxResultBytes = 2 << 20 }})
	pw := newProtoWorker(t, c, "capped")
	stream, cancel := pw.connect(&clusterpb.Hello{})
	defer cancel()
	job := submitAsync(t, c, "print(3)")
	a := until(t, stream, isAssign).GetAssign().Attempt
	sendParts(t, stream, okResult(a, bytes.Repeat([]byte("z"), 5<<20)), 1<<20, nil)
	until(t, stream, isAck)
	final, err := c.Client.Wait(context.Background(), job)
	if err != nil || final.Status != api.StatusFailed ||
		!strings.HasPrefix(final.Error, "the result was too large to deliver: 6 MiB, the limit is 2 MiB") {
		t.Fatalf("status %s error %q (%v)", final.Status, final.Error, err)
	}
}

func submitAsync(t *testing.T, c *clustertest.Cluster, src string) string {
	t.Helper()
	j, err := c.Client.Submit(context.Background(), &api.JobRequest{Language: "python", Source: src})
	if err != nil {
		t.Fatal(err)
	}
	return j.ID
}

// TestForgottenAttemptIsTakenBack: a worker that stays connected but no
// longer lists an attempt in its heartbeats (it lost it without
// reconnecting) has it taken back and run again; an older worker, whose
// heartbeats list only what still runs, keeps it (its lease decides).
func TestForgottenAttemptIsTakenBack(t *testing.T) {
	for _, listsHeld := range []bool{true, false} {
		t.Run(fmt.Sprintf("lists_held=%v", listsHeld), func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{})
			p := newProtoWorker(t, c, "forgetful")
			stream, cancel := p.connect(&clusterpb.Hello{HeartbeatListsHeld: listsHeld})
			defer cancel()
			ctx := context.Background()
			j, err := c.Client.Submit(ctx, &api.JobRequest{Language: "python", Source: "print(1)"})
			if err != nil {
				t.Fatal(err)
			}
			first := until(t, stream, isAssign).GetAssign()
			// Heartbeats that list nothing, for three worker timeouts.
			stop := make(chan struct{})
			go func() {
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						_ = stream.Send(&clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Heartbeat{Heartbeat: &clusterpb.Heartbeat{}}})
					}
				}
			}()
			defer close(stop)
			again := make(chan *clusterpb.Assign, 1)
			go func() {
				for {
					m, err := stream.Recv()
					if err != nil {
						return
					}
					if a := m.GetAssign(); a != nil {
						again <- a
						return
					}
				}
			}()
			select {
			case a := <-again:
				if !listsHeld {
					t.Fatalf("an older worker's attempt was taken back: %v", a.Attempt)
				}
				if a.Attempt.JobId != j.ID || a.Attempt.Attempt != first.Attempt.Attempt+1 {
					t.Fatalf("second assignment %v, want attempt %d of %s", a.Attempt, first.Attempt.Attempt+1, j.ID)
				}
				sj, _ := c.Client.Job(ctx, j.ID)
				t.Logf("taken back and assigned again: attempt %d, job %s", a.Attempt.Attempt, sj.Status)
			case <-time.After(6 * time.Second):
				if listsHeld {
					t.Fatal("the forgotten attempt was not taken back")
				}
			}
		})
	}
}
