package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// Sentinel errors of user management, for the API to map.
var (
	ErrBadCredentials = errors.New("auth: wrong user name or password")
	ErrUserExists     = errors.New("auth: user already exists")
	ErrNoUser         = errors.New("auth: no such user")
	ErrInvalid        = errors.New("auth: invalid user")
	ErrNoToken        = errors.New("auth: no such token")
)

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

// dummyHash is verified against when the user does not exist, so a login
// takes as long for an unknown name as for a wrong password. It is made on
// first use, not at start.
func (a *Authenticator) dummyHash() string {
	a.dummyOnce.Do(func() {
		a.dummy, _ = HashPassword("grappe-dummy-password")
	})
	return a.dummy
}

func checkPassword(password string) error {
	if len(password) < MinPasswordLen || len(password) > MaxPasswordLen {
		return fmt.Errorf("%w: the password must be %d to %d bytes", ErrInvalid, MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// Login exchanges a name and password for a new login token, valid for
// the configured LoginTTL.
func (a *Authenticator) Login(ctx context.Context, name, password string) (string, error) {
	token, _, err := a.LoginFor(ctx, name, password, 0)
	return token, err
}

// LoginFor is Login with the token's lifetime: ttl if it is positive and
// shorter than LoginTTL (a web session's, bounded like its cookie), else
// LoginTTL. It also returns when the token expires.
func (a *Authenticator) LoginFor(ctx context.Context, name, password string, ttl time.Duration) (string, time.Time, error) {
	u, err := a.verify(ctx, name, password)
	if err != nil {
		return "", time.Time{}, err
	}
	return a.loginToken(ctx, u.Name, "login", "", ttl)
}

// CheckPassword reports ErrBadCredentials unless password is name's (a
// user changing their password proves they know the current one).
func (a *Authenticator) CheckPassword(ctx context.Context, name, password string) error {
	_, err := a.verify(ctx, name, password)
	return err
}

// verify returns the user whose password this is, or ErrBadCredentials,
// taking as long for an unknown user as for a wrong password.
func (a *Authenticator) verify(ctx context.Context, name, password string) (*store.User, error) {
	if len(password) > MaxPasswordLen || len(name) > 64 {
		return nil, ErrBadCredentials
	}
	u, err := a.store.GetUser(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("auth: user lookup: %w", err)
	}
	hash := a.dummyHash()
	if u != nil && u.PasswordHash != "" {
		hash = u.PasswordHash
	}
	ok, err := VerifyPassword(hash, password)
	if err != nil || !ok || u == nil || u.PasswordHash == "" {
		return nil, ErrBadCredentials
	}
	return u, nil
}

// loginToken issues a login token of user named name, valid for ttl
// bounded by LoginTTL.
func (a *Authenticator) loginToken(ctx context.Context, user, name, parent string, ttl time.Duration) (string, time.Time, error) {
	a.purgeExpired(ctx)
	if ttl <= 0 || ttl > a.loginTTL {
		ttl = a.loginTTL
	}
	now := a.now().UTC()
	t, token, err := a.issue(ctx, &store.Token{User: user, Name: name, Kind: store.TokenLogin, CreatedAt: now, ExpiresAt: now.Add(ttl), Parent: parent})
	if err != nil {
		return "", time.Time{}, err
	}
	return token, t.ExpiresAt, nil
}

// issue fills in t's id and hash, stores it and returns it with its secret.
func (a *Authenticator) issue(ctx context.Context, t *store.Token) (*store.Token, string, error) {
	token, err := NewToken()
	if err != nil {
		return nil, "", err
	}
	id, err := NewToken()
	if err != nil {
		return nil, "", err
	}
	t.ID, t.Hash = id[len(tokenPrefix):][:16], HashToken(token)
	if err := a.store.CreateToken(ctx, t); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, "", ErrNoUser
		}
		return nil, "", fmt.Errorf("auth: store token: %w", err)
	}
	return t, token, nil
}

// purgeEvery is how often logins delete the expired tokens: every login
// adds a row, and nothing else would ever remove the expired ones.
const purgeEvery = time.Hour

// purgeExpired deletes the expired tokens, at most once per purgeEvery. A
// failure is not the login's: the rows are dead anyway (Authenticate
// refuses them) and the next purge retries.
func (a *Authenticator) purgeExpired(ctx context.Context) {
	now := a.now()
	a.mu.Lock()
	due := now.Sub(a.lastPurge) >= purgeEvery
	if due {
		a.lastPurge = now
	}
	a.mu.Unlock()
	if due {
		_, _ = a.store.DeleteExpiredTokens(ctx, now)
	}
}

// AddUser creates a user with a password and a role.
func (a *Authenticator) AddUser(ctx context.Context, name, password, role string) (*store.User, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("%w: a user name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid)
	}
	if role == "" {
		role = RoleUser
	}
	if role != RoleUser && role != RoleAdmin {
		return nil, fmt.Errorf("%w: role must be %q or %q", ErrInvalid, RoleUser, RoleAdmin)
	}
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	if _, err := a.store.GetUser(ctx, name); err == nil {
		return nil, ErrUserExists
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("auth: user lookup: %w", err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	u := &store.User{Name: name, Role: role, PasswordHash: hash, CreatedAt: time.Now().UTC()}
	if err := a.store.PutUser(ctx, u); err != nil {
		return nil, fmt.Errorf("auth: create user: %w", err)
	}
	return u, nil
}

// EnsureUser makes sure a user exists, creating it with role and no
// password (it cannot log in until an admin sets one) when it does not,
// and returns it as it is.
func (a *Authenticator) EnsureUser(ctx context.Context, name, role string) (*store.User, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("%w: a user name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid)
	}
	u, err := a.store.GetUser(ctx, name)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("auth: user lookup: %w", err)
	}
	u = &store.User{Name: name, Role: role, CreatedAt: time.Now().UTC()}
	if err := a.store.PutUser(ctx, u); err != nil {
		return nil, fmt.Errorf("auth: create user: %w", err)
	}
	return u, nil
}

// Users lists every user.
func (a *Authenticator) Users(ctx context.Context) ([]*store.User, error) {
	return a.store.ListUsers(ctx)
}

// RemoveUser deletes a user and all its tokens. The built-in admin stays:
// its token file is how an operator gets back in.
func (a *Authenticator) RemoveUser(ctx context.Context, name string) error {
	if name == AdminUser {
		return fmt.Errorf("%w: the built-in admin cannot be removed", ErrInvalid)
	}
	err := a.store.DeleteUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoUser
	}
	if err != nil {
		return fmt.Errorf("auth: remove user: %w", err)
	}
	a.Forget(name)
	return nil
}

// SetPassword replaces a user's password and revokes the user's login
// tokens (every session opened with the old password, the caller's own
// included); tokens made with CreateToken stay valid.
func (a *Authenticator) SetPassword(ctx context.Context, name, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	_, err = a.store.SetPasswordHash(ctx, name, hash)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoUser
	}
	if err != nil {
		return fmt.Errorf("auth: set password: %w", err)
	}
	a.Forget(name)
	return nil
}

// RevokeToken deletes one token (a web session's at logout). Unknown
// tokens are not an error: the result is the same.
func (a *Authenticator) RevokeToken(ctx context.Context, token string) error {
	hash := HashToken(token)
	t, err := a.store.TokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("auth: token lookup: %w", err)
	}
	if err := a.store.DeleteToken(ctx, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: revoke token: %w", err)
	}
	a.Forget(t.User) // the sessions opened with it went with it
	return nil
}

// CreateToken makes a named API token for user, valid until revoked or
// until expires (zero: never); the secret is returned once and only its
// hash is kept.
func (a *Authenticator) CreateToken(ctx context.Context, user, name string, expires time.Time) (*store.Token, string, error) {
	if len(name) > 128 {
		return nil, "", fmt.Errorf("%w: a token name is at most 128 bytes", ErrInvalid)
	}
	now := a.now().UTC()
	if !expires.IsZero() && !expires.After(now) {
		return nil, "", fmt.Errorf("%w: the expiry must be in the future", ErrInvalid)
	}
	if !expires.IsZero() {
		expires = expires.UTC()
	}
	return a.issue(ctx, &store.Token{User: user, Name: name, Kind: store.TokenAPI, CreatedAt: now, ExpiresAt: expires})
}

// Tokens lists a user's tokens (without secrets).
func (a *Authenticator) Tokens(ctx context.Context, user string) ([]*store.Token, error) {
	return a.store.ListTokens(ctx, user)
}

// DeleteToken revokes one of user's tokens by id. Another user's token
// answers ErrNoUser-like not found, so ids leak nothing.
func (a *Authenticator) DeleteToken(ctx context.Context, user, id string) error {
	ts, err := a.store.ListTokens(ctx, user)
	if err != nil {
		return fmt.Errorf("auth: list tokens: %w", err)
	}
	for _, t := range ts {
		if t.ID == id {
			if err := a.store.DeleteToken(ctx, id); err != nil {
				return fmt.Errorf("auth: revoke token: %w", err)
			}
			a.Forget(user) // the sessions opened with it went with it
			return nil
		}
	}
	return ErrNoToken
}
