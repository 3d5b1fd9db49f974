package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
)

// importImage reads an image tarball (OCI layout or docker archive) from the body.
func (s *Server) importImage(w http.ResponseWriter, r *http.Request) {
	if s.images == nil {
		writeStatus(w, http.StatusNotImplemented, "NotImplemented", "no driver on this host imports images")
		return
	}
	longLived(w) // an image tarball may be large
	refs, err := s.images.ImportImage(r.Context(), r.Body)
	switch {
	case errors.Is(err, runtime.ErrTooLarge):
		// The body was not read to its end: close the connection after the answer.
		w.Header().Set("Connection", "close")
		writeStatus(w, http.StatusRequestEntityTooLarge, ReasonTooLarge,
			err.Error()+" (strata serve --max-image-size and --max-image-unpacked raise the caps)")
		return
	case err != nil:
		writeStatus(w, http.StatusUnprocessableEntity, ReasonInvalid, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"images": refs})
}

// instance finds the instance a request names: ?instance=ID, or the workload's first slot.
func (s *Server) instance(w http.ResponseWriter, r *http.Request) (*v1alpha1.Workload, string, bool) {
	name, ok := s.workloadName(w, r)
	if !ok {
		return nil, "", false
	}
	rec, err := s.store.Get(r.Context(), v1alpha1.KindWorkload, name)
	if err != nil {
		s.writeError(w, r, err)
		return nil, "", false
	}
	wl, err := objects.Workload(rec)
	if err != nil {
		s.writeError(w, r, err)
		return nil, "", false
	}
	id := r.URL.Query().Get("instance")
	if id == "" {
		id = wl.Metadata.Name + "-0"
	}
	if !InstanceOf(wl.Metadata.Name, id) {
		writeStatus(w, http.StatusNotFound, ReasonNotFound, fmt.Sprintf("workload %s has no instance %q: its instances are %s-0, %s-1, ... (strata get workload %s -o wide lists them)",
			wl.Metadata.Name, id, wl.Metadata.Name, wl.Metadata.Name, wl.Metadata.Name))
		return nil, "", false
	}
	return wl, id, true
}

// InstanceOf reports whether id names a replica slot of workload: exactly WORKLOAD-SLOT,
// SLOT a decimal number without leading zeros. A prefix is not enough: web-api-0 is an
// instance of web-api, never of web.
func InstanceOf(workload, id string) bool {
	slot, ok := strings.CutPrefix(id, workload+"-")
	if !ok || slot == "" || !runtime.ValidID(id) {
		return false
	}
	n, err := strconv.Atoi(slot)
	return err == nil && n >= 0 && strconv.Itoa(n) == slot
}

// logs streams an instance's log file; with follow=true it keeps sending what is appended
// until the client goes away.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	_, id, ok := s.instance(w, r)
	if !ok {
		return
	}
	// id is a valid instance ID of this workload (checked above): no path separators.
	f, err := os.Open(filepath.Join(s.data, "logs", id+".log")) //nolint:gosec // see above
	if errors.Is(err, os.ErrNotExist) {
		writeStatus(w, http.StatusNotFound, ReasonNotFound, "instance "+id+" has no log yet")
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer f.Close()
	longLived(w) // a long log, or one followed
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	flusher, _ := w.(http.Flusher)
	follow := r.URL.Query().Get("follow") == "true"
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return
		}
		if !follow {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// exec runs a command in an instance and returns its output and exit code.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	wl, id, ok := s.instance(w, r)
	if !ok {
		return
	}
	var req ExecRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Command) == 0 {
		writeStatus(w, http.StatusBadRequest, ReasonBadRequest, "the body must be {\"command\": [\"program\", \"arg\", ...]}")
		return
	}
	if s.drv == nil || wl.Status == nil {
		writeStatus(w, http.StatusConflict, ReasonConflict, "workload "+wl.Metadata.Name+" has no running instance")
		return
	}
	d, err := s.drv.ForTier(wl.Status.Tier)
	for _, in := range wl.Status.Instances {
		// The driver that runs it: inside a node VM, not the tier's driver on the host.
		if named, ok := s.drv.Named(in.Driver); ok && in.ID == id {
			d, err = named, nil
		}
	}
	if err != nil {
		writeStatus(w, http.StatusConflict, ReasonConflict, err.Error())
		return
	}
	ex, ok := d.(runtime.Execer)
	if !ok {
		writeStatus(w, http.StatusNotImplemented, "NotImplemented", "the "+d.Name()+" driver cannot exec into instances")
		return
	}
	longLived(w) // the command runs as long as it runs
	var stdout, stderr limitedBuffer
	code, err := ex.Exec(r.Context(), id, req.Command, nil, &stdout, &stderr)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		writeStatus(w, http.StatusNotFound, ReasonNotFound, "instance "+id+" does not exist")
		return
	case err != nil:
		writeStatus(w, http.StatusConflict, ReasonConflict, "exec in "+id+": "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ExecResult{Instance: id, Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: code})
}

// limitedBuffer keeps the first 4 MiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4<<20 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
