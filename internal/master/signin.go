package master

import (
	"time"

	"github.com/grappe/grappe/internal/auth"
)

// SignInLinkTTL is how long the sign-in link `grappe up` prints stays
// good (once).
const SignInLinkTTL = 15 * time.Minute

// SignInLink returns a one-time link to the web UI that signs the
// built-in admin in: the secret is in the fragment (#/signin/…), which
// the browser keeps to itself, so it reaches no log and no Referer.
func (m *Master) SignInLink() (string, error) {
	secret, err := m.auth.SignInLink(auth.AdminUser, SignInLinkTTL)
	if err != nil {
		return "", err
	}
	return m.URL() + "/#/signin/" + secret, nil
}
