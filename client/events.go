package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/grappe/grappe/api"
)

// ErrNotEventStream is returned by Events when the master answers the
// events request with something other than text/event-stream.
var ErrNotEventStream = errors.New("the master's answer is not an event stream")

// streamIdle is how long an event stream may stay silent before it is taken
// for dead. The master sends a keep-alive comment every 15 s, so a silence
// this long means a connection lost without a reset (a crashed machine, a
// dropped NAT entry).
const streamIdle = 45 * time.Second

// maxEventLine bounds one line of the stream (an output event's data).
const maxEventLine = 16 << 20

// Events follows GET /api/v1/jobs/{id}/events and calls fn with each event,
// in order. It returns nil when the master ends the stream (after the "end"
// event, or when it closes the connection), fn's error if fn returns one,
// and ctx's error when ctx ends. An event whose JSON has no type takes the
// SSE "event:" name.
func (c *Client) Events(ctx context.Context, id string, fn func(api.Event) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	path := "/api/v1/jobs/" + url.PathEscape(id) + "/events"
	var idle atomic.Bool
	watchdog := time.AfterFunc(streamIdle, func() { idle.Store(true); cancel() })
	defer watchdog.Stop()

	resp, err := c.send(ctx, http.MethodGet, path, nil,
		http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}, nil)
	if err != nil {
		if idle.Load() {
			return fmt.Errorf("GET %s: no answer in %v", path, streamIdle)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return ErrNotEventStream
	}
	err = readSSE(resp.Body, func() { watchdog.Reset(streamIdle) }, func(name string, data []byte) error {
		var ev api.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("event %q: %w", name, err)
		}
		if ev.Type == "" {
			ev.Type = name
		}
		if err := fn(ev); err != nil {
			return err
		}
		if ev.Type == "end" {
			return errEndOfStream
		}
		return nil
	})
	switch {
	case errors.Is(err, errEndOfStream):
		return nil
	case err != nil && idle.Load():
		return fmt.Errorf("GET %s: the stream was silent for %v", path, streamIdle)
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	}
	return err
}

var errEndOfStream = errors.New("end of stream")

// readSSE parses a Server-Sent Events stream (the text/event-stream format
// of the HTML standard): "event:" names the event, "data:" lines (joined by
// newlines) carry its data, a blank line dispatches it, lines starting with
// ":" are comments (keep-alives), "id:" and "retry:" are ignored. onLine is
// called for every line, comments included, to tell a live stream from a dead
// one. It returns nil at the end of the stream; an event not terminated by a
// blank line is dropped, as the standard says.
func readSSE(r io.Reader, onLine func(), dispatch func(name string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	sc.Split(scanSSELines)
	var name string
	var data bytes.Buffer
	hasData := false
	for sc.Scan() {
		onLine()
		line := sc.Bytes()
		if len(line) == 0 {
			if hasData {
				if err := dispatch(orDefault(name, "message"), data.Bytes()); err != nil {
					return err
				}
			}
			name, hasData = "", false
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read event stream: %w", err)
	}
	return nil
}

// scanSSELines splits on "\n", "\r\n" or a lone "\r", the three line ends
// the standard allows.
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	for i, b := range data {
		switch b {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // need one more byte to tell \r from \r\n
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
