package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/grappe/grappe/api"
)

// attachChunk is the most input one stdin message carries (the master
// refuses a message over 64 KiB, base64 included).
const attachChunk = 16 << 10

// Attachment is a client attached to an interactive job (Client.Attach):
// the program's input goes out with Write, CloseStdin and Signal, its
// stages, output and exit come in with Next. One goroutine may call Next
// while another writes.
type Attachment struct {
	conn *websocket.Conn
}

// Attach connects to interactive job id, which must be waiting for its
// client (submitted with Interactive and not attached yet): it starts
// once attached. The first message Next returns is "attached".
func (c *Client) Attach(ctx context.Context, id string) (*Attachment, error) {
	u := *c.base()
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	u = *u.JoinPath("api", "v1", "jobs", url.PathEscape(id), "attach")
	h := http.Header{"User-Agent": {c.ua}}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return nil, decodeError(resp)
		}
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	conn.SetReadLimit(64 << 20) // an exit carries the whole job
	return &Attachment{conn: conn}, nil
}

// Next returns the next message from the master. After the "exit" it
// returns the connection's close, a websocket.CloseError with
// StatusNormalClosure.
func (a *Attachment) Next(ctx context.Context) (*api.AttachOut, error) {
	_, b, err := a.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m api.AttachOut
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("attach: malformed message: %w", err)
	}
	return &m, nil
}

// Write sends data to the program's stdin, in pieces; bytes that are not
// UTF-8 go base64-encoded. The master throttles input: a fast writer
// waits.
func (a *Attachment) Write(ctx context.Context, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), attachChunk)
		m := api.AttachIn{Type: "stdin", Data: string(data[:n])}
		if !utf8.Valid(data[:n]) {
			m.Data, m.Encoding = base64.StdEncoding.EncodeToString(data[:n]), api.EncodingBase64
		}
		if err := a.send(ctx, &m); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// CloseStdin ends the program's input: it reads EOF.
func (a *Attachment) CloseStdin(ctx context.Context) error {
	return a.send(ctx, &api.AttachIn{Type: "eof"})
}

// Signal sends a signal ("SIGINT", "SIGTERM", …) to the program.
func (a *Attachment) Signal(ctx context.Context, name string) error {
	return a.send(ctx, &api.AttachIn{Type: "signal", Signal: name})
}

// Close leaves: a job still running is cancelled.
func (a *Attachment) Close() error {
	return a.conn.Close(websocket.StatusNormalClosure, "")
}

func (a *Attachment) send(ctx context.Context, m *api.AttachIn) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return a.conn.Write(ctx, websocket.MessageText, b)
}
