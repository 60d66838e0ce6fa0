// Package pki is grappe's cluster certificate authority: it creates (once) and
// loads the CA that signs the master's TLS certificate and the workers'
// client certificates, and builds the tls.Configs both sides use.
//
// The CA is deliberately small and private: ECDSA P-256 keys, a CA that may
// only sign leaf certificates (MaxPathLen 0), servers and clients told apart
// by their extended key usage. A worker that knows nothing but its join token
// trusts the master by pinning the CA's SHA-256 fingerprint carried in the
// token (see PinnedClientTLS).
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside the directory given to LoadOrCreate. ca.pem is part of
// the external contract (DIR/ca.pem is what clients trust).
const (
	CertFile = "ca.pem"
	KeyFile  = "ca-key.pem"
)

// Validity periods. The CA outlives any certificate it signs by far, so a
// master can re-issue its server certificate at every start without ever
// invalidating what clients and workers trust.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// backdate tolerates clocks that are a little behind the master's.
	backdate = time.Hour
)

// CA is the cluster certificate authority. It is safe for concurrent use:
// it is never modified after LoadOrCreate.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// LoadOrCreate loads the CA kept in dir (ca.pem and ca-key.pem), or, on
// first start, creates dir and a new CA in it: ca.pem readable by all (0644),
// ca-key.pem by the owner only (0600).
func LoadOrCreate(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CertFile)
	keyPath := filepath.Join(dir, KeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err := parseCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("pki: load CA from %s: %w", dir, err)
		}
		return ca, nil
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return create(dir, certPath, keyPath)
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("pki: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("pki: %w", keyErr)
	default:
		// One file without the other: refuse rather than silently replace a
		// CA that clients and workers already trust.
		return nil, fmt.Errorf("pki: %s holds only one of %s and %s; restore the other or remove both to create a new CA", dir, CertFile, KeyFile)
	}
}

func create(dir, certPath, keyPath string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"grappe"},
			// The host and serial make two clusters' CAs tell apart in a
			// certificate viewer.
			CommonName: fmt.Sprintf("grappe cluster CA %s %x", host, serial.Bytes()[:4]),
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal CA key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	// The key goes first: a crash between the two renames leaves a key
	// without a certificate, which LoadOrCreate refuses loudly, never a
	// certificate that clients could start trusting without its key.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return parseCA(certPEM, keyPEM)
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE block in the CA certificate file")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("the CA certificate is not a CA")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("no PEM block in the CA key file")
	}
	var signer crypto.Signer
	switch kb.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse CA key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("CA key of type %T cannot sign", k)
		}
		signer = s
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(kb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse CA key: %w", err)
		}
		signer = k
	default:
		return nil, fmt.Errorf("unexpected PEM block %q in the CA key file", kb.Type)
	}
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("CA key is %T, want ECDSA", signer)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the CA key does not match the CA certificate")
	}
	return &CA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}, nil
}

// CertPEM returns the CA certificate, PEM-encoded (the content of ca.pem).
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Certificate returns the parsed CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Fingerprint returns the hex SHA-256 of the CA certificate's DER encoding:
// what a join token pins.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert.Raw) }

// Pool returns a new pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Fingerprint returns the lowercase hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// IssueServer issues a one-year server certificate for hosts (IP addresses
// and DNS names; "host:port" is accepted and the port dropped). 127.0.0.1,
// ::1, localhost and the machine's host name are always included, and an
// unspecified address (0.0.0.0, ::, as in a listen address) stands for every
// address of the machine's interfaces. The returned chain holds the CA
// certificate after the leaf so that a worker pinning the CA fingerprint
// finds the CA in what the server presents.
func (ca *CA) IssueServer(hosts []string) (tls.Certificate, error) {
	ips, names := serverNames(hosts)
	cn := "localhost"
	if len(names) > 0 {
		cn = names[0]
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"grappe"}, CommonName: cn},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips,
		DNSNames:    names,
	}
	return ca.issue(tmpl)
}

// IssueClient issues a one-year client certificate (for mutual TLS between
// workers and the master) whose subject common name is commonName.
func (ca *CA) IssueClient(commonName string) (tls.Certificate, error) {
	if commonName == "" {
		return tls.Certificate{}, errors.New("pki: client certificate needs a common name")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"grappe"}, CommonName: commonName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(tmpl)
}

func (ca *CA) issue(tmpl *x509.Certificate) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.Add(leafValidity)
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: sign certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: parse issued certificate: %w", err)
	}
	return tls.Certificate{
		Certificate: [][]byte{der, ca.cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// serverNames splits hosts into IP addresses and DNS names, adds the
// always-present local names and removes duplicates.
func serverNames(hosts []string) ([]net.IP, []string) {
	var ips []net.IP
	var names []string
	seenIP := map[string]bool{}
	seenName := map[string]bool{}
	addIP := func(ip net.IP) {
		if ip == nil || ip.IsUnspecified() || seenIP[ip.String()] {
			return
		}
		seenIP[ip.String()] = true
		ips = append(ips, ip)
	}
	add := func(h string) {
		h = strings.TrimSpace(h)
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
		if h == "" {
			return
		}
		if i := strings.IndexByte(h, '%'); i > 0 { // fe80::1%eth0
			h = h[:i]
		}
		if ip := net.ParseIP(h); ip != nil {
			if ip.IsUnspecified() {
				for _, a := range interfaceIPs() {
					addIP(a)
				}
				return
			}
			addIP(ip)
			return
		}
		h = strings.ToLower(h)
		if !seenName[h] {
			seenName[h] = true
			names = append(names, h)
		}
	}
	for _, h := range hosts {
		add(h)
	}
	add("localhost")
	add("127.0.0.1")
	add("::1")
	if hn, err := os.Hostname(); err == nil {
		add(hn)
	}
	return ips, names
}

func interfaceIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, as RFC 5280 allows up to 20 octets and CAs are asked
	// to use at least 64 bits of entropy.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so that a reader never sees a half-written file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("pki: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
