package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/grappe/grappe/internal/store"
)

func mustPutUser(t *testing.T, s store.Store, u *store.User) {
	t.Helper()
	if err := s.PutUser(t.Context(), u); err != nil {
		t.Fatalf("PutUser(%q): %v", u.Name, err)
	}
}

func mustCreateToken(t *testing.T, s store.Store, tok *store.Token) {
	t.Helper()
	if err := s.CreateToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateToken(%q): %v", tok.ID, err)
	}
}

func newToken(id, user string, created int) *store.Token {
	return &store.Token{
		ID:        id,
		Hash:      fmt.Sprintf("%064x", id), // stands in for a hex SHA-256
		User:      user,
		Name:      "token " + id,
		CreatedAt: at(created),
	}
}

func checkUser(t *testing.T, got, want *store.User) {
	t.Helper()
	if got.Name != want.Name || got.Role != want.Role || got.PasswordHash != want.PasswordHash {
		t.Errorf("user = {%q %q %q}, want {%q %q %q}",
			got.Name, got.Role, got.PasswordHash, want.Name, want.Role, want.PasswordHash)
	}
	checkTime(t, "user "+want.Name+" CreatedAt", got.CreatedAt, want.CreatedAt)
}

func checkToken(t *testing.T, got, want *store.Token) {
	t.Helper()
	wantKind := want.Kind
	if wantKind == "" {
		wantKind = store.TokenAPI
	}
	if got.ID != want.ID || got.Hash != want.Hash || got.User != want.User || got.Name != want.Name || got.Kind != wantKind || got.Parent != want.Parent {
		t.Errorf("token = {%q %q %q %q %q %q}, want {%q %q %q %q %q %q}",
			got.ID, got.Hash, got.User, got.Name, got.Kind, got.Parent, want.ID, want.Hash, want.User, want.Name, wantKind, want.Parent)
	}
	checkTime(t, "token "+want.ID+" CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "token "+want.ID+" ExpiresAt", got.ExpiresAt, want.ExpiresAt)
}

func userNames(us []*store.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Name
	}
	return out
}

func tokenIDs(ts []*store.Token) []string {
	out := make([]string, len(ts))
	for i, tok := range ts {
		out[i] = tok.ID
	}
	return out
}

func listTokens(t *testing.T, s store.Store, user string) []string {
	t.Helper()
	ts, err := s.ListTokens(t.Context(), user)
	if err != nil {
		t.Fatalf("ListTokens(%q): %v", user, err)
	}
	return tokenIDs(ts)
}

func testUsers(t *testing.T, s store.Store) {
	_, err := s.GetUser(t.Context(), "alice")
	wantErr(t, "GetUser missing", err, store.ErrNotFound)
	if us, err := s.ListUsers(t.Context()); err != nil || len(us) != 0 {
		t.Errorf("ListUsers on an empty store = %v, %v; want none", userNames(us), err)
	}

	users := []*store.User{
		{Name: "carol", Role: "user", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", CreatedAt: at(0)},
		{Name: "alice", Role: "admin", PasswordHash: "$argon2id$v=19$x", CreatedAt: at(1)},
		{Name: "bob", Role: "user", CreatedAt: at(2)}, // token-only
	}
	for _, u := range users {
		mustPutUser(t, s, u)
	}
	for _, u := range users {
		got, err := s.GetUser(t.Context(), u.Name)
		if err != nil {
			t.Fatalf("GetUser(%q): %v", u.Name, err)
		}
		checkUser(t, got, u)
	}
	us, err := s.ListUsers(t.Context())
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if want := []string{"alice", "bob", "carol"}; !slices.Equal(userNames(us), want) {
		t.Errorf("ListUsers = %v, want %v (by name)", userNames(us), want)
	}

	// Put on an existing name replaces it.
	alice := &store.User{Name: "alice", Role: "user", PasswordHash: "$argon2id$v=19$new", CreatedAt: at(1)}
	mustPutUser(t, s, alice)
	got, err := s.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetUser after update: %v", err)
	}
	checkUser(t, got, alice)
	if us, _ := s.ListUsers(t.Context()); len(us) != 3 {
		t.Errorf("ListUsers after update has %d users, want 3", len(us))
	}

	if err := s.DeleteUser(t.Context(), "bob"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = s.GetUser(t.Context(), "bob")
	wantErr(t, "GetUser after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteUser twice", s.DeleteUser(t.Context(), "bob"), store.ErrNotFound)
	wantErr(t, "DeleteUser missing", s.DeleteUser(t.Context(), "nobody"), store.ErrNotFound)
	if us, _ := s.ListUsers(t.Context()); !slices.Equal(userNames(us), []string{"alice", "carol"}) {
		t.Errorf("ListUsers after delete = %v, want [alice carol]", userNames(us))
	}
}

func testPutUserKeepsTokens(t *testing.T, s store.Store) {
	mustPutUser(t, s, &store.User{Name: "alice", Role: "user", PasswordHash: "old", CreatedAt: at(0)})
	tok := newToken("t1", "alice", 1)
	mustCreateToken(t, s, tok)
	// A password change must not revoke the user's API tokens.
	mustPutUser(t, s, &store.User{Name: "alice", Role: "admin", PasswordHash: "new", CreatedAt: at(0)})
	got, err := s.TokenByHash(t.Context(), tok.Hash)
	if err != nil {
		t.Fatalf("TokenByHash after PutUser update: %v", err)
	}
	checkToken(t, got, tok)
	if ids := listTokens(t, s, "alice"); !slices.Equal(ids, []string{"t1"}) {
		t.Errorf("ListTokens after PutUser update = %v, want [t1]", ids)
	}
}

func testDeleteUserCascades(t *testing.T, s store.Store) {
	mustPutUser(t, s, &store.User{Name: "alice", Role: "user", CreatedAt: at(0)})
	mustPutUser(t, s, &store.User{Name: "bob", Role: "user", CreatedAt: at(0)})
	a1, a2, b1 := newToken("a1", "alice", 1), newToken("a2", "alice", 2), newToken("b1", "bob", 3)
	for _, tok := range []*store.Token{a1, a2, b1} {
		mustCreateToken(t, s, tok)
	}
	if err := s.DeleteUser(t.Context(), "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	for _, tok := range []*store.Token{a1, a2} {
		_, err := s.TokenByHash(t.Context(), tok.Hash)
		wantErr(t, "TokenByHash of a deleted user's token", err, store.ErrNotFound)
	}
	if ids := listTokens(t, s, "alice"); len(ids) != 0 {
		t.Errorf("ListTokens of a deleted user = %v, want none", ids)
	}
	if got, err := s.TokenByHash(t.Context(), b1.Hash); err != nil {
		t.Errorf("another user's token after DeleteUser: %v", err)
	} else {
		checkToken(t, got, b1)
	}
	// A new user of the same name does not inherit the old tokens.
	mustPutUser(t, s, &store.User{Name: "alice", Role: "user", CreatedAt: at(9)})
	if ids := listTokens(t, s, "alice"); len(ids) != 0 {
		t.Errorf("ListTokens of a re-created user = %v, want none", ids)
	}
}

func testTokens(t *testing.T, s store.Store) {
	mustPutUser(t, s, &store.User{Name: "alice", Role: "user", CreatedAt: at(0)})
	mustPutUser(t, s, &store.User{Name: "bob", Role: "user", CreatedAt: at(0)})
	// Created out of time order: ListTokens sorts oldest first.
	t1, t2, t3 := newToken("t1", "alice", 2), newToken("t2", "alice", 1), newToken("t3", "bob", 0)
	for _, tok := range []*store.Token{t1, t2, t3} {
		mustCreateToken(t, s, tok)
	}
	for _, tok := range []*store.Token{t1, t2, t3} {
		got, err := s.TokenByHash(t.Context(), tok.Hash)
		if err != nil {
			t.Fatalf("TokenByHash(%q): %v", tok.ID, err)
		}
		checkToken(t, got, tok)
	}
	_, err := s.TokenByHash(t.Context(), fmt.Sprintf("%064x", "nope"))
	wantErr(t, "TokenByHash unknown", err, store.ErrNotFound)

	for _, tc := range []struct {
		user string
		want []string
	}{
		{"alice", []string{"t2", "t1"}},
		{"bob", []string{"t3"}},
		{"nobody", nil},
	} {
		if got := listTokens(t, s, tc.user); !slices.Equal(got, tc.want) {
			t.Errorf("ListTokens(%q) = %v, want %v", tc.user, got, tc.want)
		}
	}
	all, err := s.ListTokens(t.Context(), "alice")
	if err != nil {
		t.Fatalf("ListTokens: %v", err)
	}
	for i, want := range []*store.Token{t2, t1} {
		checkToken(t, all[i], want)
	}

	if err := s.DeleteToken(t.Context(), "t1"); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	_, err = s.TokenByHash(t.Context(), t1.Hash)
	wantErr(t, "TokenByHash after delete", err, store.ErrNotFound)
	if got := listTokens(t, s, "alice"); !slices.Equal(got, []string{"t2"}) {
		t.Errorf("ListTokens after delete = %v, want [t2]", got)
	}
	wantErr(t, "DeleteToken twice", s.DeleteToken(t.Context(), "t1"), store.ErrNotFound)
	wantErr(t, "DeleteToken missing", s.DeleteToken(t.Context(), "nope"), store.ErrNotFound)

	// Sessions opened with an API token go with it; another's stay.
	s1, s2 := newToken("s1", "alice", 3), newToken("s2", "alice", 4)
	s1.Kind, s1.Parent = store.TokenLogin, "t2"
	s2.Kind = store.TokenLogin
	mustCreateToken(t, s, s1)
	mustCreateToken(t, s, s2)
	if got, err := s.TokenByHash(t.Context(), s1.Hash); err != nil {
		t.Fatalf("TokenByHash(s1): %v", err)
	} else {
		checkToken(t, got, s1)
	}
	if err := s.DeleteToken(t.Context(), "s2"); err != nil { // a child alone
		t.Fatalf("DeleteToken(s2): %v", err)
	}
	if got := listTokens(t, s, "alice"); !slices.Equal(got, []string{"t2", "s1"}) {
		t.Errorf("ListTokens after deleting a session = %v, want [t2 s1]", got)
	}
	if err := s.DeleteToken(t.Context(), "t2"); err != nil {
		t.Fatalf("DeleteToken(t2): %v", err)
	}
	_, err = s.TokenByHash(t.Context(), s1.Hash)
	wantErr(t, "a session after its token's deletion", err, store.ErrNotFound)
	if got := listTokens(t, s, "bob"); !slices.Equal(got, []string{"t3"}) {
		t.Errorf("bob's tokens after alice's deletion = %v, want [t3]", got)
	}
}

func testTokenConflicts(t *testing.T, s store.Store) {
	mustPutUser(t, s, &store.User{Name: "alice", Role: "user", CreatedAt: at(0)})
	orig := newToken("t1", "alice", 1)
	mustCreateToken(t, s, orig)

	sameID := newToken("t1", "alice", 2)
	sameID.Hash = fmt.Sprintf("%064x", "other")
	wantErr(t, "CreateToken duplicate id", s.CreateToken(t.Context(), sameID), store.ErrConflict)

	sameHash := newToken("t2", "alice", 2)
	sameHash.Hash = orig.Hash
	wantErr(t, "CreateToken duplicate hash", s.CreateToken(t.Context(), sameHash), store.ErrConflict)

	orphan := newToken("t3", "nobody", 2)
	wantErr(t, "CreateToken for an unknown user", s.CreateToken(t.Context(), orphan), store.ErrNotFound)
	_, err := s.TokenByHash(t.Context(), orphan.Hash)
	wantErr(t, "TokenByHash of a refused token", err, store.ErrNotFound)

	if got := listTokens(t, s, "alice"); !slices.Equal(got, []string{"t1"}) {
		t.Errorf("ListTokens after refused creates = %v, want [t1]", got)
	}
	got, err := s.TokenByHash(t.Context(), orig.Hash)
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	checkToken(t, got, orig)
}

func testTokenKindsAndExpiry(t *testing.T, s store.Store) {
	mustPutUser(t, s, &store.User{Name: "alice", Role: "user", CreatedAt: at(0)})
	api := newToken("api", "alice", 1) // Kind empty: an API token
	expiring := newToken("exp", "alice", 2)
	expiring.ExpiresAt = at(3600)
	login := newToken("login", "alice", 3)
	login.Kind, login.ExpiresAt = store.TokenLogin, at(7200)
	for _, tok := range []*store.Token{api, expiring, login} {
		mustCreateToken(t, s, tok)
	}
	for _, tok := range []*store.Token{api, expiring, login} {
		got, err := s.TokenByHash(t.Context(), tok.Hash)
		if err != nil {
			t.Fatalf("TokenByHash(%q): %v", tok.ID, err)
		}
		checkToken(t, got, tok)
	}
	ts, err := s.ListTokens(t.Context(), "alice")
	if err != nil || len(ts) != 3 {
		t.Fatalf("ListTokens = %v, %v; want 3 tokens", tokenIDs(ts), err)
	}
	for i, want := range []*store.Token{api, expiring, login} {
		checkToken(t, ts[i], want)
	}
}

func testSetPasswordHash(t *testing.T, s store.Store) {
	mustPutUser(t, s, &store.User{Name: "alice", Role: "admin", PasswordHash: "old", CreatedAt: at(0)})
	mustPutUser(t, s, &store.User{Name: "bob", Role: "user", PasswordHash: "bob's", CreatedAt: at(0)})
	api := newToken("a-api", "alice", 1)
	login1 := newToken("a-login1", "alice", 2)
	login1.Kind = store.TokenLogin
	login2 := newToken("a-login2", "alice", 3)
	login2.Kind, login2.ExpiresAt = store.TokenLogin, at(3600)
	bobLogin := newToken("b-login", "bob", 4)
	bobLogin.Kind = store.TokenLogin
	for _, tok := range []*store.Token{api, login1, login2, bobLogin} {
		mustCreateToken(t, s, tok)
	}

	n, err := s.SetPasswordHash(t.Context(), "alice", "new")
	if err != nil || n != 2 {
		t.Fatalf("SetPasswordHash = %d, %v; want 2 login tokens revoked", n, err)
	}
	u, err := s.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	checkUser(t, u, &store.User{Name: "alice", Role: "admin", PasswordHash: "new", CreatedAt: at(0)})
	for _, tok := range []*store.Token{login1, login2} {
		_, err := s.TokenByHash(t.Context(), tok.Hash)
		wantErr(t, "a login token after a password change", err, store.ErrNotFound)
	}
	if got := listTokens(t, s, "alice"); !slices.Equal(got, []string{"a-api"}) {
		t.Errorf("alice's tokens after a password change = %v, want [a-api] (API tokens stay)", got)
	}
	if got := listTokens(t, s, "bob"); !slices.Equal(got, []string{"b-login"}) {
		t.Errorf("bob's tokens after alice's password change = %v, want [b-login]", got)
	}

	n, err = s.SetPasswordHash(t.Context(), "nobody", "x")
	wantErr(t, "SetPasswordHash of an unknown user", err, store.ErrNotFound)
	if n != 0 {
		t.Errorf("SetPasswordHash of an unknown user revoked %d tokens", n)
	}
}

func testDeleteExpiredTokens(t *testing.T, s store.Store) {
	mustPutUser(t, s, &store.User{Name: "alice", Role: "user", CreatedAt: at(0)})
	never := newToken("never", "alice", 1)
	past := newToken("past", "alice", 2)
	past.Kind, past.ExpiresAt = store.TokenLogin, at(10)
	edge := newToken("edge", "alice", 3)
	edge.ExpiresAt = at(20)
	future := newToken("future", "alice", 4)
	future.ExpiresAt = at(21)
	for _, tok := range []*store.Token{never, past, edge, future} {
		mustCreateToken(t, s, tok)
	}
	n, err := s.DeleteExpiredTokens(t.Context(), at(20))
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredTokens = %d, %v; want 2 (expired before and at now)", n, err)
	}
	if got := listTokens(t, s, "alice"); !slices.Equal(got, []string{"never", "future"}) {
		t.Errorf("tokens left = %v, want [never future]", got)
	}
	if n, err := s.DeleteExpiredTokens(t.Context(), at(20)); err != nil || n != 0 {
		t.Errorf("DeleteExpiredTokens again = %d, %v; want 0", n, err)
	}
}

func testSecrets(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.GetSecret(ctx, "ca.pem"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSecret of nothing: %v, want ErrNotFound", err)
	}
	// The first value put stays; a later put gets it back.
	first, err := s.PutSecret(ctx, "ca.pem", []byte("first CA"))
	if err != nil || string(first) != "first CA" {
		t.Fatalf("first PutSecret: %q, %v", first, err)
	}
	if got, err := s.PutSecret(ctx, "ca.pem", []byte("second CA")); err != nil || string(got) != "first CA" {
		t.Fatalf("second PutSecret: %q, %v; want the first value", got, err)
	}
	// A rotation replaces it.
	if err := s.SetSecret(ctx, "ca.pem", []byte("rotated")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetSecret(ctx, "ca.pem"); err != nil || string(got) != "rotated" {
		t.Fatalf("after SetSecret: %q, %v", got, err)
	}
	if err := s.SetSecret(ctx, "join-token", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSecret(ctx, "join-token"); string(got) != "new" {
		t.Fatalf("SetSecret of a new name: %q", got)
	}
}
