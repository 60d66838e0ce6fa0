package auth

import (
	"context"
	"errors"
	"time"

	"github.com/grappe/grappe/internal/store"
)

// Sign-in links let the first admin into the web UI without the CLI:
// `grappe up` prints a URL whose fragment carries a one-time secret (a
// fragment is never sent to the server, so the secret reaches neither its
// logs nor a Referer). The page exchanges it for a session. A link is kept
// only as its hash and only in this master's memory: it is good for one
// use, for a few minutes, and a restart (which prints a new one) voids it.

// ErrLinkUsed: the sign-in link was used already, has expired, or was
// never made here.
var ErrLinkUsed = errors.New("auth: this sign-in link was used already or has expired")

type signinLink struct {
	user    string
	expires time.Time
	// used: the link was exchanged already. It is kept until it expires,
	// so that a second use is told so rather than "unknown token".
	used bool
}

// maxLinks bounds the links waiting to be used; past it the oldest
// expired ones go first, then any.
const maxLinks = 100

// SignInLink makes a one-time secret that signs user in once within ttl.
func (a *Authenticator) SignInLink(user string, ttl time.Duration) (string, error) {
	secret, err := NewToken()
	if err != nil {
		return "", err
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.links) >= maxLinks {
		for h, l := range a.links {
			if !now.Before(l.expires) || len(a.links) >= maxLinks {
				delete(a.links, h)
			}
		}
	}
	a.links[HashToken(secret)] = signinLink{user: user, expires: now.Add(ttl)}
	return secret, nil
}

// SessionFrom exchanges a secret for a new login token valid for ttl
// (bounded by LoginTTL): a sign-in link's secret, used up by the
// exchange, or a valid API token of the user (the session then ends no
// later than the token and is revoked with it; a login token is refused:
// exchanging sessions for sessions would keep one alive for ever). It
// returns who signed in, the token and its expiry, and whether a link was
// used.
func (a *Authenticator) SessionFrom(ctx context.Context, secret string, ttl time.Duration) (p *Principal, token string, expires time.Time, link bool, err error) {
	hash := HashToken(secret)
	now := a.now()
	var t *store.Token // the API token exchanged, if one is
	a.mu.Lock()
	l, isLink := a.links[hash]
	if isLink {
		if !now.Before(l.expires) {
			delete(a.links, hash)
		} else {
			a.links[hash] = signinLink{user: l.user, expires: l.expires, used: true} // whatever comes next
		}
	}
	a.mu.Unlock()
	if isLink {
		if l.used || !now.Before(l.expires) {
			return nil, "", time.Time{}, true, ErrLinkUsed
		}
		u, err := a.store.GetUser(ctx, l.user)
		if err != nil {
			return nil, "", time.Time{}, true, ErrUnauthenticated
		}
		p = &Principal{User: u.Name, Role: u.Role}
	} else {
		// Only an API token, read from the store (not the cache): a login
		// token exchanged for another would renew a session for ever, and
		// a session must not outlive the token it came from, nor its
		// revocation (Token.Parent).
		if len(secret) > 512 {
			return nil, "", time.Time{}, false, ErrUnauthenticated
		}
		if p, t, err = a.lookup(ctx, hash, now); err != nil {
			return nil, "", time.Time{}, false, err
		}
		if t.Kind != store.TokenAPI {
			return nil, "", time.Time{}, false, ErrUnauthenticated
		}
		if !t.ExpiresAt.IsZero() {
			if left := t.ExpiresAt.Sub(now); ttl <= 0 || left < ttl {
				ttl = left
			}
		}
	}
	name, parent := "web (API token)", ""
	if isLink {
		name = "web (sign-in link)"
	} else {
		parent = t.ID // revoked with it
	}
	token, expires, err = a.loginToken(ctx, p.User, name, parent, ttl)
	return p, token, expires, isLink, err
}
