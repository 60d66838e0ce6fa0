package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/attach"
	"github.com/grappe/grappe/internal/auth"
)

// The attach protocol: GET /api/v1/jobs/{id}/attach upgrades to a
// WebSocket whose every message is one JSON object in a text frame,
// api.AttachIn from the client and api.AttachOut from the server (the
// README documents them); the server closes the connection (1000) after
// the exit. Errors before the upgrade (no token, no such job, not
// interactive, already attached) are ordinary API errors.

// Limits of the attach protocol.
const (
	// attachReadLimit bounds one client message (input is sent in
	// pieces: attach.MaxInputChunk).
	attachReadLimit = 64 << 10
)

func (s *server) attach(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	// A browser sends its cookies with a WebSocket from any page: one
	// authenticated by the cookie must come from the master's own origin.
	// Checked before the attach, which a refused upgrade would end (and
	// with it the job): another site's page must not be able to.
	origin := r.Header.Get("Origin")
	if _, fromCookie := credentials(r); fromCookie && origin == "" {
		return Errorf(http.StatusForbidden, api.CodeForbidden, "a WebSocket authenticated by the session cookie must carry an Origin")
	}
	if origin != "" && !sameOrigin(origin, r.Host) {
		return Errorf(http.StatusForbidden, api.CodeForbidden, "a WebSocket from another site's page (Origin %q) is refused", origin)
	}
	if !attach.IsWebSocket(r) {
		return Errorf(http.StatusBadRequest, api.CodeBadRequest, "this is a WebSocket endpoint: connect with a WebSocket client")
	}
	sess, err := s.Service.Attach(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	defer sess.Close() // the client left, or the exit is sent: ends a job still running
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil // Accept answered (a foreign Origin: 403)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(attachReadLimit)
	job, err := s.Service.Job(r.Context(), p, r.PathValue("id"))
	if err != nil {
		conn.Close(websocket.StatusInternalError, "cannot read the job")
		return nil
	}
	attach.Serve(r.Context(), conn, sess, &api.AttachOut{Type: "attached", Job: job}, grappeAttach{})
	return nil
}

// sameOrigin reports whether origin (a browser's Origin header) is the
// master's own address, host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// grappeAttach is grappe's attach protocol.
type grappeAttach struct{}

var _ attach.Protocol = grappeAttach{}

func (grappeAttach) Event(ev attach.Event) []any {
	switch ev.Kind {
	case attach.KindStage:
		return []any{&api.AttachOut{Type: "stage", Stage: ev.Stage}}
	case attach.KindOutput:
		out := &api.AttachOut{Type: "output", Stream: ev.Stream, Data: string(ev.Data)}
		if !utf8.Valid(ev.Data) {
			out.Data, out.Encoding = base64.StdEncoding.EncodeToString(ev.Data), api.EncodingBase64
		}
		return []any{out}
	}
	out := &api.AttachOut{Type: "exit", Error: ev.Error, Dropped: ev.Dropped}
	if j := ev.Job; j != nil {
		out.Job, out.Status, out.Verdict = j, j.Status, j.Verdict
		if out.Error == "" {
			out.Error = j.Error
		}
		if j.Run != nil {
			code := j.Run.ExitCode
			out.ExitCode, out.Signal = &code, j.Run.Signal
		}
	}
	return []any{out}
}

// End implements attach.Protocol: a normal closure after the exit.
func (grappeAttach) End() (websocket.StatusCode, string) {
	return websocket.StatusNormalClosure, "exit"
}

func (grappeAttach) Input(ctx context.Context, sess *attach.Session, typ websocket.MessageType, data []byte) (any, websocket.StatusCode, string) {
	refuse := func(msg string) (any, websocket.StatusCode, string) {
		return &api.AttachOut{Type: "error", Message: msg}, 0, ""
	}
	if typ != websocket.MessageText {
		return refuse("messages are JSON objects in text frames")
	}
	var in api.AttachIn
	if err := json.Unmarshal(data, &in); err != nil {
		return refuse("malformed JSON: " + err.Error())
	}
	var err error
	switch in.Type {
	case "stdin":
		b := []byte(in.Data)
		switch in.Encoding {
		case "", api.EncodingUTF8:
		case api.EncodingBase64:
			if b, err = base64.StdEncoding.DecodeString(in.Data); err != nil {
				return refuse("stdin: invalid base64")
			}
		default:
			return refuse(`stdin: encoding must be "utf8" or "base64"`)
		}
		err = sess.Write(ctx, b)
	case "eof":
		err = sess.CloseStdin(ctx)
	case "signal":
		if !attach.ValidSignal(in.Signal) {
			return refuse("signal: " + attach.SignalHelp)
		}
		err = sess.Signal(ctx, in.Signal)
	default:
		return refuse(`type must be "stdin", "eof" or "signal"`)
	}
	// An error means the run is over (attach.ErrNotRunning, ErrClosed) or
	// the client left: what it sent has nowhere to go, and the exit
	// follows.
	_ = err
	return nil, 0, ""
}
