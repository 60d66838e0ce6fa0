package worker

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/pki"
)

// joinedCAFile is the cluster CA as received at join time.
const joinedCAFile = "ca.pem"

// ensureIdentity loads the worker's certificate, or joins the cluster to
// get one. A master that cannot be reached yet is waited for; a refused
// join token is an error: the worker cannot run.
func (w *Worker) ensureIdentity(ctx context.Context) error {
	if cert, err := pki.LoadWorkerIdentity(w.cfg.DataDir); err == nil && cert.Leaf.Subject.CommonName == w.cfg.Name {
		w.identity.Store(&cert)
		if !pki.NeedsRenewal(cert.Leaf, time.Now()) {
			return nil
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		w.log.Warn("worker identity unreadable; joining again", "err", err)
	}
	backoff := 200 * time.Millisecond
	for {
		err := w.join(ctx)
		if err == nil {
			return nil
		}
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument,
			codes.AlreadyExists: // the name belongs to a live worker
			return fmt.Errorf("worker: the master refused to let %s join: %w", w.cfg.Name, err)
		}
		w.log.Warn("cannot join the master yet; retrying", "master", w.master(), "err", err, "in", backoff)
		w.nextMaster()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// join sends a CSR (with the join token, or the current certificate when
// renewing) and saves the certificate it gets back.
func (w *Worker) join(ctx context.Context) error {
	if w.cfg.JoinToken == "" && w.identity.Load() == nil {
		return status.Error(codes.Unauthenticated, "no join token and no certificate")
	}
	keyPEM, csr, err := pki.NewWorkerKey(w.cfg.Name)
	if err != nil {
		return err
	}
	// A connection of its own: the handshake must present the identity
	// as it is now (none, or the one being renewed).
	conn, err := w.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := clusterpb.NewClusterClient(conn).Join(ctx, &clusterpb.JoinRequest{
		JoinToken: w.cfg.JoinToken, Name: w.cfg.Name, CsrDer: csr,
	})
	if err != nil {
		return err
	}
	if err := pki.SaveWorkerIdentity(w.cfg.DataDir, keyPEM, resp.CertificateDer); err != nil {
		return err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.CaDer})
	if err := os.WriteFile(filepath.Join(w.cfg.DataDir, joinedCAFile), caPEM, 0o644); err != nil {
		return fmt.Errorf("worker: save CA: %w", err)
	}
	cert, err := pki.LoadWorkerIdentity(w.cfg.DataDir)
	if err != nil {
		return err
	}
	w.identity.Store(&cert)
	w.log.Info("joined the cluster", "serial", pki.SerialString(cert.Leaf), "expires", cert.Leaf.NotAfter)
	return nil
}

// renewIfDue renews the certificate when a quarter of its life is left.
// Failure is only logged: the current certificate still works.
func (w *Worker) renewIfDue(ctx context.Context) {
	c := w.identity.Load()
	if c == nil || c.Leaf == nil || !pki.NeedsRenewal(c.Leaf, time.Now()) {
		return
	}
	if err := w.join(ctx); err != nil {
		w.log.Warn("certificate renewal failed", "err", err, "expires", c.Leaf.NotAfter)
		return
	}
	// The session connection still carries the old certificate, which the
	// master no longer accepts: replace it (no session is running now).
	if conn, err := w.dial(); err == nil {
		w.conn.Close()
		w.conn = conn
	}
}

// rejoinIfRefused joins again, with the join token, when the master refused
// the worker's certificate (err is the session's): its identity was revoked
// (by an admin, or by an autoscaler that retired the name and now starts it
// again) or is unknown to the master. A revoked name is free, so a worker
// holding the join token may take it with a new identity, exactly as a new
// worker could; a name that another worker holds meanwhile stays refused.
func (w *Worker) rejoinIfRefused(ctx context.Context, err error) {
	if w.cfg.JoinToken == "" || status.Code(err) != codes.Unauthenticated {
		return
	}
	w.log.Warn("the master refused this worker's certificate; joining again with the join token", "err", err)
	if err := w.join(ctx); err != nil {
		w.log.Warn("joining again failed", "err", err)
		return
	}
	// As after a renewal: the session connection carries the old
	// certificate.
	if conn, err := w.dial(); err == nil {
		w.conn.Close()
		w.conn = conn
	}
}
