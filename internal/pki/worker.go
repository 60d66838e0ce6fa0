package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Worker identity: a worker joins once with the join token and a CSR for a
// key it made itself (the key never leaves the worker), receives a client
// certificate whose common name is its name, and from then on connects
// with mutual TLS. Revoking the identity shuts that certificate out
// without touching the join token or any other worker (a holder of the
// join token may then join under the freed name again).

// ErrBadCSR: the signing request is malformed or not signed by its key.
var ErrBadCSR = errors.New("pki: invalid certificate signing request")

// Worker identity files in a worker's data directory.
const (
	WorkerKeyFile  = "worker-key.pem"
	WorkerCertFile = "worker-cert.pem"
)

// workerValidity is how long a worker certificate lasts; a worker renews
// it (with its current certificate) when less than a quarter is left.
const workerValidity = 90 * 24 * time.Hour

// SignWorker issues a client certificate for the worker name from a CSR.
// The common name is set to name whatever the CSR asks: the master, not
// the worker, decides who it is.
func (ca *CA) SignWorker(csrDER []byte, name string) (*x509.Certificate, error) {
	if name == "" {
		return nil, errors.New("pki: worker certificate needs a name")
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"grappe workers"}, CommonName: name},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(workerValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign worker certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// VerifyWorker checks that a presented client certificate was issued by
// the CA for client authentication, and returns the worker name in it.
func (ca *CA) VerifyWorker(cert *x509.Certificate) (string, error) {
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:     ca.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return "", fmt.Errorf("pki: worker certificate: %w", err)
	}
	return cert.Subject.CommonName, nil
}

// SerialString is how a certificate's serial number is recorded.
func SerialString(cert *x509.Certificate) string { return cert.SerialNumber.Text(16) }

// NewWorkerKey makes a worker's key pair and a CSR for name.
func NewWorkerKey(name string) (keyPEM, csrDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate key: %w", err)
	}
	csrDER, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: CSR: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), csrDER, nil
}

// SaveWorkerIdentity writes the worker's key (0600) and certificate into
// dir, each atomically.
func SaveWorkerIdentity(dir string, keyPEM, certDER []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, WorkerKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	return writeFileAtomic(filepath.Join(dir, WorkerCertFile), certPEM, 0o644)
}

// LoadWorkerIdentity reads the worker's key and certificate from dir. It
// returns os.ErrNotExist (wrapped) when the worker has not joined yet.
func LoadWorkerIdentity(dir string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, WorkerCertFile), filepath.Join(dir, WorkerKeyFile))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: worker identity: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("pki: worker identity: %w", err)
		}
	}
	return cert, nil
}

// NeedsRenewal reports whether a certificate has less than a quarter of
// its life left (or is already expired).
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return now.After(cert.NotAfter.Add(-life / 4))
}
