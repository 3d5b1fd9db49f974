package nodevm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// record is what the driver keeps of one instance, in
// StateDir/instances/<id>.json: enough for a new Driver value to find it in
// its node VM and report it.
type record struct {
	ID       string            `json:"id"`
	Workload string            `json:"workload"`
	Slot     int               `json:"slot"`
	Tier     v1alpha1.Tier     `json:"tier"`
	Image    string            `json:"image"`
	Labels   map[string]string `json:"labels,omitempty"`
	LogPath  string            `json:"logPath,omitempty"`
	// LogBase is the size of LogPath when the instance started: the
	// container's own output follows it, so the size less LogBase is how
	// much of the guest's log has been copied.
	LogBase int64 `json:"logBase,omitempty"`
	// Class is the isolation class; VM the node VM that runs the container
	// (named like the instance inside the guest).
	Class string `json:"class"`
	VM    string `json:"vm"`
	// CPUMilli and MemoryBytes are the instance's requests: what it takes of
	// its node VM (with the sandbox overhead for a sandbox).
	CPUMilli    int64 `json:"cpuMilli,omitempty"`
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// NIC is the ID of the NIC plugged into VM for the instance's network
	// (NICID), which Remove unplugs; empty without a network.
	NIC string `json:"nic,omitempty"`

	StartedAt  time.Time `json:"startedAt"`
	Finished   bool      `json:"finished,omitempty"`
	ExitCode   int       `json:"exitCode,omitempty"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	Message    string    `json:"message,omitempty"`
}

func (d *Driver) instancesDir() string { return filepath.Join(d.cfg.StateDir, "instances") }

func (d *Driver) recordPath(id string) string {
	return filepath.Join(d.instancesDir(), id+".json")
}

// readRecord returns instance id's record; ErrNotFound when there is none.
func (d *Driver) readRecord(id string) (*record, error) {
	if !runtime.ValidID(id) {
		return nil, fmt.Errorf("%w: instance %q", runtime.ErrNotFound, id)
	}
	data, err := os.ReadFile(d.recordPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: instance %q", runtime.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("instance %q: %s: %w", id, d.recordPath(id), err)
	}
	return &r, nil
}

// writeRecord replaces r's file atomically.
func (d *Driver) writeRecord(r *record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.instancesDir(), r.ID+".json.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), d.recordPath(r.ID))
}

// ids lists the instances with a record, sorted.
func (d *Driver) ids() ([]string, error) {
	entries, err := os.ReadDir(d.instancesDir())
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && runtime.ValidID(id) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// records reads every instance's record; those unreadable are left out.
func (d *Driver) records() ([]*record, error) {
	ids, err := d.ids()
	if err != nil {
		return nil, err
	}
	out := make([]*record, 0, len(ids))
	for _, id := range ids {
		if r, err := d.readRecord(id); err == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// status is r's status: exited once finished, else state (with the PID of
// the node VM's QEMU process while running) and why.
func (r *record) status(state runtime.State, pid int, message string) runtime.Status {
	st := runtime.Status{
		ID: r.ID, Workload: r.Workload, Slot: r.Slot, Tier: r.Tier, Image: r.Image,
		StartedAt: r.StartedAt, Labels: r.Labels, Message: message,
	}
	if r.Finished {
		st.State, st.ExitCode, st.OOMKilled, st.FinishedAt, st.Message = runtime.StateExited, r.ExitCode, r.OOMKilled, r.FinishedAt, r.Message
		return st
	}
	st.State = state
	if state == runtime.StateRunning {
		st.PID = pid
	}
	return st
}
