package attach

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// WriteTimeout: a client that reads nothing for that long is taken for
// gone, and its job ends.
const WriteTimeout = 30 * time.Second

// Protocol is the wire side of a session: grappe's or Piston's.
type Protocol interface {
	// Event turns a session event into the messages to send.
	Event(ev Event) []any
	// Input applies one client message to the session. A non-nil reply
	// is sent back; a non-zero code closes the connection with reason.
	Input(ctx context.Context, s *Session, typ websocket.MessageType, data []byte) (reply any, code websocket.StatusCode, reason string)
	// End is the close code and reason after the exit.
	End() (websocket.StatusCode, string)
}

// IsWebSocket reports whether r asks for a WebSocket upgrade.
func IsWebSocket(r *http.Request) bool {
	return headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

func headerHas(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Serve relays between conn and s, in proto's messages, first sending
// first (if not nil), until the job's exit is sent or the client leaves.
// One goroutine reads the client (it ends with Serve, which waits for
// it); Serve's own writes the session's events, JSON in text frames.
func Serve(ctx context.Context, conn *websocket.Conn, s *Session, first any, proto Protocol) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, WriteTimeout)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	if first != nil && send(first) != nil {
		return
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer cancel() // the client left: so does the writer
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			reply, code, reason := proto.Input(ctx, s, typ, data)
			if reply != nil && send(reply) != nil {
				return
			}
			if code != 0 {
				conn.Close(code, reason)
				return
			}
		}
	}()
	defer func() {
		cancel() // a reader waiting to send input gives up
		<-read
	}()
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				conn.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		for _, msg := range proto.Event(ev) {
			if send(msg) != nil {
				return
			}
		}
		if ev.Kind == KindExit {
			conn.Close(proto.End())
			return
		}
	}
}
