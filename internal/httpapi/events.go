package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/grappe/grappe/internal/auth"
)

// sseKeepAlive is how often an idle event stream sends a comment, so
// proxies and clients can tell a quiet job from a dead connection.
const sseKeepAlive = 15 * time.Second

func (s *server) events(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	// Subscribe before reading the job, so no state change falls between.
	events, unsubscribe, err := s.Service.Subscribe(r.Context(), p, id, true)
	if err != nil {
		return err
	}
	defer unsubscribe()
	job, err := s.Service.Job(r.Context(), p, id)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A stream resumed (resume.go): EventSource sends the header itself;
	// the query parameter is for clients that cannot set headers.
	pos := parseEventID(r.Header.Get("Last-Event-ID"))
	if q := r.URL.Query().Get("last_event_id"); q != "" {
		pos = parseEventID(q)
	}
	send := func(typ string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if id := pos.id(); id != "" {
			if _, err := fmt.Fprintf(w, "id: %s\n", id); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send("state", map[string]any{"type": "state", "job": job}); err != nil {
		return nil
	}
	if job.Terminal() {
		_ = send("end", map[string]any{"type": "end", "job": job})
		return nil
	}
	tick := time.NewTicker(sseKeepAlive)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				final, err := s.Service.Job(r.Context(), p, id)
				if err == nil {
					_ = send("end", map[string]any{"type": "end", "job": final})
				}
				return nil
			}
			if ev.Type == "output" {
				var ok bool
				if ev, pos, ok = pos.next(ev); !ok {
					continue
				}
			}
			if send(ev.Type, ev) != nil {
				return nil
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return nil
			}
		case <-r.Context().Done():
			return nil
		}
	}
}
