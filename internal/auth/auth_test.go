package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
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
	return New(s, Config{}), dir
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

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("s3cret password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id with the expected parameters", h)
	}
	if h2, _ := HashPassword("s3cret password"); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		hash, pw string
		ok       bool
		err      bool
	}{
		{h, "s3cret password", true, false},
		{h, "s3cret passwor", false, false},
		{h, "", false, false},
		{"$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", "x", false, true},
		{"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdA$aGFzaA", "x", false, true},
		{"garbage", "x", false, true},
		{"", "x", false, true},
	} {
		ok, err := VerifyPassword(tc.hash, tc.pw)
		if ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("VerifyPassword(%.30q, %q) = %v, %v", tc.hash, tc.pw, ok, err)
		}
	}
}

func TestLoginAndUsers(t *testing.T) {
	a, _ := newAuth(t)
	ctx := context.Background()
	if _, err := a.AddUser(ctx, "alice", "long enough", RoleUser); err != nil {
		t.Fatal(err)
	}
	tok, err := a.Login(ctx, "alice", "long enough")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(ctx, tok); err != nil || p.User != "alice" || p.IsAdmin() {
		t.Fatalf("login token: %+v %v", p, err)
	}
	for _, bad := range [][2]string{{"alice", "wrong one"}, {"bob", "long enough"}, {"alice", ""}} {
		if _, err := a.Login(ctx, bad[0], bad[1]); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Login(%q, %q) = %v", bad[0], bad[1], err)
		}
	}
	if err := a.RemoveUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("token of a removed user (cached before): %v", err)
	}
}

// clock is a settable time for Config.Now.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newAuthAt(t *testing.T, cfg Config) (*Authenticator, *clock) {
	t.Helper()
	s, err := sqlite.New(sqlite.Config{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Now = c.Now
	return New(s, cfg), c
}

func TestLoginTokensExpire(t *testing.T) {
	a, clk := newAuthAt(t, Config{LoginTTL: time.Hour})
	ctx := context.Background()
	if _, err := a.AddUser(ctx, "alice", "long enough", RoleUser); err != nil {
		t.Fatal(err)
	}
	tok, err := a.Login(ctx, "alice", "long enough")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.CreateToken(ctx, "alice", "ci", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, tok); err != nil {
		t.Fatalf("fresh login token: %v", err)
	}
	ts, err := a.Tokens(ctx, "alice")
	if err != nil || len(ts) != 2 {
		t.Fatalf("tokens: %v %v", ts, err)
	}
	for _, tk := range ts { // both made at the same instant: in no set order
		switch tk.Name {
		case "login":
			if tk.Kind != store.TokenLogin || !tk.ExpiresAt.Equal(clk.now.Add(time.Hour)) {
				t.Errorf("login token kind %q expires %v, want login, %v", tk.Kind, tk.ExpiresAt, clk.now.Add(time.Hour))
			}
		case "ci":
			if tk.Kind != store.TokenAPI || !tk.ExpiresAt.IsZero() {
				t.Errorf("created token kind %q expires %v, want api, never", tk.Kind, tk.ExpiresAt)
			}
		}
	}
	// Past the TTL the token is refused, although it was cached.
	clk.now = clk.now.Add(time.Hour)
	if _, err := a.Authenticate(ctx, tok); !errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("login token past its TTL: %v, want ErrTokenExpired", err)
	}
}

func TestCreatedTokenExpiry(t *testing.T) {
	a, clk := newAuthAt(t, Config{})
	ctx := context.Background()
	if _, err := a.AddUser(ctx, "alice", "long enough", RoleUser); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.CreateToken(ctx, "alice", "past", clk.now.Add(-time.Second)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token expiring in the past: %v, want ErrInvalid", err)
	}
	tk, secret, err := a.CreateToken(ctx, "alice", "short", clk.now.Add(time.Minute))
	if err != nil || !tk.ExpiresAt.Equal(clk.now.Add(time.Minute)) {
		t.Fatalf("CreateToken with an expiry: %+v %v", tk, err)
	}
	if _, err := a.Authenticate(ctx, secret); err != nil {
		t.Fatalf("before its expiry: %v", err)
	}
	clk.now = clk.now.Add(2 * time.Minute)
	if _, err := a.Authenticate(ctx, secret); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("after its expiry: %v, want ErrTokenExpired", err)
	}
}

func TestPasswordChangeRevokesLoginTokens(t *testing.T) {
	a, _ := newAuthAt(t, Config{})
	ctx := context.Background()
	for _, u := range []string{"alice", "bob"} {
		if _, err := a.AddUser(ctx, u, "long enough", RoleUser); err != nil {
			t.Fatal(err)
		}
	}
	login, err := a.Login(ctx, "alice", "long enough")
	if err != nil {
		t.Fatal(err)
	}
	_, apiTok, err := a.CreateToken(ctx, "alice", "ci", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	bobs, err := a.Login(ctx, "bob", "long enough")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{login, apiTok, bobs} {
		if _, err := a.Authenticate(ctx, tok); err != nil { // cached from here
			t.Fatal(err)
		}
	}
	if err := a.SetPassword(ctx, "alice", "another one"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, login); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("alice's login token after her password change: %v, want refused", err)
	}
	if p, err := a.Authenticate(ctx, apiTok); err != nil || p.User != "alice" {
		t.Fatalf("alice's API token after her password change: %+v %v, want still valid", p, err)
	}
	if _, err := a.Authenticate(ctx, bobs); err != nil {
		t.Fatalf("bob's login token after alice's password change: %v", err)
	}
	if _, err := a.Login(ctx, "alice", "long enough"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("login with the old password: %v", err)
	}
	if err := a.SetPassword(ctx, "nobody", "long enough"); !errors.Is(err, ErrNoUser) {
		t.Fatalf("SetPassword of an unknown user: %v", err)
	}
}

// A web session's token lives as long as its cookie, never longer than
// the login TTL.
func TestLoginForBoundsTheTTL(t *testing.T) {
	a, clk := newAuthAt(t, Config{LoginTTL: 24 * time.Hour})
	ctx := context.Background()
	if _, err := a.AddUser(ctx, "alice", "long enough", RoleUser); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ttl, want time.Duration }{
		{0, 24 * time.Hour},
		{12 * time.Hour, 12 * time.Hour},
		{48 * time.Hour, 24 * time.Hour},
	} {
		_, expires, err := a.LoginFor(ctx, "alice", "long enough", tc.ttl)
		if err != nil || !expires.Equal(clk.now.Add(tc.want)) {
			t.Errorf("LoginFor(ttl %v) expires %v, %v; want %v", tc.ttl, expires, err, clk.now.Add(tc.want))
		}
	}
}
