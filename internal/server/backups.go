package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/store"
)

// Backupper keeps backup repositories and takes, lists, checks, prunes and restores
// backups, and runs restore drills (the daemon's internal/backup Manager).
type Backupper interface {
	Repos(ctx context.Context) ([]v1alpha1.BackupRepository, error)
	InitRepo(ctx context.Context, req v1alpha1.BackupRepositoryRequest) (*v1alpha1.BackupRepository, error)
	ConnectRepo(ctx context.Context, req v1alpha1.BackupRepositoryRequest) (*v1alpha1.BackupRepository, error)
	Locks(ctx context.Context, repo string) ([]v1alpha1.RepositoryLock, error)
	Unlock(ctx context.Context, repo string, req v1alpha1.RepositoryUnlockRequest) (*v1alpha1.RepositoryUnlockResult, error)
	Create(ctx context.Context, req v1alpha1.BackupRequest, progress func(v1alpha1.BackupProgress)) (*v1alpha1.Backup, error)
	List(ctx context.Context, repo string) ([]v1alpha1.Backup, error)
	Verify(ctx context.Context, repo, id string) (*v1alpha1.BackupVerifyResult, error)
	Delete(ctx context.Context, repo, id string) error
	Prune(ctx context.Context, req v1alpha1.BackupPruneRequest) (*v1alpha1.BackupPruneResult, error)
	Restore(ctx context.Context, id string, req v1alpha1.RestoreRequest) (*v1alpha1.RestoreResult, error)
	Drill(ctx context.Context, req v1alpha1.DrillRequest) (*v1alpha1.DrillResult, error)
}

// decodeInto reads a JSON request body into v; an empty body leaves v as it is.
func decodeInto(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: the body is not the JSON this route takes: %w", errBadRequest, err)
	}
	return nil
}

// handleJSON serves a route that decodes a request of type Req and answers with what
// fn returns.
func handleJSON[Req any](s *Server, code int, fn func(r *http.Request, req Req) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := decodeInto(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		longLived(w) // the body is in; the work (a repository's I/O) takes what it takes
		out, err := fn(r, req)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, code, out)
	}
}

func (s *Server) serveBackups(b Backupper) {
	p := "POST " + Prefix
	s.mux.HandleFunc("GET "+Prefix+BackupReposPath, func(w http.ResponseWriter, r *http.Request) {
		list, err := b.Repos(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if list == nil {
			list = []v1alpha1.BackupRepository{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": list})
	})
	s.mux.HandleFunc(p+BackupReposPath+"/init", handleJSON(s, http.StatusCreated, func(r *http.Request, req v1alpha1.BackupRepositoryRequest) (any, error) {
		return b.InitRepo(r.Context(), req)
	}))
	s.mux.HandleFunc(p+BackupReposPath+"/connect", handleJSON(s, http.StatusCreated, func(r *http.Request, req v1alpha1.BackupRepositoryRequest) (any, error) {
		return b.ConnectRepo(r.Context(), req)
	}))
	s.mux.HandleFunc("GET "+Prefix+BackupReposPath+"/{name}/locks", func(w http.ResponseWriter, r *http.Request) {
		list, err := b.Locks(r.Context(), r.PathValue("name"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": list})
	})
	s.mux.HandleFunc(p+BackupReposPath+"/{name}/unlock", handleJSON(s, http.StatusOK, func(r *http.Request, req v1alpha1.RepositoryUnlockRequest) (any, error) {
		return b.Unlock(r.Context(), r.PathValue("name"), req)
	}))
	s.mux.HandleFunc(p+BackupsPath, func(w http.ResponseWriter, r *http.Request) {
		var req v1alpha1.BackupRequest
		if err := decodeInto(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		longLived(w)
		s.streamBackup(w, r, b, req)
	})
	s.mux.HandleFunc("GET "+Prefix+BackupsPath, func(w http.ResponseWriter, r *http.Request) {
		list, err := b.List(r.Context(), r.URL.Query().Get("repo"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": list})
	})
	s.mux.HandleFunc(p+BackupsPath+"/prune", handleJSON(s, http.StatusOK, func(r *http.Request, req v1alpha1.BackupPruneRequest) (any, error) {
		return b.Prune(r.Context(), req)
	}))
	s.mux.HandleFunc(p+BackupsPath+"/{id}/verify", func(w http.ResponseWriter, r *http.Request) {
		longLived(w)
		res, err := b.Verify(r.Context(), r.URL.Query().Get("repo"), r.PathValue("id"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	s.mux.HandleFunc("DELETE "+Prefix+BackupsPath+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := b.Delete(r.Context(), r.URL.Query().Get("repo"), r.PathValue("id")); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeStatus(w, http.StatusOK, "Deleted", fmt.Sprintf("backup %s deleted (its chunks go at the next prune)", r.PathValue("id")))
	})
	s.mux.HandleFunc(p+BackupsPath+"/{id}/restore", handleJSON(s, http.StatusOK, func(r *http.Request, req v1alpha1.RestoreRequest) (any, error) {
		return b.Restore(r.Context(), r.PathValue("id"), req)
	}))
	s.mux.HandleFunc(p+DrillsPath, handleJSON(s, http.StatusOK, func(r *http.Request, req v1alpha1.DrillRequest) (any, error) {
		return b.Drill(r.Context(), req)
	}))
}

// streamBackup runs a backup and answers with JSON lines (application/x-ndjson): a
// progress line per piece uploaded, then the backup, or the error that ended it. An
// error before the first progress line is an ordinary error answer.
func (s *Server) streamBackup(w http.ResponseWriter, r *http.Request, b Backupper, req v1alpha1.BackupRequest) {
	started := false
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	line := func(l v1alpha1.BackupStreamLine) {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		_ = enc.Encode(l) // the client went away: the backup goes on
		if flusher != nil {
			flusher.Flush()
		}
	}
	backup, err := b.Create(r.Context(), req, func(p v1alpha1.BackupProgress) { line(v1alpha1.BackupStreamLine{Progress: &p}) })
	switch {
	case err != nil && !started:
		s.writeError(w, r, err)
	case err != nil:
		line(v1alpha1.BackupStreamLine{Error: &v1alpha1.BackupError{Reason: reasonOf(err), Message: err.Error()}})
	default:
		line(v1alpha1.BackupStreamLine{Backup: backup})
	}
}

// reasonOf is the Status reason writeError would give err.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ReasonNotFound
	case errors.Is(err, store.ErrAlreadyExists):
		return ReasonAlreadyExists
	case errors.Is(err, runtime.ErrInvalid), errors.Is(err, runtime.ErrUnsupported):
		return ReasonInvalid
	}
	return ReasonInternal
}
