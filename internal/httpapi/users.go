package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
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
	// SessionFrom exchanges a sign-in link's secret (once) or an API
	// token for a new login token valid for ttl; link says which it was.
	SessionFrom(ctx context.Context, secret string, ttl time.Duration) (p *auth.Principal, token string, expires time.Time, link bool, err error)
	// CheckPassword is auth.ErrBadCredentials unless password is name's.
	CheckPassword(ctx context.Context, name, password string) error
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

// maxThrottledName bounds the user names the login limiter keeps: longer
// than any valid name.
const maxThrottledName = 128

// throttleLogin bounds password attempts per user name and per address.
// An address gets more attempts than a name (several users behind one
// NAT), a name fewer (one account guessed from many addresses).
func (s *server) throttleLogin(r *http.Request, username string) error {
	if ok, wait := s.loginByAddr.allow(clientIP(r)); !ok {
		s.Logger.Warn("login throttled", "audit", true, "addr", r.RemoteAddr, "by", "address")
		return tooMany("login attempts from this address", wait)
	}
	// The limiter is keyed by the name as sent: bounded, so that names of
	// megabytes cannot fill the master's memory (no account has one).
	if len(username) > maxThrottledName {
		username = username[:maxThrottledName]
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
		if errors.Is(err, auth.ErrBadCredentials) {
			s.audit(r, "", "login.failed", clip(req.Username, 64), via+", with a password")
		}
		return "", time.Time{}, userError(err)
	}
	s.Logger.Info("login", "audit", true, "user", req.Username, "addr", r.RemoteAddr, "via", via, "expires", expires)
	s.audit(r, req.Username, "login", req.Username, via+", with a password")
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
	s.audit(r, p.User, "user.add", u.Name, "role "+u.Role)
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
	s.audit(r, p.User, "user.remove", name, "")
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
	if err := s.checkCurrentPassword(r, p, name, req.CurrentPassword); err != nil {
		return err
	}
	if err := s.Users.SetPassword(r.Context(), name, req.Password); err != nil {
		return userError(err)
	}
	detail := "changed their own password; their login sessions revoked"
	if name != p.User {
		detail = "reset the password; the user's login sessions revoked"
	}
	s.audit(r, p.User, "user.password", name, detail)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkCurrentPassword checks current, when given, against user's
// password, and demands it of a web session changing its own password.
func (s *server) checkCurrentPassword(r *http.Request, p *auth.Principal, user, current string) error {
	if _, fromCookie := credentials(r); current == "" && !(fromCookie && user == p.User) {
		return nil
	}
	if current == "" {
		return Errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "give your current password to change it")
	}
	if err := s.throttleLogin(r, user); err != nil {
		return err
	}
	if err := s.Users.CheckPassword(r.Context(), user, current); err != nil {
		if errors.Is(err, auth.ErrBadCredentials) {
			s.audit(r, p.User, "user.password.failed", user, "wrong current password")
			return Errorf(http.StatusForbidden, api.CodeForbidden, "the current password is wrong")
		}
		return err
	}
	return nil
}

// clip cuts an untrusted name for the audit log.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return s.makeToken(w, r, p, p.User)
}

// makeToken creates an API token of user (the caller's own, or anyone's
// for an admin) and shows its secret, once.
func (s *server) makeToken(w http.ResponseWriter, r *http.Request, p *auth.Principal, user string) error {
	var req api.TokenRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var expires time.Time
	if req.ExpiresAt != nil {
		expires = *req.ExpiresAt
	}
	t, secret, err := s.Users.CreateToken(r.Context(), user, req.Name, expires)
	if err != nil {
		return userError(err)
	}
	detail := "named " + strconv.Quote(t.Name) + " for " + user
	if !t.ExpiresAt.IsZero() {
		detail += ", expires " + t.ExpiresAt.Format(time.RFC3339)
	}
	s.audit(r, p.User, "token.create", t.ID, detail)
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
	return s.writeTokens(w, r, p.User)
}

func (s *server) writeTokens(w http.ResponseWriter, r *http.Request, user string) error {
	ts, err := s.Users.Tokens(r.Context(), user)
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
	return s.revokeToken(w, r, p, p.User)
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, p *auth.Principal, user string) error {
	id := r.PathValue("id")
	if err := s.Users.DeleteToken(r.Context(), user, id); err != nil {
		return userError(err)
	}
	s.audit(r, p.User, "token.revoke", id, "a token of "+user)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// An admin manages anyone's tokens: /api/v1/users/{name}/tokens.

func (s *server) listUserTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.userExists(r, r.PathValue("name")); err != nil {
		return err
	}
	return s.writeTokens(w, r, r.PathValue("name"))
}

func (s *server) createUserToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return s.makeToken(w, r, p, r.PathValue("name"))
}

func (s *server) deleteUserToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return s.revokeToken(w, r, p, r.PathValue("name"))
}

// userExists answers 404 for an unknown user, whose token list would
// otherwise be an empty one.
func (s *server) userExists(r *http.Request, name string) error {
	us, err := s.Users.Users(r.Context())
	if err != nil {
		return err
	}
	for _, u := range us {
		if u.Name == name {
			return nil
		}
	}
	return ErrNotFound
}
