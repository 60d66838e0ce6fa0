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
// in order. It returns nil after the "end" event or when the master closes
// the stream (a master shutting down does; Wait then checks the job), fn's
// error if fn returns one, and ctx's error when ctx ends. An event whose
// JSON has no type takes the SSE "event:" name.
//
// A stream that breaks before the end (the master dies, the connection
// drops or falls silent) is resumed, on the next address when the client
// has several, with the id of the last event received (Last-Event-ID): the
// master sends the job's state again and the output that followed, never
// output already received. It gives up after streamTries failures in a
// row without an event, or maxResumes in all, returning the last error.
func (c *Client) Events(ctx context.Context, id string, fn func(api.Event) error) error {
	var last string // the id of the last event received
	failures := 0
	for resumes := 0; ; resumes++ {
		progressed, err := c.eventsOnce(ctx, id, &last, fn)
		var stop *stopError
		switch {
		case errors.Is(err, errEndOfStream), errors.Is(err, errStreamClosed):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &stop):
			return stop.err
		case !errors.Is(err, errStreamBroke) && !retryable(err):
			return err // refused: 404, 401…
		}
		if progressed {
			failures = 0
		}
		if failures++; failures >= streamTries || resumes >= maxResumes {
			return err
		}
		if serr := sleep(ctx, backoff(failures)); serr != nil {
			return serr
		}
	}
}

// streamTries bounds the resumptions of an event stream that keeps
// failing without delivering an event (about half a minute of backoff),
// and maxResumes all of them.
const (
	streamTries = 10
	maxResumes  = 100
)

var (
	// errStreamBroke: the stream failed (read error, silence) before its end.
	errStreamBroke = errors.New("the event stream broke")
	// errStreamClosed: the master closed the stream before its end.
	errStreamClosed = fmt.Errorf("%w: closed before the end", errStreamBroke)
)

// stopError carries what ends a stream for good that is not the
// transport's doing: fn's error, an event that is not JSON.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }

// eventsOnce follows the stream once, from *last, keeping *last up to
// date; progressed says whether any event arrived.
func (c *Client) eventsOnce(ctx context.Context, id string, last *string, fn func(api.Event) error) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	path := "/api/v1/jobs/" + url.PathEscape(id) + "/events"
	var idle atomic.Bool
	watchdog := time.AfterFunc(streamIdle, func() { idle.Store(true); cancel() })
	defer watchdog.Stop()

	hdr := http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	if *last != "" {
		hdr.Set("Last-Event-ID", *last)
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil, hdr, nil)
	if err != nil {
		if idle.Load() {
			return false, fmt.Errorf("GET %s: no answer in %v: %w", path, streamIdle, errStreamBroke)
		}
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, decodeError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, ErrNotEventStream
	}
	err = readSSE(resp.Body, func() { watchdog.Reset(streamIdle) }, func(name, evID string, data []byte) error {
		var ev api.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return &stopError{fmt.Errorf("event %q: %w", name, err)}
		}
		if ev.Type == "" {
			ev.Type = name
		}
		progressed = true
		if evID != "" {
			*last = evID
		}
		if err := fn(ev); err != nil {
			return &stopError{err}
		}
		if ev.Type == "end" {
			return errEndOfStream
		}
		return nil
	})
	switch {
	case errors.Is(err, errEndOfStream):
		return progressed, err
	case err == nil:
		return progressed, errStreamClosed
	case idle.Load():
		return progressed, fmt.Errorf("GET %s: the stream was silent for %v: %w", path, streamIdle, errStreamBroke)
	case ctx.Err() != nil:
		return progressed, ctx.Err()
	case errors.Is(err, errReadStream):
		return progressed, fmt.Errorf("%w: %w", errStreamBroke, err)
	}
	return progressed, err // a stopError
}

var (
	errEndOfStream = errors.New("end of stream")
	errReadStream  = errors.New("read event stream")
)

// readSSE parses a Server-Sent Events stream (the text/event-stream format
// of the HTML standard): "event:" names the event, "data:" lines (joined by
// newlines) carry its data, a blank line dispatches it, lines starting with
// ":" are comments (keep-alives), "id:" sets the id dispatched with this
// event and the next ones (the last event id), "retry:" is ignored. onLine is
// called for every line, comments included, to tell a live stream from a dead
// one. It returns nil at the end of the stream; an event not terminated by a
// blank line is dropped, as the standard says.
func readSSE(r io.Reader, onLine func(), dispatch func(name, id string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	sc.Split(scanSSELines)
	var name, id string
	var data bytes.Buffer
	hasData := false
	for sc.Scan() {
		onLine()
		line := sc.Bytes()
		if len(line) == 0 {
			if hasData {
				if err := dispatch(orDefault(name, "message"), id, data.Bytes()); err != nil {
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
		case "id":
			if !bytes.ContainsRune(value, 0) { // as the standard says
				id = string(value)
			}
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %w", errReadStream, err)
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
