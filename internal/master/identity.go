package master

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/api/clusterpb"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/httpapi"
	"github.com/grappe/grappe/internal/pki"
	"github.com/grappe/grappe/internal/store"
)

// Join issues a worker certificate. The caller proves it may join with the
// cluster's join token, or, to renew, with its current certificate for the
// same name.
func (cs *clusterServer) Join(ctx context.Context, req *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error) {
	return cs.m.join(ctx, req)
}

func (m *Master) join(ctx context.Context, req *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error) {
	addr := peerAddr(ctx)
	if !validWorkerName(req.Name) {
		return nil, status.Error(codes.InvalidArgument, "a worker name is 1 to 128 letters, digits, '.', '_' or '-'")
	}
	how := "join token"
	if !pki.TokenEqual(req.JoinToken, m.currentJoinToken()) {
		// Renewal: a valid, unrevoked certificate for the same name.
		name, err := m.peerWorker(ctx)
		if err != nil || name != req.Name {
			m.audit.Warn("worker join refused", "worker", req.Name, "addr", addr, "reason", "invalid join token")
			return nil, status.Error(codes.Unauthenticated, "invalid join token")
		}
		how = "renewal"
	}
	cert, err := m.ca.SignWorker(req.CsrDer, req.Name)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	id := &store.WorkerIdentity{Name: req.Name, Serial: pki.SerialString(cert), CreatedAt: time.Now().UTC(), ExpiresAt: cert.NotAfter.UTC()}
	if err := m.store.PutWorkerIdentity(ctx, id); err != nil {
		m.log.Error("store worker identity", "worker", req.Name, "err", err)
		return nil, status.Error(codes.Unavailable, "could not record the identity; try again")
	}
	m.audit.Info("worker joined", "worker", req.Name, "addr", addr, "by", how, "serial", id.Serial, "expires", id.ExpiresAt)
	return &clusterpb.JoinResponse{CertificateDer: cert.Raw, CaDer: m.ca.Certificate().Raw}, nil
}

func validWorkerName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok {
		return p.Addr.String()
	}
	return ""
}

// peerWorker returns the worker name of the caller's client certificate,
// checked against the CA and against the identity the store holds for that
// name (same serial, not revoked).
func (m *Master) peerWorker(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errors.New("no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return "", errors.New("no client certificate: join first")
	}
	cert := ti.State.PeerCertificates[0]
	name, err := m.ca.VerifyWorker(cert)
	if err != nil {
		return "", err
	}
	return name, m.checkIdentity(ctx, name, cert)
}

func (m *Master) checkIdentity(ctx context.Context, name string, cert *x509.Certificate) error {
	id, err := m.store.GetWorkerIdentity(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no identity recorded for %q", name)
	}
	if err != nil {
		return err
	}
	if !id.RevokedAt.IsZero() {
		return fmt.Errorf("the identity of %q was revoked", name)
	}
	if id.Serial != pki.SerialString(cert) {
		return fmt.Errorf("certificate of %q superseded by a newer one", name)
	}
	return nil
}

// authorizeWorker checks a Connect: the client certificate names the worker
// that says hello.
func (m *Master) authorizeWorker(ctx context.Context, hello *clusterpb.Hello) error {
	name, err := m.peerWorker(ctx)
	if err != nil {
		m.audit.Warn("worker refused", "worker", hello.Name, "addr", peerAddr(ctx), "reason", err.Error())
		return status.Error(codes.Unauthenticated, "worker identity refused: "+err.Error())
	}
	if name != hello.Name {
		m.audit.Warn("worker refused", "worker", hello.Name, "certificate", name, "addr", peerAddr(ctx), "reason", "name differs from certificate")
		return status.Errorf(codes.PermissionDenied, "the certificate is for %q, not %q", name, hello.Name)
	}
	return nil
}

func (m *Master) currentJoinToken() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.joinToken
}

// RotateJoinToken replaces the join token: workers that joined keep their
// certificates; new ones need the new token.
func (m *Master) RotateJoinToken(ctx context.Context, p *auth.Principal) (string, error) {
	tok, err := pki.NewJoinToken(m.ca)
	if err != nil {
		return "", err
	}
	if err := auth.WriteSecretFile(m.joinTokenPath(), tok); err != nil {
		return "", err
	}
	m.mu.Lock()
	m.joinToken = tok
	m.mu.Unlock()
	m.audit.Info("join token rotated", "by", p.User)
	return tok, nil
}

// RevokeWorker revokes a worker's identity and disconnects it; its jobs go
// back to the queue when its heartbeat timeout passes.
func (m *Master) RevokeWorker(ctx context.Context, p *auth.Principal, name string) error {
	err := m.store.RevokeWorkerIdentity(ctx, name, time.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return httpapi.ErrNotFound
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	if w := m.workers[name]; w != nil && w.session != nil {
		w.session.close()
		w.session = nil
	}
	m.mu.Unlock()
	m.audit.Info("worker identity revoked", "worker", name, "by", p.User)
	return nil
}

// WorkerIdentities lists the identities issued.
func (m *Master) WorkerIdentities(ctx context.Context) ([]api.WorkerIdentity, error) {
	ids, err := m.store.ListWorkerIdentities(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.WorkerIdentity, 0, len(ids))
	for _, id := range ids {
		wi := api.WorkerIdentity{Name: id.Name, Serial: id.Serial, CreatedAt: id.CreatedAt, ExpiresAt: id.ExpiresAt}
		if !id.RevokedAt.IsZero() {
			t := id.RevokedAt
			wi.RevokedAt = &t
		}
		out = append(out, wi)
	}
	return out, nil
}
