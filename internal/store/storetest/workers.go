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
	w1 := &store.WorkerIdentity{Name: "w1", Serial: "abc", CreatedAt: at(0), ExpiresAt: at(100)}
	if err := s.PutWorkerIdentity(ctx, w1); err != nil {
		t.Fatal(err)
	}
	if err := s.PutWorkerIdentity(ctx, &store.WorkerIdentity{Name: "w0", Serial: "0", CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetWorkerIdentity(ctx, "w1")
	if err != nil || got.Serial != "abc" || !got.CreatedAt.Equal(at(0)) || !got.ExpiresAt.Equal(at(100)) || !got.RevokedAt.IsZero() {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if err := s.RevokeWorkerIdentity(ctx, "w1", at(5)); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetWorkerIdentity(ctx, "w1"); !got.RevokedAt.Equal(at(5)) {
		t.Fatalf("revoked at %v", got.RevokedAt)
	}
	// A re-join replaces the serial and clears the revocation.
	if err := s.PutWorkerIdentity(ctx, &store.WorkerIdentity{Name: "w1", Serial: "def", CreatedAt: at(6)}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetWorkerIdentity(ctx, "w1"); got.Serial != "def" || !got.RevokedAt.IsZero() {
		t.Fatalf("after re-join: %+v", got)
	}
	list, err := s.ListWorkerIdentities(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "w0" || list[1].Name != "w1" {
		t.Fatalf("list: %+v %v", list, err)
	}
}
