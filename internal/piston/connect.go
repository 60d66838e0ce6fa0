package piston

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/attach"
	"github.com/grappe/grappe/internal/auth"
)

// Piston's interactive WebSocket, /api/v2/connect, as its source has it
// (api/src/api/v2.js): the client sends init (execute's body) within a
// second, then data on stdin and signals; the server answers runtime,
// then stage, data (stdout, stderr) and one exit per stage, and closes
// with 4999. Mistakes close the connection with Piston's codes. The job
// is a grappe interactive job (grappe's own attach, in Piston's words):
// init's stdin is ignored, as Piston ignores it here.

// Piston's close codes.
const (
	closeAlreadyInit   websocket.StatusCode = 4000
	closeInitTimeout   websocket.StatusCode = 4001
	closeNotifiedError websocket.StatusCode = 4002
	closeNotInit       websocket.StatusCode = 4003
	closeStdinOnly     websocket.StatusCode = 4004
	closeBadSignal     websocket.StatusCode = 4005
	closeJobCompleted  websocket.StatusCode = 4999
	// closeGone: the connection is closed already (readInit).
	closeGone websocket.StatusCode = -1
)

// connectInitTimeout is how long a client has to send init, as Piston.
const connectInitTimeout = time.Second

// connectReadLimit bounds a client message after init (a larger one
// closes the connection, 1009).
const connectReadLimit = 1 << 20

// connectMessage is any client message of /connect: init carries
// execute's fields, data a stream and its data, signal a signal.
type connectMessage struct {
	Type   string `json:"type"`
	Stream string `json:"stream"`
	Data   string `json:"data"`
	Signal string `json:"signal"`
	executeRequest
}

func (h *handler) connect(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !attach.IsWebSocket(r) {
		return badRequest("this is a WebSocket endpoint: connect with a WebSocket client")
	}
	// No cookie is read here (Backend.Authenticate takes a token): a page
	// of another origin gains nothing it could not do with fetch, so
	// Piston's browser clients may connect from anywhere, as to Piston.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil // Accept answered
	}
	defer conn.CloseNow()
	conn.SetReadLimit(h.MaxBodyBytes)
	ctx := r.Context()

	notify := func(msg string) {
		writeWS(ctx, conn, map[string]string{"type": "error", "message": msg})
		conn.Close(closeNotifiedError, "Notified Error")
	}
	in, code, reason := readInit(ctx, conn)
	switch code {
	case 0:
	case closeGone:
		return nil
	case closeNotifiedError:
		notify(reason)
		return nil
	default:
		conn.Close(code, reason)
		return nil
	}
	req, rt, err := in.jobRequest(h.Backend.Languages(ctx), h.Aliases)
	if err != nil {
		notify(err.Error())
		return nil
	}
	req.Stdin, req.Interactive = "", true
	job, err := h.Backend.Submit(ctx, p, req)
	if err != nil {
		notify(err.Error())
		return nil
	}
	sess, err := h.Backend.Attach(ctx, p, job.ID)
	if err != nil {
		notify(err.Error())
		return nil
	}
	defer sess.Close()
	// init carried the files; what follows is input, sent in pieces.
	conn.SetReadLimit(connectReadLimit)
	first := map[string]string{"type": "runtime", "language": pistonName(rt.Language), "version": rt.Version}
	attach.Serve(ctx, conn, sess, first, pistonConnect{rt: rt})
	return nil
}

// readInit waits for the client's init; a non-zero code closes the
// connection instead (Piston's code, and the reason or the error to
// notify).
func readInit(ctx context.Context, conn *websocket.Conn) (*connectMessage, websocket.StatusCode, string) {
	// Not a deadline on the Read: a Read whose context ends drops the
	// connection without the close code. The timer closes it properly,
	// and the Read returns.
	timer := time.AfterFunc(connectInitTimeout, func() { conn.Close(closeInitTimeout, "Initialization Timeout") })
	_, data, err := conn.Read(ctx)
	timer.Stop()
	if err != nil {
		return nil, closeGone, ""
	}
	var m connectMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, closeNotifiedError, "malformed JSON: " + err.Error()
	}
	switch m.Type {
	case "init":
		return &m, 0, ""
	case "data", "signal":
		return nil, closeNotInit, "Not yet initialized"
	}
	return nil, closeNotifiedError, `the first message must be {"type": "init", …}`
}

// pistonConnect is Piston's protocol over an attach session.
type pistonConnect struct{ rt selected }

var _ attach.Protocol = pistonConnect{}

func (pistonConnect) Input(ctx context.Context, s *attach.Session, typ websocket.MessageType, data []byte) (any, websocket.StatusCode, string) {
	var m connectMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return map[string]string{"type": "error", "message": "malformed JSON: " + err.Error()}, closeNotifiedError, "Notified Error"
	}
	var err error
	switch m.Type {
	case "init":
		return nil, closeAlreadyInit, "Already Initialized"
	case "data":
		if m.Stream != "stdin" {
			return nil, closeStdinOnly, "Can only write to stdin"
		}
		err = s.Write(ctx, []byte(m.Data))
	case "signal":
		if !strings.HasPrefix(m.Signal, "SIG") || !attach.ValidSignal(m.Signal) {
			return nil, closeBadSignal, "Invalid signal"
		}
		err = s.Signal(ctx, m.Signal)
	default:
		// Piston ignores a message of another type.
	}
	// An error means the run is over or the client left: the exit
	// follows, or nobody is there to read it.
	_ = err
	return nil, 0, ""
}

func (p pistonConnect) Event(ev attach.Event) []any {
	switch ev.Kind {
	case attach.KindStage:
		return []any{map[string]string{"type": "stage", "stage": ev.Stage}}
	case attach.KindOutput:
		return []any{map[string]string{"type": "data", "stream": ev.Stream, "data": strings.ToValidUTF8(string(ev.Data), "\ufffd")}}
	}
	if ev.Job == nil {
		return []any{map[string]string{"type": "error", "message": ev.Error}}
	}
	return exitMessages(ev.Job)
}

// End implements attach.Protocol: Piston closes a finished job with 4999.
func (pistonConnect) End() (websocket.StatusCode, string) {
	return closeJobCompleted, "Job Completed"
}

// exitMessage is Piston's exit of one stage.
type exitMessage struct {
	Type   string  `json:"type"`
	Stage  string  `json:"stage"`
	Error  *string `json:"error,omitempty"`
	Code   *int    `json:"code"`
	Signal *string `json:"signal"`
}

// exitMessages are the exits of a finished job: the compile's (with its
// output, which is not streamed, when it failed), then the run's; a job
// that did not run at all is an error.
func exitMessages(j *api.Job) []any {
	var out []any
	if c := j.Compile; c != nil {
		if j.Run == nil {
			for _, s := range []struct{ stream, data, enc string }{{"stdout", c.Stdout, c.StdoutEncoding}, {"stderr", c.Stderr, c.StderrEncoding}} {
				if s.data != "" {
					out = append(out, map[string]string{"type": "data", "stream": s.stream, "data": decoded(s.data, s.enc)})
				}
			}
		}
		out = append(out, &exitMessage{Type: "exit", Stage: "compile", Code: ptr(c.ExitCode)})
	}
	if j.Status != api.StatusDone {
		msg := j.Error
		if msg == "" {
			msg = "job " + j.Status
		}
		return append(out, map[string]string{"type": "error", "message": msg})
	}
	if r := j.Run; r != nil {
		st := runStage(r, j.Verdict)
		ex := &exitMessage{Type: "exit", Stage: "run", Code: st.Code, Signal: st.Signal}
		if st.Message != nil && st.Status != nil && *st.Status != statusRuntimeError {
			ex.Error = st.Message
		}
		out = append(out, ex)
	}
	return out
}

// writeWS sends one JSON message, best effort.
func writeWS(ctx context.Context, conn *websocket.Conn, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, attach.WriteTimeout)
	defer cancel()
	_ = conn.Write(ctx, websocket.MessageText, b)
}
