package httpapi

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grappe/grappe/api"
)

// Resuming an event stream. Every output event carries the attempt that
// wrote it and its offset in that attempt's output, numbered by the worker
// (api.Event), so its position means the same on every master. The SSE
// id of an event is "ATTEMPT:END"; a client that reconnects, to this
// master or another, sends the last one it received as Last-Event-ID and
// gets only what follows: output it already has is skipped (a chunk it
// has in part is cut), the state and the end are sent again (they are
// idempotent). Output written while no stream was connected is not
// replayed beyond what the master keeps, but the end's job has it all.

// streamPos is where a client's stream stands: the attempt and the end of
// the last output it received.
type streamPos struct {
	attempt int32
	end     int64
}

// parseEventID reads a Last-Event-ID; anything unreadable is the start.
func parseEventID(s string) streamPos {
	a, e, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return streamPos{}
	}
	attempt, err1 := strconv.ParseInt(a, 10, 32)
	end, err2 := strconv.ParseInt(e, 10, 64)
	if err1 != nil || err2 != nil || attempt < 0 || end < 0 {
		return streamPos{}
	}
	return streamPos{int32(attempt), end}
}

func (p streamPos) id() string {
	if p == (streamPos{}) {
		return ""
	}
	return fmt.Sprintf("%d:%d", p.attempt, p.end)
}

// next returns the part of output event ev the client does not have yet
// and the position after it; ok is false when it has all of it (or the
// event belongs to an earlier attempt than it saw).
func (p streamPos) next(ev api.Event) (api.Event, streamPos, bool) {
	if ev.Attempt == 0 { // not numbered: pass it on as it is
		return ev, p, true
	}
	raw, ok := rawOutput(ev)
	if !ok {
		return ev, p, true
	}
	end := ev.Offset + int64(len(raw))
	switch {
	case ev.Attempt < p.attempt:
		return ev, p, false
	case ev.Attempt > p.attempt:
		return ev, streamPos{ev.Attempt, end}, true
	case end <= p.end:
		return ev, p, false
	case ev.Offset < p.end:
		cut := int(p.end - ev.Offset)
		if ev.Encoding == "" {
			for cut < len(raw) && !utf8.RuneStart(raw[cut]) {
				cut++ // never half a character: the client has its start
			}
			ev.Data = string(raw[cut:])
		} else {
			ev.Data = base64.StdEncoding.EncodeToString(raw[cut:])
		}
		ev.Offset += int64(cut)
	}
	return ev, streamPos{ev.Attempt, end}, true
}

// rawOutput is the bytes of an output event.
func rawOutput(ev api.Event) ([]byte, bool) {
	switch ev.Encoding {
	case "":
		return []byte(ev.Data), true
	case api.EncodingBase64:
		b, err := base64.StdEncoding.DecodeString(ev.Data)
		return b, err == nil
	}
	return nil, false
}
