package storetest

import (
	"errors"
	"testing"

	"github.com/grappe/grappe/internal/store"
)

func testWorkerIdentities(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.GetWorkerIdentity(ctx, "w1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing identity: %v", err)
	}
	if err := s.RevokeWorkerIdentity(ctx, "w1", at(1)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking a missing identity: %v", err)
	}
	w1 := &store.WorkerIdentity{Name: "w1", ID: "lin-1", Serial: "abc", CreatedAt: at(0), ExpiresAt: at(100)}
	if err := s.CreateWorkerIdentity(ctx, w1); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWorkerIdentity(ctx, &store.WorkerIdentity{Name: "w0", ID: "lin-0", Serial: "0", CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetWorkerIdentity(ctx, "w1")
	if err != nil || got.ID != "lin-1" || got.Serial != "abc" || !got.CreatedAt.Equal(at(0)) ||
		!got.ExpiresAt.Equal(at(100)) || !got.RevokedAt.IsZero() {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if err := s.RevokeWorkerIdentity(ctx, "w1", at(5)); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetWorkerIdentity(ctx, "w1"); !got.RevokedAt.Equal(at(5)) || got.Live(at(6)) {
		t.Fatalf("revoked at %v, live %v", got.RevokedAt, got.Live(at(6)))
	}
	// A join after the revocation starts a new lineage.
	if err := s.CreateWorkerIdentity(ctx, &store.WorkerIdentity{Name: "w1", ID: "lin-2", Serial: "def", CreatedAt: at(6), ExpiresAt: at(200)}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetWorkerIdentity(ctx, "w1"); got.ID != "lin-2" || got.Serial != "def" || !got.RevokedAt.IsZero() {
		t.Fatalf("after re-join: %+v", got)
	}
	list, err := s.ListWorkerIdentities(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "w0" || list[1].Name != "w1" {
		t.Fatalf("list: %+v %v", list, err)
	}
}

// testWorkerIdentityTakeover: the join token cannot take over a name
// whose identity is live; only a revocation or an expiry frees it.
func testWorkerIdentityTakeover(t *testing.T, s store.Store) {
	ctx := t.Context()
	live := &store.WorkerIdentity{Name: "w1", ID: "lin-1", Serial: "abc", CreatedAt: at(0), ExpiresAt: at(100)}
	if err := s.CreateWorkerIdentity(ctx, live); err != nil {
		t.Fatal(err)
	}
	intruder := &store.WorkerIdentity{Name: "w1", ID: "lin-x", Serial: "bad", CreatedAt: at(10), ExpiresAt: at(110)}
	wantErr(t, "join over a live identity", s.CreateWorkerIdentity(ctx, intruder), store.ErrConflict)
	if got, _ := s.GetWorkerIdentity(ctx, "w1"); got.ID != "lin-1" || got.Serial != "abc" {
		t.Fatalf("the live identity was replaced: %+v", got)
	}
	// Once its certificate has expired, the name may be joined again.
	intruder.CreatedAt = at(100)
	if err := s.CreateWorkerIdentity(ctx, intruder); err != nil {
		t.Fatalf("join over an expired identity: %v", err)
	}
	if got, _ := s.GetWorkerIdentity(ctx, "w1"); got.ID != "lin-x" {
		t.Fatalf("after join over an expired identity: %+v", got)
	}
}

// testWorkerIdentityRenewal: a renewal keeps the lineage, and only the
// current, unrevoked certificate renews.
func testWorkerIdentityRenewal(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.RenewWorkerIdentity(ctx, "w1", "abc", "def", at(200)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renewing a missing identity: %v", err)
	}
	if err := s.CreateWorkerIdentity(ctx, &store.WorkerIdentity{Name: "w1", ID: "lin-1", Serial: "abc", CreatedAt: at(0), ExpiresAt: at(100)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.RenewWorkerIdentity(ctx, "w1", "abc", "def", at(200))
	if err != nil || got.ID != "lin-1" || got.Serial != "def" || !got.ExpiresAt.Equal(at(200)) {
		t.Fatalf("renewal: %+v %v", got, err)
	}
	if stored, _ := s.GetWorkerIdentity(ctx, "w1"); stored.ID != "lin-1" || stored.Serial != "def" {
		t.Fatalf("stored after renewal: %+v", stored)
	}
	// The superseded certificate cannot renew again.
	if _, err := s.RenewWorkerIdentity(ctx, "w1", "abc", "ghi", at(300)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("renewal with a superseded serial: %v", err)
	}
	// Nor can a revoked one.
	if err := s.RevokeWorkerIdentity(ctx, "w1", at(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RenewWorkerIdentity(ctx, "w1", "def", "ghi", at(300)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("renewal of a revoked identity: %v", err)
	}
}
