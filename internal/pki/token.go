package pki

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrBadJoinToken is returned (wrapped) by ParseJoinToken for a string that
// is not a join token.
var ErrBadJoinToken = errors.New("pki: malformed join token")

// tokenPrefix versions the format so that it can change without ambiguity.
const tokenPrefix = "grappe-join-v1"

// JoinToken is a parsed join token: the fingerprint (hex SHA-256) of the CA
// a worker must pin, and the secret it proves itself with.
type JoinToken struct {
	Fingerprint string
	Secret      string
}

// NewJoinToken returns a new join token for ca:
// grappe-join-v1.<base64url CA fingerprint>.<base64url 32 random bytes>.
// The fingerprint lets a worker authenticate the master before it has the CA;
// the random part is what the master checks.
func NewJoinToken(ca *CA) (string, error) {
	fp, err := hex.DecodeString(ca.Fingerprint())
	if err != nil {
		return "", fmt.Errorf("pki: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("pki: join token secret: %w", err)
	}
	enc := base64.RawURLEncoding
	return tokenPrefix + "." + enc.EncodeToString(fp) + "." + enc.EncodeToString(secret), nil
}

// ParseJoinToken parses a join token. Surrounding white space (a token read
// from a file) is ignored.
func ParseJoinToken(s string) (JoinToken, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 || parts[0] != tokenPrefix {
		return JoinToken{}, fmt.Errorf("%w: want %s.<fingerprint>.<secret>", ErrBadJoinToken, tokenPrefix)
	}
	fp, err := decodeB64(parts[1])
	if err != nil || len(fp) != 32 {
		return JoinToken{}, fmt.Errorf("%w: bad CA fingerprint", ErrBadJoinToken)
	}
	secret, err := decodeB64(parts[2])
	if err != nil || len(secret) != 32 {
		return JoinToken{}, fmt.Errorf("%w: bad secret", ErrBadJoinToken)
	}
	return JoinToken{Fingerprint: hex.EncodeToString(fp), Secret: parts[2]}, nil
}

// decodeB64 accepts unpadded base64url (what NewJoinToken writes) and,
// leniently, padded base64url.
func decodeB64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.URLEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// TokenEqual compares two tokens in constant time (in their contents; the
// length is not secret), so that the master's check leaks nothing through
// timing.
func TokenEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(a)), []byte(strings.TrimSpace(b))) == 1
}
