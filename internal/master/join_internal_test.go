package master

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/pki"
	"github.com/grappe/grappe/internal/workerlink"
)

// A join whose worker stopped waiting (its deadline passed while the
// master was busy) must not keep the name: the worker, which never got
// the certificate, joins again with the join token and gets one, instead
// of "the name is taken by a live identity" for good.
func TestAbandonedJoinFreesTheName(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	join := func(ctx context.Context) (*clusterpb.JoinResponse, error) {
		_, csr, err := pki.NewWorkerKey("w1")
		if err != nil {
			t.Fatal(err)
		}
		return m.join(ctx, workerlink.Peer{Addr: "127.0.0.1:1"}, &clusterpb.JoinRequest{
			JoinToken: m.currentJoinToken(), Name: "w1", CsrDer: csr})
	}
	gone, cancel := context.WithCancel(t.Context())
	cancel() // the worker's deadline passed
	_, err = join(gone)
	var r *workerlink.Refusal
	if !errors.As(err, &r) || r.Kind != workerlink.Unavailable {
		t.Fatalf("a join whose caller left: %v, want an Unavailable refusal", err)
	}
	resp, err := join(t.Context())
	if err != nil || len(resp.GetCertificateDer()) == 0 {
		t.Fatalf("joining again: %v, want a certificate (the name was left taken)", err)
	}
	id, err := m.store.GetWorkerIdentity(t.Context(), "w1")
	if err != nil || !id.Live(time.Now()) {
		t.Fatalf("identity after the second join: %+v %v, want live", id, err)
	}
}
