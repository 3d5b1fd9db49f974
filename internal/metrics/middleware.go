package metrics

import (
	"net/http"
	"strconv"
	"time"
)

// unmatched is the route label of requests that matched no route.
const unmatched = "unmatched"

// Middleware counts and times the requests next answers. next must be an
// http.ServeMux (or wrap one without copying the request): the route label is
// r.Pattern, which the mux sets while it routes.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = unmatched
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(began).Seconds())
	})
}

// statusRecorder remembers the status code a handler sent. It passes Flush on, so
// that watches and followed logs still stream, and Unwrap for http.ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
