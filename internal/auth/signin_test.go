package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestSignInLinkWorksOnceAndExpires(t *testing.T) {
	a, dir := newAuth(t)
	ctx := context.Background()
	if err := a.EnsureAdmin(ctx, filepath.Join(dir, "admin-token")); err != nil {
		t.Fatal(err)
	}
	link, err := a.SignInLink(AdminUser, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The link itself is no API token.
	if _, err := a.Authenticate(ctx, link); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("Authenticate(link) = %v, want ErrUnauthenticated", err)
	}
	p, token, expires, used, err := a.SessionFrom(ctx, link, time.Hour)
	if err != nil || !used || p.User != AdminUser || !p.IsAdmin() || time.Until(expires) > time.Hour+time.Minute {
		t.Fatalf("SessionFrom(link) = %+v, %v, %v, %v", p, expires, used, err)
	}
	if got, err := a.Authenticate(ctx, token); err != nil || got.User != AdminUser {
		t.Fatalf("the session's token: %+v, %v", got, err)
	}
	if _, _, _, used, err := a.SessionFrom(ctx, link, time.Hour); !used || !errors.Is(err, ErrLinkUsed) {
		t.Fatalf("second use of the link: %v, want ErrLinkUsed", err)
	}

	// An expired link is refused, and used up too.
	now := time.Now()
	a.now = func() time.Time { return now }
	old, _ := a.SignInLink(AdminUser, time.Minute)
	a.now = func() time.Time { return now.Add(2 * time.Minute) }
	if _, _, _, used, err := a.SessionFrom(ctx, old, time.Hour); !used || !errors.Is(err, ErrLinkUsed) {
		t.Fatalf("expired link: used %v, %v", used, err)
	}
}

func TestSessionFromAPIToken(t *testing.T) {
	a, _ := newAuth(t)
	ctx := context.Background()
	if _, err := a.AddUser(ctx, "ada", "a long enough password", RoleUser); err != nil {
		t.Fatal(err)
	}
	_, secret, err := a.CreateToken(ctx, "ada", "ci", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	p, token, _, used, err := a.SessionFrom(ctx, secret, time.Hour)
	if err != nil || used || p.User != "ada" || token == secret {
		t.Fatalf("SessionFrom(API token) = %+v, used %v, %v", p, used, err)
	}
	if _, _, _, _, err := a.SessionFrom(ctx, "grp_nothing", time.Hour); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unknown token: %v", err)
	}
	// A session's own token renews nothing: sessions for sessions would
	// keep one alive for ever.
	if _, _, _, _, err := a.SessionFrom(ctx, token, time.Hour); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("SessionFrom(a login token) = %v, want ErrUnauthenticated", err)
	}
	// A session ends no later than the token it came from.
	soon := time.Now().Add(10 * time.Minute)
	_, short, err := a.CreateToken(ctx, "ada", "short", soon)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, expires, _, err := a.SessionFrom(ctx, short, time.Hour); err != nil || expires.After(soon.Add(time.Second)) {
		t.Fatalf("SessionFrom(a token ending in 10m) ends %v (%v), want by %v", expires, err, soon)
	}
	if err := a.CheckPassword(ctx, "ada", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckPassword(ctx, "ada", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("CheckPassword(wrong) = %v", err)
	}
}
