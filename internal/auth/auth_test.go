package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grappe/grappe/internal/store/sqlite"
)

func newAuth(t *testing.T) (*Authenticator, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlite.New(sqlite.Config{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return New(s), dir
}

func TestEnsureAdminCreatesTokenFile(t *testing.T) {
	a, dir := newAuth(t)
	ctx := context.Background()
	file := filepath.Join(dir, "admin-token")
	if err := a.EnsureAdmin(ctx, file); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file %v mode %v, want 0600", err, fi.Mode())
	}
	tok, _ := ReadSecretFile(file)
	if !strings.HasPrefix(tok, tokenPrefix) || len(tok) < 40 {
		t.Fatalf("token %q does not look like a grappe token", tok)
	}
	p, err := a.Authenticate(ctx, tok)
	if err != nil || p.User != AdminUser || !p.IsAdmin() {
		t.Fatalf("Authenticate(admin token) = %+v, %v", p, err)
	}
	// A second start keeps the same token.
	if err := a.EnsureAdmin(ctx, file); err != nil {
		t.Fatal(err)
	}
	if again, _ := ReadSecretFile(file); again != tok {
		t.Fatal("EnsureAdmin replaced an existing token")
	}
}

func TestEnsureAdminReRegistersSurvivingFile(t *testing.T) {
	// The database is wiped but the token file survives: the file's token
	// must work again rather than be silently replaced.
	a, dir := newAuth(t)
	file := filepath.Join(dir, "admin-token")
	if err := WriteSecretFile(file, "grp_survivor-token-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.EnsureAdmin(ctx, file); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(ctx, "grp_survivor-token-0123456789abcdef"); err != nil || p.User != AdminUser {
		t.Fatalf("surviving token: %+v %v", p, err)
	}
}

func TestAuthenticateRefuses(t *testing.T) {
	a, dir := newAuth(t)
	ctx := context.Background()
	if err := a.EnsureAdmin(ctx, filepath.Join(dir, "admin-token")); err != nil {
		t.Fatal(err)
	}
	tok, _ := ReadSecretFile(filepath.Join(dir, "admin-token"))
	for _, bad := range []string{"", "grp_wrong", tok + "x", tok[:len(tok)-1], strings.Repeat("a", 10000)} {
		if _, err := a.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%.20q) = %v, want ErrUnauthenticated", bad, err)
		}
	}
}

func TestHashTokenIsStableAndDistinct(t *testing.T) {
	a, b := HashToken("grp_a"), HashToken("grp_b")
	if a == b || a != HashToken("grp_a") || len(a) != 64 {
		t.Fatalf("hashes %q %q", a, b)
	}
	t1, _ := NewToken()
	t2, _ := NewToken()
	if t1 == t2 {
		t.Fatal("NewToken repeated itself")
	}
}
