package httpapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
)

// Web sessions. The browser never holds a token in JavaScript: logging in
// through /api/v1/session sets the API token as an HttpOnly, Secure,
// SameSite=Strict cookie. Requests authenticated by that cookie must also
// carry the CSRF token (a second, readable cookie echoed in the
// X-CSRF-Token header) when they change state: SameSite already stops
// cross-site requests in current browsers; the header check covers the
// others.
const (
	sessionCookie = "grappe_session"
	csrfCookie    = "grappe_csrf"
	csrfHeader    = "X-CSRF-Token"
	sessionMaxAge = 12 * time.Hour
)

func newCSRF() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func setCookie(w http.ResponseWriter, name, value string, httpOnly bool, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/",
		MaxAge:   int(maxAge.Seconds()),
		HttpOnly: httpOnly, Secure: true, SameSite: http.SameSiteStrictMode,
	})
}

// sameOriginOnly refuses a request another site's page made: a form
// posted to the routes that set the session cookies would log the
// victim's browser into the attacker's account (login CSRF), where the
// victim's programs and input would then go. Browsers say where a request
// comes from (Sec-Fetch-Site, Origin); clients that are not browsers send
// neither and pass.
func (s *server) sameOriginOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" || (origin != "" && !sameOrigin(origin, r.Host)) {
			writeError(w, s.Logger, r, Errorf(http.StatusForbidden, api.CodeForbidden, "a login from another site's page is refused"))
			return
		}
		h(w, r)
	}
}

// createSession logs in with a password and sets the session cookies.
func (s *server) createSession(w http.ResponseWriter, r *http.Request) {
	// The session's token dies with its cookie, not weeks later.
	token, _, err := s.passwordLogin(w, r, "web", sessionMaxAge)
	if err != nil {
		writeError(w, s.Logger, r, err)
		return
	}
	p, err := s.Auth.Authenticate(r.Context(), token)
	if err != nil {
		writeError(w, s.Logger, r, err)
		return
	}
	csrf := newCSRF()
	setCookie(w, sessionCookie, token, true, sessionMaxAge)
	setCookie(w, csrfCookie, csrf, false, sessionMaxAge)
	writeJSON(w, http.StatusOK, api.Session{Username: p.User, Role: p.Role, CSRFToken: csrf})
}

// getSession says who the caller is (for the web UI's start-up).
func (s *server) getSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	csrf := ""
	if c, err := r.Cookie(csrfCookie); err == nil {
		csrf = c.Value
	}
	writeJSON(w, http.StatusOK, api.Session{Username: p.User, Role: p.Role, CSRFToken: csrf})
	return nil
}

// deleteSession logs out: the token is revoked, the cookies cleared.
func (s *server) deleteSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if c, err := r.Cookie(sessionCookie); err == nil && s.Revoker != nil {
		if err := s.Revoker.RevokeToken(r.Context(), c.Value); err != nil {
			s.Logger.Warn("logout: revoke token", "user", p.User, "err", err)
		}
	}
	setCookie(w, sessionCookie, "", true, -time.Second)
	setCookie(w, csrfCookie, "", false, -time.Second)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// credentials finds the caller's token: the Authorization header, else
// the session cookie. fromCookie tells which, for the CSRF check.
func credentials(r *http.Request) (token string, fromCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		t, _ := strings.CutPrefix(h, "Bearer ")
		return strings.TrimSpace(t), false
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// csrfOK checks the double-submit token of a cookie-authenticated request
// that changes state.
func csrfOK(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	c, err := r.Cookie(csrfCookie)
	h := r.Header.Get(csrfHeader)
	return err == nil && c.Value != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(h)) == 1
}

// securityHeaders are sent with every answer: no framing, no sniffing, no
// referrer, scripts and styles only from the master itself, HTTPS only.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
