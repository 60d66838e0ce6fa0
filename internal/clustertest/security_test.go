package clustertest_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
	"github.com/grappe/grappe/internal/pki"
	"github.com/grappe/grappe/internal/worker"
)

// startRawWorker runs a worker outside clustertest's helpers, to try
// tokens and identities the helpers would not use.
func startRawWorker(t *testing.T, c *clustertest.Cluster, name, token, dir string) (err error, stop func()) {
	t.Helper()
	w, err := worker.New(worker.Config{
		Master: c.Master.ClusterAddr(), JoinToken: token, DataDir: dir, Name: name, Slots: 1,
		Languages: worker.StaticLanguages{{Name: "bash", Version: "5"}},
		Runner:    clustertest.SharedToolbox(t).Runner, DrainTimeout: time.Second,
	})
	if err != nil {
		return err, func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	select {
	case err := <-errc:
		cancel()
		return err, func() {}
	case <-time.After(1500 * time.Millisecond):
		return nil, func() { cancel(); <-errc }
	}
}

func workerStatus(c *clustertest.Cluster, name string) string {
	for _, w := range c.Master.Workers(context.Background()) {
		if w.Name == name {
			return w.Status
		}
	}
	return ""
}

func TestWorkerJoinAndIdentity(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx := context.Background()

	// A wrong join token is refused outright, and nothing connects.
	wrong := strings.Replace(c.Master.JoinToken(), c.Master.JoinToken()[len(c.Master.JoinToken())-8:], "AAAAAAAA", 1)
	if err, stop := startRawWorker(t, c, "intruder", wrong, t.TempDir()); err == nil || !strings.Contains(err.Error(), "refused") {
		stop()
		t.Fatalf("a worker with a wrong join token: %v, want refused", err)
	}
	if workerStatus(c, "intruder") != "" {
		t.Fatal("the intruder is listed")
	}

	// A good token: the worker joins, gets a certificate, connects with it.
	dir := t.TempDir()
	err, stop := startRawWorker(t, c, "good", c.Master.JoinToken(), dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Eventually(5*time.Second, "good up", func() bool { return workerStatus(c, "good") == api.WorkerUp })
	ids, err := c.Client.WorkerIdentities(ctx)
	if err != nil || len(ids) == 0 || ids[0].Name != "good" || ids[0].RevokedAt != nil {
		t.Fatalf("identities: %+v %v", ids, err)
	}
	stop()

	// Rotating the join token keeps joined workers in (they use their
	// certificate, no token) and keeps new ones with the old token out.
	old := c.Master.JoinToken()
	newTok, err := c.Client.RotateJoinToken(ctx)
	if err != nil || newTok == old || newTok == "" {
		t.Fatalf("rotate: %q %v", newTok, err)
	}
	if err, stop := startRawWorker(t, c, "good", "", dir); err != nil {
		t.Fatalf("joined worker after the rotation: %v", err)
	} else {
		c.Eventually(5*time.Second, "good back up", func() bool { return workerStatus(c, "good") == api.WorkerUp })
		stop()
	}
	if err, stop := startRawWorker(t, c, "late", old, t.TempDir()); err == nil {
		stop()
		t.Fatal("a new worker joined with the rotated-out token")
	}
	if err, stop := startRawWorker(t, c, "late", newTok, t.TempDir()); err != nil {
		t.Fatalf("a new worker with the new token: %v", err)
	} else {
		stop()
	}

	// Revoking the identity shuts the worker out at its next connection.
	err, stop = startRawWorker(t, c, "good", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c.Eventually(5*time.Second, "good up", func() bool { return workerStatus(c, "good") == api.WorkerUp })
	if err := c.Client.RevokeWorker(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	c.Eventually(10*time.Second, "revoked worker lost", func() bool { return workerStatus(c, "good") == api.WorkerLost })
	time.Sleep(time.Second)
	if s := workerStatus(c, "good"); s != api.WorkerLost {
		t.Fatalf("revoked worker came back: %q", s)
	}
	if err := c.Client.RevokeWorker(ctx, "nobody"); !client.IsNotFound(err) {
		t.Fatalf("revoking an unknown worker: %v", err)
	}
}

func TestAPITokens(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx := context.Background()
	dana := addUser(t, c, "dana", "user")
	tok, err := dana.CreateToken(ctx, "ci")
	if err != nil || tok.Token == "" || tok.ID == "" {
		t.Fatalf("create token: %+v %v", tok, err)
	}
	ci := c.NewClient(tok.Token)
	if _, err := ci.Jobs(ctx, "", 1); err != nil {
		t.Fatalf("the new token does not work: %v", err)
	}
	list, err := dana.Tokens(ctx)
	if err != nil || len(list) != 2 { // the login token and "ci"
		t.Fatalf("tokens: %+v %v", list, err)
	}
	for _, l := range list {
		if l.Token != "" {
			t.Fatal("a listed token carries its secret")
		}
	}
	// Another user cannot revoke dana's token; dana can.
	if err := c.Client.RevokeToken(ctx, tok.ID); !client.IsNotFound(err) {
		t.Fatalf("admin revoking dana's token by id: %v, want 404", err)
	}
	if err := dana.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ci.Jobs(ctx, "", 1); !client.IsUnauthorized(err) {
		t.Fatalf("revoked token: %v, want 401", err)
	}
}

// recorder is a TCP proxy that keeps every byte it forwards.
type recorder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	buf    bytes.Buffer
}

func newRecorder(t *testing.T, target string) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go r.copy(up, c)
			go r.copy(c, up)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (r *recorder) copy(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.buf.Write(buf[:n])
			r.mu.Unlock()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *recorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Contains(r.buf.Bytes(), []byte(s))
}

func (r *recorder) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Len()
}

func TestNothingInClearOnTheWire(t *testing.T) {
	// Both links go through recording proxies: the client's HTTPS and the
	// worker's gRPC. Neither may carry the source, the stdin or the output
	// in clear.
	c := clustertest.Start(t, clustertest.Options{})
	workerRec := newRecorder(t, c.Master.ClusterAddr())
	w, err := worker.New(worker.Config{
		Master: workerRec.ln.Addr().String(), JoinToken: c.Master.JoinToken(), DataDir: t.TempDir(), Name: "wire", Slots: 1,
		Languages: worker.StaticLanguages{{Name: "bash", Version: "5"}}, Runner: clustertest.SharedToolbox(t).Runner,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c.Eventually(10*time.Second, "wire worker up", func() bool { return workerStatus(c, "wire") == api.WorkerUp })

	apiRec := newRecorder(t, c.Master.Addr())
	cl, err := client.New(client.Config{Addr: "https://" + apiRec.ln.Addr().String(), Token: c.Token, CAPEM: c.Master.CAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const secretSource, secretInput = "SECRET_SOURCE_MARKER_41", "SECRET_STDIN_MARKER_42"
	job, err := cl.SubmitWait(ctx, &api.JobRequest{Language: "bash",
		Source: "# " + secretSource + "\nread x; echo \"${x}_OUT\"", Stdin: secretInput}, time.Minute)
	if err != nil || job.Run == nil || job.Run.Stdout != secretInput+"_OUT\n" {
		t.Fatalf("job: %+v %v", job, err)
	}
	for _, rec := range []*recorder{apiRec, workerRec} {
		if rec.size() < 1000 {
			t.Fatalf("the recorder saw only %d bytes: not in the path", rec.size())
		}
		for _, secret := range []string{secretSource, secretInput, secretInput + "_OUT", c.Token} {
			if rec.contains(secret) {
				t.Fatalf("%q crossed the wire in clear", secret)
			}
		}
	}
}

func TestPlainTextToTheClusterPortFails(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	conn, err := net.DialTimeout("tcp", c.Master.ClusterAddr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// An HTTP/2 preface in clear, as a plaintext gRPC client would send.
	conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	b := make([]byte, 64)
	n, _ := conn.Read(b)
	if n > 0 && bytes.Contains(b[:n], []byte("HTTP/2")) {
		t.Fatalf("the cluster port answered plaintext HTTP/2: %q", b[:n])
	}
}

func TestInsecureHTTPOnlyOnLoopback(t *testing.T) {
	dir := t.TempDir()
	_, err := master.New(master.Config{DataDir: dir, Listen: "0.0.0.0:0", ClusterListen: "127.0.0.1:0", InsecureHTTP: true})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("--insecure-http on 0.0.0.0: %v, want refused", err)
	}
	m, err := master.New(master.Config{DataDir: dir, Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", InsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !strings.HasPrefix(m.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL %q", m.URL())
	}
}

func TestOperatorCertificate(t *testing.T) {
	// The operator's own CA and certificate for the REST API.
	opCA, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := opCA.IssueServer([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.pem"), filepath.Join(dir, "api-key.pem")
	writePEM(t, certFile, "CERTIFICATE", leaf.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) {
		cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	}})
	// Clients trusting the operator's CA get in; trusting the cluster CA
	// is not enough any more.
	op, err := client.New(client.Config{Addr: c.Master.URL(), Token: c.Token, CAPEM: opCA.CertPEM()})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if err := op.Health(context.Background()); err != nil {
		t.Fatalf("with the operator's CA: %v", err)
	}
	if err := c.Client.Health(context.Background()); err == nil {
		t.Fatal("the cluster CA still verifies the REST API")
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
