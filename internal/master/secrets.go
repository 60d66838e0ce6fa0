package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/pki"
	"github.com/grappe/grappe/internal/store"
)

// One cluster identity. The files of the cluster's identity in --data
// (its CA, the join, admin and metrics tokens) are also kept in the
// database, so that every master sharing it has the same: a certificate
// signed by one is valid on all, and the tokens work on every master. The
// first master on a database stores its own (found in --data or created);
// a master that joins later writes the database's into its --data, as the
// contract names them. A --data that holds another cluster's identity is
// refused rather than silently replaced.

// identityFiles are the files shared through the database, by name.
var identityFiles = []string{pki.CertFile, pki.KeyFile, JoinTokenFile, AdminTokenFile, MetricsTokenFile}

// errOtherCluster: --data holds an identity the database does not.
var errOtherCluster = errors.New("the data directory holds another cluster's identity")

// takeIdentity writes into --data the identity files the database has
// and --data lacks, and checks that those --data has are the database's.
// Before anything is created: a master joining an existing database
// starts with the cluster's CA and tokens.
func (m *Master) takeIdentity(ctx context.Context) error {
	for _, name := range identityFiles {
		path := filepath.Join(m.cfg.DataDir, name)
		local, err := os.ReadFile(path)
		stored, gerr := m.store.GetSecret(ctx, name)
		switch {
		case errors.Is(gerr, store.ErrNotFound):
			continue // the first master: shareIdentity stores what it has
		case gerr != nil:
			return fmt.Errorf("master: read the cluster's %s: %w", name, gerr)
		case errors.Is(err, os.ErrNotExist):
			if err := auth.WriteSecretFile(path, string(bytes.TrimSpace(stored))); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("master: %w", err)
		case !bytes.Equal(bytes.TrimSpace(local), bytes.TrimSpace(stored)):
			return fmt.Errorf("master: %w: %s differs from the database's; move it away to take the cluster's", errOtherCluster, path)
		}
	}
	return nil
}

// shareIdentity stores this master's identity files in the database,
// where none is stored yet. Of masters starting together on a new
// database, the first one's win: it reports whether another's were taken
// instead (their files now in --data), for the caller to load them.
func (m *Master) shareIdentity(ctx context.Context) (took bool, err error) {
	for _, name := range identityFiles {
		path := filepath.Join(m.cfg.DataDir, name)
		local, err := os.ReadFile(path)
		if err != nil {
			return false, fmt.Errorf("master: %w", err)
		}
		local = bytes.TrimSpace(local)
		stored, err := m.store.PutSecret(ctx, name, local)
		if err != nil {
			return false, fmt.Errorf("master: store the cluster's %s: %w", name, err)
		}
		if !bytes.Equal(bytes.TrimSpace(stored), local) {
			if err := auth.WriteSecretFile(path, string(bytes.TrimSpace(stored))); err != nil {
				return false, err
			}
			took = true
		}
	}
	return took, nil
}

// followJoinToken takes a join token rotated through another master (the
// sweep calls it every few seconds).
func (m *Master) followJoinToken(ctx context.Context) {
	stored, err := m.store.GetSecret(ctx, JoinTokenFile)
	if err != nil {
		return
	}
	tok := string(bytes.TrimSpace(stored))
	if tok == m.currentJoinToken() {
		return
	}
	if _, err := pki.ParseJoinToken(tok); err != nil {
		m.log.Warn("the database's join token is unreadable; keeping this master's", "err", err)
		return
	}
	if err := auth.WriteSecretFile(m.joinTokenPath(), tok); err != nil {
		m.log.Warn("write the rotated join token", "err", err)
	}
	m.mu.Lock()
	m.joinToken = tok
	m.mu.Unlock()
	m.audit.Info("join token rotated through another master")
}
