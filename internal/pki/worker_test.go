package pki

import (
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"
)

func TestWorkerIdentity(t *testing.T) {
	ca := newCA(t)
	keyPEM, csr, err := NewWorkerKey("w1")
	if err != nil {
		t.Fatal(err)
	}
	// The CSR asks for another name: the CA decides.
	cert, err := ca.SignWorker(csr, "worker-7")
	if err != nil {
		t.Fatal(err)
	}
	if name, err := ca.VerifyWorker(cert); err != nil || name != "worker-7" {
		t.Fatalf("VerifyWorker = %q, %v", name, err)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("worker certificate usages %v", cert.ExtKeyUsage)
	}
	dir := t.TempDir()
	if _, err := LoadWorkerIdentity(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no identity yet: %v", err)
	}
	if err := SaveWorkerIdentity(dir, keyPEM, cert.Raw); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir + "/" + WorkerKeyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
	got, err := LoadWorkerIdentity(dir)
	if err != nil || got.Leaf.Subject.CommonName != "worker-7" || SerialString(got.Leaf) != SerialString(cert) {
		t.Fatalf("reloaded identity: %v %v", got.Leaf, err)
	}
	if NeedsRenewal(cert, time.Now()) || !NeedsRenewal(cert, time.Now().Add(80*24*time.Hour)) {
		t.Fatal("renewal window wrong")
	}
	// Another CA's certificate, and a server certificate, are refused.
	other := newCA(t)
	foreign, _ := other.SignWorker(csr, "w1")
	if _, err := ca.VerifyWorker(foreign); err == nil {
		t.Fatal("a foreign CA's worker certificate verified")
	}
	srv, _ := ca.IssueServer([]string{"127.0.0.1"})
	leaf, _ := x509.ParseCertificate(srv.Certificate[0])
	if _, err := ca.VerifyWorker(leaf); err == nil {
		t.Fatal("a server certificate passed as a worker identity")
	}
	if _, err := ca.SignWorker([]byte("garbage"), "w"); !errors.Is(err, ErrBadCSR) {
		t.Fatalf("garbage CSR: %v", err)
	}
}
