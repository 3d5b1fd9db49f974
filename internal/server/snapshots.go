package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"strata.dev/strata/api/v1alpha1"
)

// Snapshotter takes, restores and deletes workloads' snapshots (the daemon's
// internal/snapshot Manager).
type Snapshotter interface {
	Create(ctx context.Context, workload, name string, memory bool) (*v1alpha1.Snapshot, error)
	Restore(ctx context.Context, workload, name string) (*v1alpha1.Snapshot, error)
	Delete(ctx context.Context, workload, name string) error
}

func (s *Server) serveSnapshots(sn Snapshotter) {
	s.mux.HandleFunc("POST "+Prefix+"workloads/{name}/snapshots", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.workloadName(w, r); !ok {
			return
		}
		var req SnapshotRequest
		if r.ContentLength != 0 {
			body, err := readBody(r)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			if err := json.Unmarshal(body, &req); err != nil {
				writeStatus(w, http.StatusBadRequest, ReasonBadRequest, "the body must be {\"name\": NAME, \"memory\": BOOL}: "+err.Error())
				return
			}
		}
		longLived(w) // a VM's memory takes a while to save
		snap, err := sn.Create(r.Context(), r.PathValue("name"), req.Name, req.Memory)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, snap)
	})
	s.mux.HandleFunc("POST "+Prefix+"workloads/{name}/snapshots/{snapshot}/restore", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.workloadName(w, r); !ok {
			return
		}
		longLived(w)
		snap, err := sn.Restore(r.Context(), r.PathValue("name"), r.PathValue("snapshot"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, snap)
	})
	s.mux.HandleFunc("DELETE "+Prefix+"workloads/{name}/snapshots/{snapshot}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.workloadName(w, r); !ok {
			return
		}
		if err := sn.Delete(r.Context(), r.PathValue("name"), r.PathValue("snapshot")); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeStatus(w, http.StatusOK, "Deleted", fmt.Sprintf("snapshot %s of %s deleted", r.PathValue("snapshot"), r.PathValue("name")))
	})
}
