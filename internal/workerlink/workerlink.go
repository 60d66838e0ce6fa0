// Package workerlink serves the workers' links to a master: the gRPC
// Cluster service (Connect, one bidirectional stream per worker, and Join,
// which issues its certificate). It owns the mechanics of a stream: the
// peer's address and verified certificate, the hello and its deadline,
// the writing of the stream in order (link.go), results sent in pieces
// (rebuilt with bounds, assemble.go), acknowledgements, and the mapping of
// refusals to gRPC codes. What the messages mean, the workers, their
// attempts and the store, is the master's: the Hub.
package workerlink

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/store"
)

// Peer is who is at the other end of a call: its address, and the client
// certificate the TLS handshake verified against the cluster's CA (nil
// when it presented none, as a worker joining for the first time).
type Peer struct {
	Addr string
	Cert *x509.Certificate
}

// Hub is the master as the links see it. Its methods are called from the
// links' goroutines, concurrently.
type Hub interface {
	// Join issues a certificate (JoinRequest), or refuses with a Refusal.
	Join(ctx context.Context, p Peer, req *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error)
	// Authorize checks that the peer's certificate is the live identity
	// of the worker the hello names, and returns the worker as attempts
	// are given to it.
	Authorize(ctx context.Context, p Peer, h *clusterpb.Hello) (store.WorkerRef, error)
	// Attach makes l the worker's link, settles the attempts the hello
	// announces, and returns those the worker must abandon. Results the
	// hello carries have been given to Result first.
	Attach(ctx context.Context, h *clusterpb.Hello, ref store.WorkerRef, l *Link, addr string) []*clusterpb.AttemptRef
	// Detach is called once when l ends.
	Detach(name string, l *Link)
	Heartbeat(name string, l *Link, hb *clusterpb.Heartbeat)
	Output(ref store.WorkerRef, o *clusterpb.Output)
	// Stage: an interactive attempt entered a stage (compile, run).
	Stage(ref store.WorkerRef, st *clusterpb.Stage)
	Accepted(ref store.WorkerRef, a *clusterpb.Accepted)
	// Result records a result and reports whether the worker may forget
	// it (recorded, stale or refused), false to have it sent again.
	Result(ctx context.Context, ref store.WorkerRef, r *clusterpb.Result) bool
	// ResultComing notes that pieces of a result arrive: the worker is
	// alive while its heartbeats wait behind them.
	ResultComing(name string, l *Link, a *clusterpb.AttemptRef)
	Release(ctx context.Context, ref store.WorkerRef, r *clusterpb.Release)
}

// Config configures a Server.
type Config struct {
	Hub Hub
	// HeartbeatInterval and Lease are what the welcome tells the worker.
	HeartbeatInterval, Lease time.Duration
	// MaxResultBytes bounds one result sent in pieces, MaxResultBufferBytes
	// all of a link's results being rebuilt.
	MaxResultBytes, MaxResultBufferBytes int64
	Logger                               *slog.Logger
}

// Server implements the Cluster gRPC service over a Hub.
type Server struct {
	clusterpb.UnimplementedClusterServer
	cfg Config
	log *slog.Logger
}

var _ clusterpb.ClusterServer = (*Server)(nil)

// New returns a Server; cfg.Hub is required.
func New(cfg Config) (*Server, error) {
	if cfg.Hub == nil {
		return nil, errors.New("workerlink: a Hub is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, log: cfg.Logger}, nil
}

// Ack is the acknowledgement of a recorded result.
func Ack(a *clusterpb.AttemptRef) *clusterpb.MasterMessage {
	return &clusterpb.MasterMessage{Msg: &clusterpb.MasterMessage_ResultAck{ResultAck: &clusterpb.ResultAck{Attempt: a}}}
}

// Refusal is an error a Hub returns to refuse a call; the worker gets its
// message with the gRPC code of its Kind.
type Refusal struct {
	Kind Kind
	Msg  string
}

// Kind is why a call is refused.
type Kind int

const (
	Invalid         Kind = iota // the request is malformed
	Unauthenticated             // no valid credential
	Forbidden                   // a valid credential, for something else
	Taken                       // the name has a live identity
	Unavailable                 // try again later
)

func (r *Refusal) Error() string { return r.Msg }

// Refuse returns a Refusal of kind k.
func Refuse(k Kind, format string, args ...any) error {
	return &Refusal{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// grpcError gives a Hub's error its gRPC status: a Refusal its code,
// anything else Internal.
func grpcError(err error) error {
	var r *Refusal
	if !errors.As(err, &r) {
		return status.Error(codes.Internal, "internal error")
	}
	code := map[Kind]codes.Code{
		Invalid: codes.InvalidArgument, Unauthenticated: codes.Unauthenticated, Forbidden: codes.PermissionDenied,
		Taken: codes.AlreadyExists, Unavailable: codes.Unavailable,
	}[r.Kind]
	return status.Error(code, r.Msg)
}

// peerOf reads the caller's address and verified client certificate.
func peerOf(ctx context.Context) Peer {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Peer{}
	}
	out := Peer{Addr: p.Addr.String()}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
		out.Cert = ti.State.PeerCertificates[0]
	}
	return out
}

// Join implements clusterpb.ClusterServer.
func (s *Server) Join(ctx context.Context, req *clusterpb.JoinRequest) (*clusterpb.JoinResponse, error) {
	resp, err := s.cfg.Hub.Join(ctx, peerOf(ctx), req)
	if err != nil {
		return nil, grpcError(err)
	}
	return resp, nil
}
