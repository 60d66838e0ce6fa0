package master

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/pki"
	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/workerlink"
)

// join signs a certificate for the name. A caller presenting the name's
// current certificate renews it and keeps the identity's lineage, join
// token or not (a worker always sends its token). Otherwise the join
// token creates a new identity, but only for a name without a live one:
// the token must not let anyone take over a running worker, its jobs and
// its name.
func (m *Master) join(ctx context.Context, p workerlink.Peer, req *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error) {
	addr := p.Addr
	if !validWorkerName(req.Name) {
		return nil, workerlink.Refuse(workerlink.Invalid, "a worker name is 1 to 128 letters, digits, '.', '_' or '-'")
	}
	current, peerErr := m.peerIdentity(ctx, p.Cert)
	renewal := peerErr == nil && current.Name == req.Name
	if !renewal && !pki.TokenEqual(req.JoinToken, m.currentJoinToken()) {
		m.audit.Warn("worker join refused", "worker", req.Name, "addr", addr, "reason", "invalid join token")
		return nil, workerlink.Refuse(workerlink.Unauthenticated, "invalid join token")
	}
	cert, err := m.ca.SignWorker(req.CsrDer, req.Name)
	if err != nil {
		return nil, workerlink.Refuse(workerlink.Invalid, "%s", err)
	}
	serial, expires := pki.SerialString(cert), cert.NotAfter.UTC()
	// Recorded whether or not the worker still waits (a write cancelled
	// half-way has an outcome nobody knows); abandoned() below undoes it
	// if it does not.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), joinStoreTimeout)
	defer cancel()
	var id *store.WorkerIdentity
	if renewal {
		id, err = m.store.RenewWorkerIdentity(sctx, req.Name, current.Serial, serial, expires)
	} else {
		id = &store.WorkerIdentity{Name: req.Name, ID: newLineageID(), Serial: serial, CreatedAt: time.Now().UTC(), ExpiresAt: expires}
		err = m.store.CreateWorkerIdentity(sctx, id)
	}
	switch {
	case errors.Is(err, store.ErrConflict) && !renewal:
		// Rate-limited: anyone with the join token can knock.
		if ok, skipped := m.refusals.allow("join "+req.Name, time.Now()); ok {
			m.audit.Warn("worker join refused", "worker", req.Name, "addr", addr, "reason", "the name has a live identity", "suppressed", skipped)
		}
		return nil, workerlink.Refuse(workerlink.Taken,
			"the worker name %q is taken by a live identity: the worker renews with its own certificate, "+
				"or an admin revokes it first (grappe workers revoke %s)", req.Name, req.Name)
	case errors.Is(err, store.ErrConflict):
		// Another renewal, a revocation or a re-join got there first.
		m.audit.Warn("worker renewal refused", "worker", req.Name, "addr", addr, "reason", "certificate superseded or revoked")
		return nil, workerlink.Refuse(workerlink.Forbidden, "the certificate was superseded or revoked meanwhile")
	case err != nil:
		m.log.Error("store worker identity", "worker", req.Name, "err", err)
		return nil, workerlink.Refuse(workerlink.Unavailable, "could not record the identity; try again")
	}
	if ctx.Err() != nil {
		return nil, m.abandoned(sctx, req.Name, addr)
	}
	how := "join token"
	if renewal {
		how = "renewal"
	}
	m.audit.Info("worker joined", "worker", req.Name, "addr", addr, "by", how, "lineage", id.ID, "serial", serial, "expires", expires)
	return &clusterpb.JoinResponse{CertificateDer: cert.Raw, CaDer: m.ca.Certificate().Raw}, nil
}

// joinStoreTimeout bounds the store writes of a join.
const joinStoreTimeout = 10 * time.Second

// abandoned undoes a join or renewal whose worker stopped waiting before
// the answer: it never gets the certificate, and the identity recorded
// for it, live, would keep the name from its next join for good (the
// name is taken, the old certificate superseded). Revoked, the name joins
// again with the join token.
func (m *Master) abandoned(ctx context.Context, name, addr string) error {
	if err := m.store.RevokeWorkerIdentity(ctx, name, time.Now().UTC()); err != nil {
		m.log.Warn("revoke the identity of an abandoned join", "worker", name, "err", err)
	}
	m.audit.Warn("worker join abandoned by the worker; identity revoked so that the name can join again", "worker", name, "addr", addr)
	return workerlink.Refuse(workerlink.Unavailable, "the join took too long; try again")
}

// newLineageID makes the id of a new identity lineage (store.WorkerIdentity.ID).
func newLineageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
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

// peerIdentity returns the identity of the caller's client certificate:
// issued by the CA, and the current certificate of a live identity (same
// serial, not revoked).
func (m *Master) peerIdentity(ctx context.Context, cert *x509.Certificate) (*store.WorkerIdentity, error) {
	if cert == nil {
		return nil, errors.New("no client certificate: join first")
	}
	name, err := m.ca.VerifyWorker(cert)
	if err != nil {
		return nil, err
	}
	return m.checkIdentity(ctx, name, cert)
}

func (m *Master) checkIdentity(ctx context.Context, name string, cert *x509.Certificate) (*store.WorkerIdentity, error) {
	id, err := m.store.GetWorkerIdentity(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no identity recorded for %q", name)
	}
	if err != nil {
		return nil, err
	}
	if !id.RevokedAt.IsZero() {
		return nil, fmt.Errorf("the identity of %q was revoked", name)
	}
	if id.Serial != pki.SerialString(cert) {
		return nil, fmt.Errorf("certificate of %q superseded by a newer one", name)
	}
	return id, nil
}

// authorizeWorker checks a Connect: the client certificate names the worker
// that says hello. It returns the worker as attempts are given to it: its
// name and its identity's lineage.
func (m *Master) authorizeWorker(ctx context.Context, p workerlink.Peer, hello *clusterpb.Hello) (store.WorkerRef, error) {
	id, err := m.peerIdentity(ctx, p.Cert)
	if err != nil {
		m.audit.Warn("worker refused", "worker", hello.Name, "addr", p.Addr, "reason", err.Error())
		return store.WorkerRef{}, workerlink.Refuse(workerlink.Unauthenticated, "worker identity refused: %s", err)
	}
	if id.Name != hello.Name {
		m.audit.Warn("worker refused", "worker", hello.Name, "certificate", id.Name, "addr", p.Addr, "reason", "name differs from certificate")
		return store.WorkerRef{}, workerlink.Refuse(workerlink.Forbidden, "the certificate is for %q, not %q", id.Name, hello.Name)
	}
	return store.WorkerRef{Name: id.Name, Identity: id.ID}, nil
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
	// The database first: the other masters take it from there.
	if err := m.store.SetSecret(ctx, JoinTokenFile, []byte(tok)); err != nil {
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
		return jobs.NotFound
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	if w := m.workers[name]; w != nil && w.session != nil {
		w.session.Close()
		w.session = nil
		m.reindex(w)
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
