package callback

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/grappe/grappe/internal/store"
)

// SecretStore keeps the secrets (the store's cluster secrets, which every
// master shares) and knows the users.
type SecretStore interface {
	PutSecret(ctx context.Context, name string, value []byte) ([]byte, error)
	SetSecret(ctx context.Context, name string, value []byte) error
	GetSecret(ctx context.Context, name string) ([]byte, error)
	GetUser(ctx context.Context, name string) (*store.User, error)
}

var _ SecretStore = store.Store(nil)

// Secrets are the users' callback secrets: one per user, made at its
// first use, replaced by Rotate. The secret is the HMAC key, as text.
type Secrets struct {
	Store SecretStore
}

// secretName names user's secret. The account's creation time is part
// of it: a user removed and made again under the same name does not
// inherit the secret that the first one knew.
func (s Secrets) secretName(ctx context.Context, user string) (string, error) {
	u, err := s.Store.GetUser(ctx, user)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("callback-secret/%s/%d", user, u.CreatedAt.UnixNano()), nil
}

// Get returns user's secret, making it on first use (of masters doing so
// at once, the first one's is kept).
func (s Secrets) Get(ctx context.Context, user string) (string, error) {
	name, err := s.secretName(ctx, user)
	if err != nil {
		return "", fmt.Errorf("callback: secret of %s: %w", user, err)
	}
	v, err := s.Store.GetSecret(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		v, err = s.Store.PutSecret(ctx, name, []byte(newSecret()))
	}
	if err != nil {
		return "", fmt.Errorf("callback: secret of %s: %w", user, err)
	}
	return string(v), nil
}

// Rotate replaces user's secret and returns the new one. Deliveries from
// then on are signed with it.
func (s Secrets) Rotate(ctx context.Context, user string) (string, error) {
	name, err := s.secretName(ctx, user)
	if err != nil {
		return "", fmt.Errorf("callback: rotate the secret of %s: %w", user, err)
	}
	v := newSecret()
	if err := s.Store.SetSecret(ctx, name, []byte(v)); err != nil {
		return "", fmt.Errorf("callback: rotate the secret of %s: %w", user, err)
	}
	return v, nil
}

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "gcs_" + hex.EncodeToString(b[:])
}
