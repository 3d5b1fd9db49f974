package qemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
)

// Files of an instance's directory.
const (
	recordFile  = "instance.json"
	qmpSocket   = "qmp.sock"
	agentSocket = "agent.sock"
	conSocket   = "console.sock"
	exitFile    = "exit.json"
	qemuLog     = "qemu.log"
	overlayFile = "disk.qcow2"
	initrdFile  = "initrd.img"
	seedFile    = "seed.iso"
)

// Files of a slot's disk directory (runtime.InstanceSpec.DiskDir).
const (
	// SlotDiskFile is the slot's writable disk, an overlay of vm.disk.
	SlotDiskFile = "disk.qcow2"
	// slotDiskBaseFile names the vm.disk the slot disk was made from.
	slotDiskBaseFile = "base"
)

// source says what an instance boots.
type source string

const (
	sourceImage source = "image" // an OCI image in a microVM under strata's guest init
	sourceVM    source = "vm"    // the workload's own kernel and/or disk
)

// record is what the driver keeps of an instance, in StateDir/ID/instance.json.
type record struct {
	ID       string            `json:"id"`
	Workload string            `json:"workload"`
	Slot     int               `json:"slot"`
	Image    string            `json:"image,omitempty"`
	Source   source            `json:"source"`
	Labels   map[string]string `json:"labels,omitempty"`
	LogPath  string            `json:"logPath,omitempty"`
	Accel    string            `json:"accel"`
	// Args is QEMU's command line, kept to start it again on restore.
	Args []string `json:"args,omitempty"`
	// Tap says that QEMU gets the instance's tap as fd 3.
	Tap bool `json:"tap,omitempty"`

	// PID and PIDStart identify the QEMU process: its PID and its start time
	// in clock ticks since boot (field 22 of /proc/PID/stat), which tells it
	// from a later process with the same PID.
	PID        int       `json:"pid,omitempty"`
	PIDStart   uint64    `json:"pidStart,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	Stopping   bool      `json:"stopping,omitempty"`
	Killed     bool      `json:"killed,omitempty"` // the driver killed QEMU (stop after the grace)
	Finished   bool      `json:"finished,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	ExitCode   int       `json:"exitCode,omitempty"`
	Message    string    `json:"message,omitempty"`
}

func (d *Driver) dir(id string) string { return filepath.Join(d.cfg.StateDir, id) }

func (d *Driver) path(id, file string) string { return filepath.Join(d.cfg.StateDir, id, file) }

// readRecord loads instance id's record; ErrNotFound when it has none.
func (d *Driver) readRecord(id string) (*record, error) {
	data, err := os.ReadFile(d.path(id, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: instance %q", runtime.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("instance %q: %s: %w", id, d.path(id, recordFile), err)
	}
	return &r, nil
}

// writeRecord replaces the record atomically (temporary file, fsync, rename).
func (d *Driver) writeRecord(r *record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	p := d.path(r.ID, recordFile)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// ids lists the instance directories, sorted.
func (d *Driver) ids() ([]string, error) {
	entries, err := os.ReadDir(d.cfg.StateDir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && runtime.ValidID(e.Name()) {
			if _, err := os.Stat(d.path(e.Name(), recordFile)); err == nil {
				ids = append(ids, e.Name())
			}
		}
	}
	return ids, nil
}

// status turns a record into the Status the driver reports.
func (r *record) status() runtime.Status {
	st := runtime.Status{
		ID: r.ID, Workload: r.Workload, Slot: r.Slot, Tier: v1alpha1.TierVM, Image: r.Image,
		StartedAt: r.StartedAt, Message: r.Message, Labels: map[string]string{},
	}
	for k, v := range r.Labels {
		st.Labels[k] = v
	}
	switch {
	case r.Finished:
		st.State, st.ExitCode, st.FinishedAt = runtime.StateExited, r.ExitCode, r.FinishedAt
	case r.PID == 0:
		st.State = runtime.StateCreating
	case r.Stopping:
		st.State, st.PID = runtime.StateStopping, r.PID
	default:
		st.State, st.PID = runtime.StateRunning, r.PID
		if st.Message == "" {
			st.Message = accelMessage(r.Accel)
		}
	}
	return st
}

func accelMessage(accel string) string {
	if accel == accelKVM {
		return "running under KVM"
	}
	return "running under TCG (software emulation)"
}

// procStart returns the start time of process pid in clock ticks since boot,
// and whether the process exists and is not a zombie.
func procStart(pid int) (uint64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
	if len(fields) < 20 || fields[0] == "Z" || fields[0] == "X" {
		return 0, false
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return start, true
}

// alive reports whether r's QEMU process still runs: the PID exists, is no
// zombie, started when recorded, and its command line names the instance's
// QMP socket.
func (d *Driver) alive(r *record) bool {
	if r.PID <= 0 {
		return false
	}
	start, ok := procStart(r.PID)
	if !ok || start != r.PIDStart {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(r.PID) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte(d.path(r.ID, qmpSocket)))
}
