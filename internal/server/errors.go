package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"strata.dev/strata/internal/diag"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

func writeStatus(w http.ResponseWriter, code int, reason, msg string, details ...string) {
	writeJSON(w, code, Status{APIVersion: "v1", Kind: "Status", Code: code, Reason: reason, Message: msg, Details: details})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing left to tell it
}

// writeError maps an error from the store or admission to a Status.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var dl diag.List
	switch {
	case errors.As(err, &dl):
		details := make([]string, len(dl))
		for i, e := range dl {
			details[i] = e.Error()
		}
		writeStatus(w, http.StatusUnprocessableEntity, ReasonInvalid, "the object is invalid", details...)
	case errors.Is(err, store.ErrNotFound):
		writeStatus(w, http.StatusNotFound, ReasonNotFound, err.Error())
	case errors.Is(err, store.ErrAlreadyExists):
		writeStatus(w, http.StatusConflict, ReasonAlreadyExists, err.Error())
	case errors.Is(err, store.ErrConflict):
		writeStatus(w, http.StatusConflict, ReasonConflict, err.Error()+" (read the object again and retry)")
	case errors.Is(err, store.ErrTooOld):
		writeStatus(w, http.StatusGone, ReasonGone, err.Error()+" (list again and watch from the list's resourceVersion)")
	case errors.Is(err, runtime.ErrInvalid), errors.Is(err, runtime.ErrUnsupported):
		writeStatus(w, http.StatusUnprocessableEntity, ReasonInvalid, err.Error())
	case errors.Is(err, runtime.ErrNotRunning):
		writeStatus(w, http.StatusConflict, ReasonConflict, err.Error())
	case errors.Is(err, errBadRequest), errors.Is(err, store.ErrInvalid):
		writeStatus(w, http.StatusBadRequest, ReasonBadRequest, err.Error())
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeStatus(w, http.StatusInternalServerError, ReasonInternal, err.Error())
	}
}

var errBadRequest = errors.New("bad request")
