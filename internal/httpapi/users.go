package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/store"
)

// Users is what the user endpoints need; *auth.Authenticator is the real one.
type Users interface {
	LoginFor(ctx context.Context, name, password string, ttl time.Duration) (token string, expires time.Time, err error)
	AddUser(ctx context.Context, name, password, role string) (*store.User, error)
	Users(ctx context.Context) ([]*store.User, error)
	RemoveUser(ctx context.Context, name string) error
	SetPassword(ctx context.Context, name, password string) error
	CreateToken(ctx context.Context, user, name string, expires time.Time) (*store.Token, string, error)
	Tokens(ctx context.Context, user string) ([]*store.Token, error)
	DeleteToken(ctx context.Context, user, id string) error
}

var _ Users = (*auth.Authenticator)(nil)

// userError maps auth's sentinels to API errors.
func userError(err error) error {
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		return Errorf(http.StatusUnauthorized, api.CodeUnauthorized, "wrong user name or password")
	case errors.Is(err, auth.ErrUserExists):
		return Errorf(http.StatusConflict, api.CodeConflict, "that user already exists")
	case errors.Is(err, auth.ErrNoUser), errors.Is(err, auth.ErrNoToken):
		return ErrNotFound
	case errors.Is(err, auth.ErrInvalid):
		return Errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%s", strings.TrimPrefix(err.Error(), auth.ErrInvalid.Error()+": "))
	}
	return err
}

// throttleLogin bounds password attempts per user name and per address.
// An address gets more attempts than a name (several users behind one
// NAT), a name fewer (one account guessed from many addresses).
func (s *server) throttleLogin(r *http.Request, username string) error {
	if ok, wait := s.loginByAddr.allow(clientIP(r)); !ok {
		s.Logger.Warn("login throttled", "audit", true, "addr", r.RemoteAddr, "by", "address")
		return tooMany("login attempts from this address", wait)
	}
	if ok, wait := s.loginByUser.allow(username); !ok {
		s.Logger.Warn("login throttled", "audit", true, "user", username, "addr", r.RemoteAddr, "by", "user")
		return tooMany("login attempts for this user", wait)
	}
	return nil
}

// passwordLogin decodes a login, throttles it, checks the password and
// returns a new login token valid for ttl at most (0: the master's login
// TTL); via says where it came from, for the audit lines.
func (s *server) passwordLogin(w http.ResponseWriter, r *http.Request, via string, ttl time.Duration) (string, time.Time, error) {
	var req api.LoginRequest
	if err := s.decode(w, r, &req); err != nil {
		return "", time.Time{}, err
	}
	if err := s.throttleLogin(r, req.Username); err != nil {
		return "", time.Time{}, err
	}
	token, expires, err := s.Users.LoginFor(r.Context(), req.Username, req.Password, ttl)
	if err != nil {
		s.Logger.Warn("login failed", "audit", true, "user", req.Username, "addr", r.RemoteAddr, "via", via)
		return "", time.Time{}, userError(err)
	}
	s.Logger.Info("login", "audit", true, "user", req.Username, "addr", r.RemoteAddr, "via", via, "expires", expires)
	return token, expires, nil
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	token, expires, err := s.passwordLogin(w, r, "api", 0)
	if err != nil {
		writeError(w, s.Logger, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.LoginResponse{Token: token, ExpiresAt: &expires})
}

func apiUser(u *store.User) api.User {
	return api.User{Username: u.Name, Role: u.Role, CreatedAt: u.CreatedAt}
}

func (s *server) addUser(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req api.UserRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	u, err := s.Users.AddUser(r.Context(), req.Username, req.Password, req.Role)
	if err != nil {
		return userError(err)
	}
	s.Logger.Info("user added", "audit", true, "user", u.Name, "role", u.Role, "by", p.User)
	writeJSON(w, http.StatusCreated, apiUser(u))
	return nil
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	us, err := s.Users.Users(r.Context())
	if err != nil {
		return err
	}
	out := api.UserList{Users: make([]api.User, 0, len(us))}
	for _, u := range us {
		out.Users = append(out.Users, apiUser(u))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) removeUser(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name := r.PathValue("name")
	if err := s.Users.RemoveUser(r.Context(), name); err != nil {
		return userError(err)
	}
	s.Logger.Info("user removed", "audit", true, "user", name, "by", p.User)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setPassword lets an admin set anyone's password and a user their own.
func (s *server) setPassword(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name := r.PathValue("name")
	if !p.IsAdmin() && name != p.User {
		return ErrNotAdmin
	}
	var req api.PasswordRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := s.Users.SetPassword(r.Context(), name, req.Password); err != nil {
		return userError(err)
	}
	s.Logger.Info("password set; the user's login tokens revoked", "audit", true, "user", name, "by", p.User)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req api.TokenRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var expires time.Time
	if req.ExpiresAt != nil {
		expires = *req.ExpiresAt
	}
	t, secret, err := s.Users.CreateToken(r.Context(), p.User, req.Name, expires)
	if err != nil {
		return userError(err)
	}
	s.Logger.Info("token created", "audit", true, "user", p.User, "token_id", t.ID, "name", t.Name, "expires", t.ExpiresAt)
	out := apiToken(t)
	out.Token = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// apiToken is a token as the API shows it, without its secret.
func apiToken(t *store.Token) api.APIToken {
	out := api.APIToken{ID: t.ID, Name: t.Name, Kind: t.Kind, CreatedAt: t.CreatedAt}
	if !t.ExpiresAt.IsZero() {
		exp := t.ExpiresAt
		out.ExpiresAt = &exp
	}
	return out
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ts, err := s.Users.Tokens(r.Context(), p.User)
	if err != nil {
		return err
	}
	out := api.APITokenList{Tokens: make([]api.APIToken, 0, len(ts))}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, apiToken(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) deleteToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	if err := s.Users.DeleteToken(r.Context(), p.User, id); err != nil {
		return userError(err)
	}
	s.Logger.Info("token revoked", "audit", true, "user", p.User, "token_id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
