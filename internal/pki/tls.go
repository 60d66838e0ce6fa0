package pki

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrFingerprintMismatch is returned (wrapped) by a PinnedClientTLS handshake
// when no certificate the server presents has the pinned fingerprint.
var ErrFingerprintMismatch = errors.New("pki: no certificate in the server's chain matches the pinned CA fingerprint")

// ServerTLS returns the TLS configuration of a server presenting cert:
// TLS 1.2 at least, HTTP/2 and HTTP/1.1 offered by ALPN (gRPC needs h2).
func ServerTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// ClientTLS returns a client configuration that verifies servers against the
// CA certificates in caPEM only (not the system roots).
func ClientTLS(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("pki: no certificate found in the CA PEM")
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// PinnedClientTLS returns a client configuration for a worker that knows
// only the CA fingerprint from its join token: the server must present, in
// its chain, a CA certificate whose SHA-256 is fingerprint, and the leaf
// must verify against that CA alone, for server authentication, and for the
// name the client dialled when it sent one in SNI. Go's own verification is
// turned off (InsecureSkipVerify) only because the CA is not known in advance;
// VerifyConnection does the full x509 verification instead.
//
// A dial by IP address sends no SNI, so the callback cannot see which address
// was dialled; use PinnedClientTLSForHost when the host is known to check the
// IP address against the certificate too.
func PinnedClientTLS(fingerprint string) *tls.Config {
	return pinned(fingerprint, "")
}

// PinnedClientTLSForHost is PinnedClientTLS that also checks that the
// server's certificate is valid for host (an IP address or DNS name; a port,
// if any, is ignored), whatever the SNI.
func PinnedClientTLSForHost(fingerprint, host string) *tls.Config {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	cfg := pinned(fingerprint, host)
	cfg.ServerName = host
	return cfg
}

func pinned(fingerprint, host string) *tls.Config {
	want := normalizeFingerprint(fingerprint)
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			name := host
			if name == "" {
				name = cs.ServerName
			}
			return verifyPinned(cs.PeerCertificates, want, name)
		},
	}
}

func verifyPinned(certs []*x509.Certificate, want, name string) error {
	if len(certs) == 0 {
		return errors.New("pki: the server presented no certificate")
	}
	if len(want) != 64 {
		return fmt.Errorf("pki: pinned fingerprint %q is not a hex SHA-256", want)
	}
	var root *x509.Certificate
	for _, c := range certs {
		got := Fingerprint(c.Raw)
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
			root = c
			break
		}
	}
	if root == nil {
		return ErrFingerprintMismatch
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		if c != root {
			inter.AddCert(c)
		}
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       name, // Verify checks IP literals against IP SANs too
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return fmt.Errorf("pki: verify server certificate against the pinned CA: %w", err)
	}
	return nil
}

// normalizeFingerprint accepts "AB:CD…", "abcd…" and "sha256:abcd…".
func normalizeFingerprint(s string) string {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	s = strings.ReplaceAll(s, ":", "")
	if _, err := hex.DecodeString(s); err != nil {
		return ""
	}
	return s
}
