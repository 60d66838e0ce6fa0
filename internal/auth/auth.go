// Package auth authenticates API callers: API tokens (only their SHA-256 is
// stored), the built-in admin user and its token file, and roles.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// ErrUnauthenticated: no such token, or its user is gone.
var ErrUnauthenticated = errors.New("auth: invalid token")

// ErrTokenExpired: the token exists but is past its expiry. It is an
// ErrUnauthenticated too, with a message that tells the caller what to do.
var ErrTokenExpired = fmt.Errorf("%w: the token has expired", ErrUnauthenticated)

// DefaultLoginTTL is how long a token made by a password login is valid
// when Config.LoginTTL is zero.
const DefaultLoginTTL = 30 * 24 * time.Hour

// Config configures an Authenticator.
type Config struct {
	// LoginTTL is how long a token made by a password login (grappe
	// login, the web UI) stays valid; default DefaultLoginTTL. Tokens made
	// on purpose (CreateToken) have their own expiry, if any.
	LoginTTL time.Duration
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time
}

// Roles.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// AdminUser is the built-in administrator created on first start.
const AdminUser = "admin"

// tokenPrefix makes grappe tokens recognisable in logs and secret scanners.
const tokenPrefix = "grp_"

// Principal is an authenticated caller.
type Principal struct {
	User string
	Role string
}

// IsAdmin reports whether the caller may see and act on everything.
func (p *Principal) IsAdmin() bool { return p != nil && p.Role == RoleAdmin }

// NewToken returns a fresh random API token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random token: %w", err)
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is what the store keeps of a token. Tokens carry 256 random
// bits, so a plain SHA-256 is enough: there is nothing to brute-force.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// cacheTTL bounds how long a token stays trusted without a store lookup.
// Revocations through this Authenticator apply at once (Forget); one made
// by another master applies within the TTL.
const cacheTTL = 10 * time.Second

// maxCached bounds the cache; past it, it is cleared.
const maxCached = 10000

// Authenticator checks bearer tokens against the store, caching the
// answers briefly: every API request authenticates, and a store read per
// request would be the largest cost of a small one.
type Authenticator struct {
	store    store.Store
	loginTTL time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]cached // by token hash
	// links are the sign-in links not used yet, by hash (signin.go).
	links map[string]signinLink

	lastPurge time.Time // of expired tokens, under mu

	dummyOnce sync.Once
	dummy     string
}

type cached struct {
	p       Principal
	expires time.Time
}

// New returns an Authenticator over s.
func New(s store.Store, cfg Config) *Authenticator {
	if cfg.LoginTTL <= 0 {
		cfg.LoginTTL = DefaultLoginTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authenticator{store: s, loginTTL: cfg.LoginTTL, now: cfg.Now, cache: make(map[string]cached), links: make(map[string]signinLink)}
}

// LoginTTL is how long a login token stays valid.
func (a *Authenticator) LoginTTL() time.Duration { return a.loginTTL }

// Forget drops every cached token of user (all users when user is empty),
// after a revocation, a removal or a role change.
func (a *Authenticator) Forget(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, c := range a.cache {
		if user == "" || c.p.User == user {
			delete(a.cache, h)
		}
	}
}

// Authenticate returns the principal a token belongs to. The lookup is by
// hash, so no comparison of secrets happens in Go code at all.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if token == "" || len(token) > 512 {
		return nil, ErrUnauthenticated
	}
	hash := HashToken(token)
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[hash]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		p := c.p
		return &p, nil
	}
	p, t, err := a.lookup(ctx, hash, now)
	if err != nil {
		return nil, err
	}
	// Trusted for cacheTTL, never past the token's own expiry.
	until := now.Add(cacheTTL)
	if !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(until) {
		until = t.ExpiresAt
	}
	a.mu.Lock()
	if len(a.cache) >= maxCached {
		clear(a.cache)
	}
	a.cache[hash] = cached{p: *p, expires: until}
	a.mu.Unlock()
	return p, nil
}

func (a *Authenticator) lookup(ctx context.Context, hash string, now time.Time) (*Principal, *store.Token, error) {
	t, err := a.store.TokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, nil, fmt.Errorf("auth: token lookup: %w", err)
	}
	if t.Expired(now) {
		return nil, nil, ErrTokenExpired
	}
	u, err := a.store.GetUser(ctx, t.User)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, nil, fmt.Errorf("auth: user lookup: %w", err)
	}
	return &Principal{User: u.Name, Role: u.Role}, t, nil
}

// EnsureAdmin makes sure the admin user exists and that the token in
// tokenFile is one of its tokens, creating the file (mode 0600) with a new
// token on first start. A token file that survives a wiped database is
// registered again rather than silently replaced.
func (a *Authenticator) EnsureAdmin(ctx context.Context, tokenFile string) error {
	if _, err := a.store.GetUser(ctx, AdminUser); errors.Is(err, store.ErrNotFound) {
		if err := a.store.PutUser(ctx, &store.User{Name: AdminUser, Role: RoleAdmin, CreatedAt: time.Now().UTC()}); err != nil {
			return fmt.Errorf("auth: create admin: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("auth: admin lookup: %w", err)
	}
	token, err := ReadSecretFile(tokenFile)
	if errors.Is(err, os.ErrNotExist) {
		if token, err = NewToken(); err != nil {
			return err
		}
		if err := WriteSecretFile(tokenFile, token); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	hash := HashToken(token)
	if _, err := a.store.TokenByHash(ctx, hash); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: token lookup: %w", err)
	}
	id, err := NewToken()
	if err != nil {
		return err
	}
	return a.store.CreateToken(ctx, &store.Token{ID: id[len(tokenPrefix):][:16], Hash: hash, User: AdminUser, Name: "admin-token file", Kind: store.TokenAPI, CreatedAt: a.now().UTC()})
}

// ReadSecretFile reads a one-line secret, trimmed.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("auth: %s is empty", path)
	}
	return s, nil
}

// WriteSecretFile writes a secret with mode 0600, atomically: a crash
// leaves either no file or the whole secret.
func WriteSecretFile(path, secret string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return fmt.Errorf("auth: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.WriteString(secret + "\n")
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
	} else {
		tmp.Close()
	}
	if err != nil {
		return fmt.Errorf("auth: write %s: %w", path, err)
	}
	return nil
}
