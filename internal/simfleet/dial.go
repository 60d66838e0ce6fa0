package simfleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/netip"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/pki"
)

// joinConns is how many connections the joins share: joins carry no
// client certificate, so one HTTP/2 connection can carry many at once;
// a few spread them over the master's cores.
const joinConns = 4

// Per-connection buffers and windows. gRPC's defaults (32 KiB read and
// write buffers, windows grown by bandwidth probes) are sized for bulk
// transfers; a worker's link carries small messages, and thousands of
// links in one process must stay cheap. The write buffer is shared
// (pooled) between writes so an idle link holds none.
const (
	readBufferSize  = 8 << 10
	writeBufferSize = 8 << 10
	streamWindow    = 64 << 10
)

// tlsSetup is how the fleet verifies the master, shared by all workers.
type tlsSetup struct {
	base *tls.Config // no client certificate
	// loopback is set when the master is on a loopback address: the
	// workers then dial from spread source addresses.
	loopback bool
}

func newTLSSetup(cfg Config) (*tlsSetup, error) {
	var base *tls.Config
	if len(cfg.CAPEM) > 0 {
		c, err := pki.ClientTLS(cfg.CAPEM)
		if err != nil {
			return nil, fmt.Errorf("simfleet: CA: %w", err)
		}
		base = c
	} else {
		tok, err := pki.ParseJoinToken(cfg.JoinToken)
		if err != nil {
			return nil, fmt.Errorf("simfleet: join token: %w", err)
		}
		base = pki.PinnedClientTLSForHost(tok.Fingerprint, cfg.Master)
	}
	host, _, err := net.SplitHostPort(cfg.Master)
	if err != nil {
		return nil, fmt.Errorf("simfleet: master address %q: %w", cfg.Master, err)
	}
	ip, err := netip.ParseAddr(host)
	loopback := host == "localhost" || (err == nil && ip.IsLoopback())
	return &tlsSetup{base: base, loopback: loopback}, nil
}

// sourceAddr is the local address worker i dials from, or nil for the
// system's choice: on loopback, PerSourceAddr workers per address in
// 127.1.0.0/16 (every 127/8 address is local on Linux, no setup needed).
func (f *Fleet) sourceAddr(i int) *net.TCPAddr {
	if !f.tls.loopback || f.cfg.PerSourceAddr < 0 {
		return nil
	}
	n := i / f.cfg.PerSourceAddr
	return &net.TCPAddr{IP: net.IPv4(127, 1, byte(n/254), byte(n%254+1))}
}

// dial prepares a connection (gRPC connects lazily) presenting cert, or no
// client certificate when cert is nil.
func (f *Fleet) dial(cert *tls.Certificate, local *net.TCPAddr) (*grpc.ClientConn, error) {
	tc := f.tls.base.Clone()
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	d := net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
	conn, err := grpc.NewClient("passthrough:///"+f.cfg.Master,
		grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}),
		// As the real worker: pings find a vanished master within seconds.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithReadBufferSize(readBufferSize),
		grpc.WithWriteBufferSize(writeBufferSize),
		grpc.WithSharedWriteBuffer(true),
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(streamWindow),
	)
	if err != nil {
		return nil, fmt.Errorf("simfleet: dial %s: %w", f.cfg.Master, err)
	}
	return conn, nil
}

// dialJoiners prepares the connections the joins share.
func (f *Fleet) dialJoiners() error {
	for range joinConns {
		c, err := f.dial(nil, nil)
		if err != nil {
			return err
		}
		f.joiners = append(f.joiners, c)
	}
	return nil
}

// join gets worker i a certificate: a fresh P-256 key (cheap: tens of
// microseconds) and a CSR, signed by the master with the join token.
func (f *Fleet) join(ctx context.Context, i int, name string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, fmt.Errorf("CSR: %w", err)
	}
	// No deadline of its own: a join the master records after the
	// caller gave up leaves the name taken by an identity whose key is
	// lost (AlreadyExists on the next try), so waiting for a slow master
	// is the only way not to lose the worker.
	resp, err := clusterpb.NewClusterClient(f.joiners[i%len(f.joiners)]).Join(ctx, &clusterpb.JoinRequest{
		JoinToken: f.cfg.JoinToken, Name: name, CsrDer: csr,
	})
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	leaf, err := x509.ParseCertificate(resp.CertificateDer)
	if err != nil {
		return nil, fmt.Errorf("join: certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{resp.CertificateDer}, PrivateKey: key, Leaf: leaf}, nil
}
