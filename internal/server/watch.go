package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/store"
)

// WatchEvent is one line of a watch stream.
type WatchEvent struct {
	// Type is ADDED, MODIFIED, DELETED or ERROR.
	Type   string `json:"type"`
	Object any    `json:"object"`
}

// watch streams changes of one kind as JSON lines, from the resourceVersion the client gives
// (the one of its list) or from now.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, res objects.Resource) {
	from := s.store.Revision()
	if v := r.URL.Query().Get("resourceVersion"); v != "" {
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
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for ev := range events {
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
		if err := enc.Encode(line); err != nil {
			return // the client went away
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}
