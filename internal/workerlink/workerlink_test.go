package workerlink

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A Hub's refusals reach the worker with their gRPC code and message;
// anything else is an internal error that says nothing of the master's
// insides.
func TestGRPCError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{Refuse(Invalid, "bad name %q", "x y"), codes.InvalidArgument, `bad name "x y"`},
		{Refuse(Unauthenticated, "invalid join token"), codes.Unauthenticated, "invalid join token"},
		{fmt.Errorf("join: %w", Refuse(Forbidden, "superseded")), codes.PermissionDenied, "superseded"},
		{Refuse(Taken, "taken"), codes.AlreadyExists, "taken"},
		{Refuse(Unavailable, "try again"), codes.Unavailable, "try again"},
		{errors.New("sqlite: disk I/O error at /var/lib/grappe"), codes.Internal, "internal error"},
	} {
		st, _ := status.FromError(grpcError(tc.err))
		if st.Code() != tc.code || st.Message() != tc.msg {
			t.Errorf("%v: %s %q, want %s %q", tc.err, st.Code(), st.Message(), tc.code, tc.msg)
		}
	}
}

func TestNewNeedsAHub(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a Hub: no error")
	}
}

func TestLinkSilent(t *testing.T) {
	now := time.Now()
	var l Link
	if d := l.Silent(now); d != 0 {
		t.Fatalf("a link handling a message: silent %v, want 0", d)
	}
	l.waiting.Store(now.Add(-3 * time.Second).UnixNano())
	if d := l.Silent(now); d != 3*time.Second {
		t.Fatalf("a link waiting 3s: silent %v", d)
	}
	if d := l.Silent(now.Add(-time.Hour)); d != 0 {
		t.Fatalf("a clock before the wait: silent %v, want 0", d)
	}
}
