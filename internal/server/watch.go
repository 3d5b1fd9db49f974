package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/store"
)

// WatchEvent is one line of a watch stream.
type WatchEvent struct {
	// Type is ADDED, MODIFIED, DELETED or ERROR.
	Type   string `json:"type"`
	Object any    `json:"object"`
}

// watch streams changes of one kind from the resourceVersion the client gives (the one of
// its list) or from now: as JSON lines, or as Server-Sent Events when the request
// accepts text/event-stream.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, res objects.Resource) {
	from := s.store.Revision()
	v := r.URL.Query().Get("resourceVersion")
	if v == "" {
		v = r.Header.Get("Last-Event-ID") // an event stream resuming after its last event
	}
	if v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, ReasonBadRequest, "resourceVersion must be a number")
			return
		}
		from = n
	}
	events, err := s.store.Watch(r.Context(), res.Kind, from)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sse := wantsEventStream(r)
	flusher, _ := w.(http.Flusher)
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	keepalive := time.NewTicker(keepaliveInterval)
	defer keepalive.Stop()
	enc := json.NewEncoder(w)
	for {
		var ev store.Event
		select {
		case e, ok := <-events:
			if !ok {
				return
			}
			ev = e
		case <-keepalive.C:
			if !sse {
				continue
			}
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			continue
		}
		line := WatchEvent{}
		switch ev.Type {
		case store.Added:
			line.Type = "ADDED"
		case store.Modified:
			line.Type = "MODIFIED"
		case store.Deleted:
			line.Type = "DELETED"
		default:
			msg := "watch ended"
			if ev.Err != nil {
				msg = ev.Err.Error()
			}
			line = WatchEvent{Type: "ERROR", Object: Status{APIVersion: "v1", Kind: "Status", Code: http.StatusGone, Reason: ReasonGone, Message: msg}}
		}
		if line.Object == nil {
			obj, err := objects.Decode(ev.Object)
			if err != nil {
				s.log.Error("watch decode", "key", ev.Object.Key(), "err", err)
				continue
			}
			line.Object = obj
		}
		var err error
		if sse {
			err = writeSSE(w, line, ev.Object.ResourceVersion)
		} else {
			err = enc.Encode(line)
		}
		if err != nil {
			return // the client went away
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// keepaliveInterval is how often an idle event stream gets a comment line, so that
// proxies and browsers keep it open.
const keepaliveInterval = 15 * time.Second

// wantsEventStream reports whether the client asked for Server-Sent Events.
func wantsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(mt, "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// writeSSE writes one Server-Sent Event: the change type as the event name, the
// object's resourceVersion as its id (a client resumes from it with
// ?resourceVersion=ID), and the object as JSON on one data line.
func writeSSE(w io.Writer, line WatchEvent, rv uint64) error {
	data, err := json.Marshal(line.Object)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("event: " + line.Type + "\n")
	if rv != 0 {
		b.WriteString("id: " + strconv.FormatUint(rv, 10) + "\n")
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	_, err = io.WriteString(w, b.String())
	return err
}
