package pki

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{CertFile: 0o644, KeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", name, got, want)
		}
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, ca.CertPEM()) {
		t.Error("ca.pem differs from CertPEM()")
	}
	if !ca.Certificate().IsCA {
		t.Error("CA certificate is not a CA")
	}
	if d := ca.Certificate().NotAfter.Sub(ca.Certificate().NotBefore); d < 9*365*24*3600e9 {
		t.Errorf("CA valid for %v, want about 10 years", d)
	}

	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint() != ca.Fingerprint() {
		t.Errorf("reloaded fingerprint %s, want %s", again.Fingerprint(), ca.Fingerprint())
	}
	if len(ca.Fingerprint()) != 64 {
		t.Errorf("fingerprint %q is not hex SHA-256", ca.Fingerprint())
	}
}

func TestLoadOrCreateRefusesHalfCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); err == nil {
		t.Fatal("LoadOrCreate replaced a CA whose key is missing")
	}
}

func TestLoadOrCreateRefusesForeignKey(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if _, err := LoadOrCreate(d); err != nil {
			t.Fatal(err)
		}
	}
	key, err := os.ReadFile(filepath.Join(b, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a, KeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(a); err == nil {
		t.Fatal("LoadOrCreate accepted a key that does not match the certificate")
	}
}

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// startServer starts an HTTPS server on 127.0.0.1 presenting cert.
func startServer(t *testing.T, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = ServerTLS(cert)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func get(url string, cfg *tls.Config) error {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if string(b) != "ok" {
		return errors.New("unexpected body " + string(b))
	}
	return nil
}

func TestTLS(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	cert, err := ca.IssueServer([]string{"grappe.example", "10.1.2.3:7000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 {
		t.Fatalf("chain has %d certificates, want leaf + CA", len(cert.Certificate))
	}
	if got := Fingerprint(cert.Certificate[1]); got != ca.Fingerprint() {
		t.Errorf("chain's second certificate is not the CA")
	}
	leaf := cert.Leaf
	for _, name := range []string{"grappe.example", "localhost", "127.0.0.1", "::1", "10.1.2.3"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("server certificate not valid for %s: %v", name, err)
		}
	}
	if hn, err := os.Hostname(); err == nil && hn != "" {
		if err := leaf.VerifyHostname(hn); err != nil {
			t.Errorf("server certificate not valid for the host name: %v", err)
		}
	}
	srv := startServer(t, cert)
	otherSrv := startServer(t, mustIssue(t, other))

	clientTLS := func(c *CA) *tls.Config {
		cfg, err := ClientTLS(c.CertPEM())
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	upper := strings.ToUpper(ca.Fingerprint())
	tests := []struct {
		name   string
		url    string
		cfg    *tls.Config
		wantOK bool
	}{
		{"ClientTLS right CA", srv.URL, clientTLS(ca), true},
		{"ClientTLS other CA", srv.URL, clientTLS(other), false},
		{"pinned right fingerprint", srv.URL, PinnedClientTLS(ca.Fingerprint()), true},
		{"pinned fingerprint upper case", srv.URL, PinnedClientTLS(upper), true},
		{"pinned wrong fingerprint", srv.URL, PinnedClientTLS(other.Fingerprint()), false},
		{"pinned empty fingerprint", srv.URL, PinnedClientTLS(""), false},
		{"pinned, server of another CA", otherSrv.URL, PinnedClientTLS(ca.Fingerprint()), false},
		{"pinned for host, right host", srv.URL, PinnedClientTLSForHost(ca.Fingerprint(), "127.0.0.1:1"), true},
		{"pinned for host, wrong host", srv.URL, PinnedClientTLSForHost(ca.Fingerprint(), "10.9.9.9"), false},
		{"pinned for host, wrong name", srv.URL, PinnedClientTLSForHost(ca.Fingerprint(), "evil.example"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := get(tt.url, tt.cfg)
			if tt.wantOK && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.wantOK && err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func mustIssue(t *testing.T, ca *CA) tls.Certificate {
	t.Helper()
	c, err := ca.IssueServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A client certificate must not be usable to impersonate the master.
func TestClientCertIsNotAServerCert(t *testing.T) {
	ca := newCA(t)
	cc, err := ca.IssueClient("worker-1")
	if err != nil {
		t.Fatal(err)
	}
	if cc.Leaf.Subject.CommonName != "worker-1" {
		t.Errorf("CN = %q", cc.Leaf.Subject.CommonName)
	}
	srv := startServer(t, cc)
	if err := get(srv.URL, PinnedClientTLS(ca.Fingerprint())); err == nil {
		t.Fatal("a client certificate was accepted as a server certificate")
	}
	if _, err := ca.IssueClient(""); err == nil {
		t.Error("IssueClient accepted an empty common name")
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newCA(t)
	sc, err := ca.IssueServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = ServerTLS(sc)
	srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	srv.TLS.ClientCAs = ca.Pool()
	srv.StartTLS()
	defer srv.Close()

	cc, err := ca.IssueClient("worker-7")
	if err != nil {
		t.Fatal(err)
	}
	cfg := PinnedClientTLS(ca.Fingerprint())
	cfg.Certificates = []tls.Certificate{cc}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "worker-7" {
		t.Errorf("server saw client %q", b)
	}
}

func TestClientTLSBadPEM(t *testing.T) {
	if _, err := ClientTLS([]byte("not pem")); err == nil {
		t.Fatal("ClientTLS accepted garbage")
	}
}

func TestJoinToken(t *testing.T) {
	ca := newCA(t)
	tok, err := NewJoinToken(ca)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "grappe-join-v1.") {
		t.Fatalf("token %q lacks its prefix", tok)
	}
	jt, err := ParseJoinToken(tok + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if jt.Fingerprint != ca.Fingerprint() {
		t.Errorf("fingerprint %s, want %s", jt.Fingerprint, ca.Fingerprint())
	}
	if jt.Secret == "" || !strings.HasSuffix(tok, "."+jt.Secret) {
		t.Errorf("secret %q not the token's last part", jt.Secret)
	}
	tok2, err := NewJoinToken(ca)
	if err != nil {
		t.Fatal(err)
	}
	if tok2 == tok {
		t.Error("two join tokens are equal")
	}
	if !TokenEqual(tok, tok+"\n") || TokenEqual(tok, tok2) || TokenEqual(tok, "") {
		t.Error("TokenEqual is wrong")
	}

	parts := strings.Split(tok, ".")
	malformed := []struct{ name, s string }{
		{"empty", ""},
		{"prefix only", "grappe-join-v1"},
		{"wrong version", "grappe-join-v2." + parts[1] + "." + parts[2]},
		{"two parts", "grappe-join-v1." + parts[1]},
		{"four parts", tok + ".x"},
		{"bad base64 fingerprint", "grappe-join-v1.!!!." + parts[2]},
		{"short fingerprint", "grappe-join-v1.AAAA." + parts[2]},
		{"short secret", "grappe-join-v1." + parts[1] + ".AAAA"},
		{"empty secret", "grappe-join-v1." + parts[1] + "."},
		{"admin token", "3f2a9c0d1e"},
	}
	for _, tt := range malformed {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseJoinToken(tt.s); !errors.Is(err, ErrBadJoinToken) {
				t.Fatalf("ParseJoinToken(%q) = %v, want ErrBadJoinToken", tt.s, err)
			}
		})
	}
}
