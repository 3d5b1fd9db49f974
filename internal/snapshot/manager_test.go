package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/fake"
	"strata.dev/strata/internal/snapshot"
	"strata.dev/strata/internal/store"
)

// harness is a snapshot Manager over a real store and a fake driver serving every
// tier, with a stand-in for the controller's part: it starts a workload's instances,
// and stops and removes them while the workload is held.
type harness struct {
	t      *testing.T
	st     *store.Store
	d      *fake.Driver
	host   *fake.Host
	m      *snapshot.Manager
	data   string
	events *recorder
}

type recorder struct {
	mu     sync.Mutex
	events []objects.Event
}

func (r *recorder) Record(_ context.Context, e objects.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// reasons returns the reasons of the recorded events, in order.
func (r *recorder) reasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Reason)
	}
	return out
}

const image = "localhost/app:1"

func newHarness(t *testing.T) *harness {
	t.Helper()
	data := t.TempDir()
	st, err := store.Open(filepath.Join(t.TempDir(), "strata.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	host := fake.NewHost(fake.HostOptions{})
	d, err := fake.New(fake.Options{Host: host, Images: []string{image}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, st: st, d: d, host: host, data: data, events: &recorder{}}
	h.m = snapshot.New(snapshot.Options{Store: st, Drivers: reg, DataDir: data, Events: h.events, HoldTimeout: 5 * time.Second})
	return h
}

// workload stores a workload of tier with spec and starts its slots' instances
// (WORKLOAD-SLOT) running a server, as the controller would.
func (h *harness) workload(name string, tier v1alpha1.Tier, spec v1alpha1.WorkloadSpec, slots int) {
	h.t.Helper()
	ctx := context.Background()
	status := &v1alpha1.WorkloadStatus{Tier: tier}
	for slot := range slots {
		is := runtime.InstanceSpec{ID: fmt.Sprintf("%s-%d", name, slot), Workload: name, Slot: slot, Tier: tier,
			Image: spec.Image, VM: spec.VM, Command: script.Serve(3600)}
		if spec.VM != nil && spec.VM.Disk != nil {
			is.DiskDir = runtime.SlotDiskDir(h.data, name, slot)
		}
		for _, v := range spec.Volumes {
			dir := runtime.VolumeDir(h.data, name, v.Name, slot)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				h.t.Fatal(err)
			}
			is.Mounts = append(is.Mounts, runtime.Mount{HostPath: dir, Path: v.MountPath})
		}
		if _, err := h.d.Start(ctx, is); err != nil {
			h.t.Fatal(err)
		}
		status.Instances = append(status.Instances, v1alpha1.Instance{ID: is.ID, Tier: tier, State: string(runtime.StateRunning)})
	}
	rec, err := objects.Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: name}, spec, status)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.Create(ctx, rec); err != nil {
		h.t.Fatal(err)
	}
}

// exec runs cmd in instance id and wants it to succeed.
func (h *harness) exec(id string, cmd []string) string {
	h.t.Helper()
	var out strings.Builder
	if code, err := h.d.Exec(context.Background(), id, cmd, nil, &out, &out); err != nil || code != 0 {
		h.t.Fatalf("exec %q in %s: %d %v: %s", cmd, id, code, err, out.String())
	}
	return out.String()
}

// calls returns the driver operations recorded since the last call, as strings,
// and forgets them.
func (h *harness) calls() []string {
	var out []string
	for _, c := range h.host.Calls() {
		out = append(out, c.String())
	}
	h.host.ResetCalls()
	return out
}

func (h *harness) wantCalls(want ...string) {
	h.t.Helper()
	if got := h.calls(); !slices.Equal(got, want) {
		h.t.Errorf("driver calls:\n got %q\nwant %q", got, want)
	}
}

// paused lists the instances the driver reports paused.
func (h *harness) paused() []string {
	list, err := h.d.List(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, st := range list {
		if st.Message == "paused" {
			out = append(out, st.ID)
		}
	}
	return out
}

// annotations returns the workload's annotations.
func (h *harness) annotations(name string) map[string]string {
	h.t.Helper()
	rec, err := h.st.Get(context.Background(), v1alpha1.KindWorkload, name)
	if err != nil {
		h.t.Fatal(err)
	}
	return rec.Annotations
}

// holdAt records, for every call of op the driver gets, whether the workload it is for
// is held at that moment.
func (h *harness) holdAt(op fake.Op, workload string) *[]bool {
	var held []bool
	h.host.OnCall(func(c fake.Call) {
		if c.Op != op {
			return
		}
		_, ok := h.annotations(workload)[v1alpha1.AnnotationHold]
		held = append(held, ok)
	})
	return &held
}

func (h *harness) wantNoHold(name string) {
	h.t.Helper()
	if why, ok := h.annotations(name)[v1alpha1.AnnotationHold]; ok {
		h.t.Errorf("workload %s is still held (%s=%q)", name, v1alpha1.AnnotationHold, why)
	}
}

// wantNothingLeft checks that no snapshot of workload is recorded and no files are
// left under its snapshot directory.
func (h *harness) wantNothingLeft(workload string) {
	h.t.Helper()
	list, err := h.m.List(context.Background(), workload)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(list) != 0 {
		h.t.Errorf("snapshots of %s left: %d", workload, len(list))
	}
	entries, _ := os.ReadDir(filepath.Join(h.data, "snapshots", workload))
	for _, e := range entries {
		h.t.Errorf("left in the snapshot directory of %s: %s", workload, e.Name())
	}
}

// controller plays the controller's part while a test runs: it stops and removes the
// instances of a held workload and clears its status, as the reconcile loop would. It
// returns a function that stops it and reports what it stopped, in order.
func (h *harness) controller() (stop func() []string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var stopped []string
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			recs, _, err := h.st.List(ctx, v1alpha1.KindWorkload)
			if err != nil {
				return
			}
			for _, rec := range recs {
				if _, held := rec.Annotations[v1alpha1.AnnotationHold]; !held {
					continue
				}
				w, err := objects.Workload(rec)
				if err != nil || w.Status == nil || len(w.Status.Instances) == 0 {
					continue
				}
				for _, in := range w.Status.Instances {
					_ = h.d.Stop(ctx, in.ID, time.Second)
					_ = h.d.Remove(ctx, in.ID)
					stopped = append(stopped, in.ID)
				}
				w.Status.Instances = nil
				next, err := objects.Record(v1alpha1.KindWorkload, w.Metadata, w.Spec, w.Status)
				if err != nil {
					continue
				}
				rec.Status = next.Status
				_, _ = h.st.UpdateStatus(ctx, rec)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() []string { cancel(); <-done; return stopped }
}

var errInjected = errors.New("injected failure")

func volumes(names ...string) []v1alpha1.Volume {
	var out []v1alpha1.Volume
	for _, n := range names {
		out = append(out, v1alpha1.Volume{Name: n, MountPath: "/" + n})
	}
	return out
}

func hooks(pre, post []string) *v1alpha1.BackupSpec {
	return &v1alpha1.BackupSpec{Hooks: &v1alpha1.BackupHooks{Pre: pre, Post: post}}
}

// TestCreateContainerOrder: a container snapshot runs the pre hook in every instance,
// pauses them all, copies each root filesystem, resumes them all, then runs the post
// hook; the copy holds what the instances wrote.
func TestCreateContainerOrder(t *testing.T) {
	h := newHarness(t)
	h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image, Volumes: volumes("data"),
		Backup: hooks(script.Echo("flush"), script.Echo("thaw"))}, 2)
	h.exec("db-0", script.WriteFile("/etc/app.conf", "zero"))
	h.exec("db-1", script.WriteFile("/data/rows", "one"))
	h.calls()
	snap, err := h.m.Create(context.Background(), "db", "first", false)
	if err != nil {
		t.Fatal(err)
	}
	h.wantCalls("exec db-0", "exec db-1", "pause db-0", "pause db-1", "save-rootfs db-0", "save-rootfs db-1",
		"resume db-0", "resume db-1", "exec db-0", "exec db-1")
	if p := h.paused(); len(p) != 0 {
		t.Errorf("left paused: %v", p)
	}
	if snap.Status.Consistency != "application" || len(snap.Status.Slots) != 2 || len(snap.Status.Warnings) != 0 {
		t.Errorf("snapshot status %+v", snap.Status)
	}
	dir := snapshot.Dir(h.data, "db", "first")
	for _, f := range []string{"slot-0/rootfs.tar", "slot-0/volumes/data.tar", "slot-1/rootfs.tar", "slot-1/volumes/data.tar"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("snapshot file: %v", err)
		}
	}
	if r := h.events.reasons(); !slices.Equal(r, []string{"Snapshotted"}) {
		t.Errorf("events %q", r)
	}
}

// TestCreateContainerFailures: a failure in any step of a container snapshot leaves no
// snapshot, no files and no paused instance behind, and the post hook runs whenever
// the pre hook did.
func TestCreateContainerFailures(t *testing.T) {
	tests := []struct {
		op    fake.Op
		id    string
		calls []string
	}{
		{fake.OpExec, "db-1", []string{"exec db-0", "exec db-1 failed", "exec db-0", "exec db-1"}},
		{fake.OpPause, "db-1", []string{"exec db-0", "exec db-1", "pause db-0", "pause db-1 failed", "resume db-0", "exec db-0", "exec db-1"}},
		{fake.OpSaveRootfs, "db-0", []string{"exec db-0", "exec db-1", "pause db-0", "pause db-1", "save-rootfs db-0 failed",
			"resume db-0", "resume db-1", "exec db-0", "exec db-1"}},
		{fake.OpSaveRootfs, "db-1", []string{"exec db-0", "exec db-1", "pause db-0", "pause db-1", "save-rootfs db-0", "save-rootfs db-1 failed",
			"resume db-0", "resume db-1", "exec db-0", "exec db-1"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.op)+"-"+tt.id, func(t *testing.T) {
			h := newHarness(t)
			h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image, Volumes: volumes("data"),
				Backup: hooks(script.Echo("flush"), script.Echo("thaw"))}, 2)
			h.host.Fail(tt.op, tt.id, errInjected)
			_, err := h.m.Create(context.Background(), "db", "snap", false)
			h.wantCalls(tt.calls...)
			if !errors.Is(err, errInjected) {
				t.Fatalf("create: %v, want the injected failure", err)
			}
			if p := h.paused(); len(p) != 0 {
				t.Errorf("left paused: %v", p)
			}
			h.wantNothingLeft("db")
		})
	}
}

// TestCreateResumeFails: a resume that fails is logged; the snapshot stands, the other
// instances resume, and the post hook, which cannot run in the instance that stays
// frozen, is reported as an event.
func TestCreateResumeFails(t *testing.T) {
	h := newHarness(t)
	h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image, Volumes: volumes("data"),
		Backup: hooks(script.Echo("flush"), script.Echo("thaw"))}, 2)
	h.host.Fail(fake.OpResume, "db-0", errInjected)
	if _, err := h.m.Create(context.Background(), "db", "snap", false); err != nil {
		t.Fatalf("create: %v", err)
	}
	h.wantCalls("exec db-0", "exec db-1", "pause db-0", "pause db-1", "save-rootfs db-0", "save-rootfs db-1",
		"resume db-0 failed", "resume db-1", "exec db-0")
	if p := h.paused(); !slices.Equal(p, []string{"db-0"}) {
		t.Errorf("paused after a failed resume: %v, want [db-0]", p)
	}
	if r := h.events.reasons(); !slices.Equal(r, []string{"HookFailed", "Snapshotted"}) {
		t.Errorf("events %q", r)
	}
}

// TestCreateVM: a VM snapshot copies each disk (or saves each state, with memory)
// while the guests run; a failure in any slot leaves nothing behind; a kernel-only VM
// has nothing to copy and says so.
func TestCreateVM(t *testing.T) {
	disk := &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: "/images/base.qcow2"}}
	for _, memory := range []bool{false, true} {
		op, want := fake.OpSnapshotDisk, []string{"slot-0/disk.qcow2", "slot-1/disk.qcow2"}
		if memory {
			op, want = fake.OpSaveState, append(want, "slot-0/memory.state", "slot-1/memory.state")
		}
		t.Run(string(op), func(t *testing.T) {
			h := newHarness(t)
			h.workload("vm", v1alpha1.TierVM, v1alpha1.WorkloadSpec{VM: disk}, 2)
			h.calls()
			snap, err := h.m.Create(context.Background(), "vm", "ok", memory)
			if err != nil {
				t.Fatal(err)
			}
			h.wantCalls(string(op)+" vm-0", string(op)+" vm-1")
			for _, f := range want {
				if _, err := os.Stat(filepath.Join(snapshot.Dir(h.data, "vm", "ok"), f)); err != nil {
					t.Errorf("snapshot file: %v", err)
				}
			}
			if len(snap.Status.Slots) != 2 {
				t.Errorf("slots %+v", snap.Status.Slots)
			}
			h.host.Fail(op, "vm-1", errInjected)
			if _, err := h.m.Create(context.Background(), "vm", "failed", memory); !errors.Is(err, errInjected) {
				t.Fatalf("create with a failing slot: %v", err)
			}
			h.wantCalls(string(op)+" vm-0", string(op)+" vm-1 failed")
			if _, err := h.m.Get(context.Background(), "vm", "failed"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a failed snapshot is recorded: %v", err)
			}
			if _, err := os.Stat(snapshot.Dir(h.data, "vm", "failed")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed snapshot left files: %v", err)
			}
			if entries, _ := os.ReadDir(filepath.Join(h.data, "snapshots", "vm")); len(entries) != 1 {
				t.Errorf("snapshot directory holds %d entries, want the first snapshot's only", len(entries))
			}
		})
	}
	t.Run("kernel", func(t *testing.T) {
		h := newHarness(t)
		h.workload("k", v1alpha1.TierVM, v1alpha1.WorkloadSpec{VM: &v1alpha1.VMSource{Kernel: "vmlinuz"}}, 1)
		snap, err := h.m.Create(context.Background(), "k", "s", false)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Status.Slots) != 0 || len(snap.Status.Warnings) != 1 || !strings.Contains(snap.Status.Warnings[0], "no disk") {
			t.Errorf("kernel-only VM snapshot: %+v", snap.Status)
		}
	})
}

// TestRestoreCold: a restore without memory holds the workload, waits until its
// instances are gone, puts the saved data in place and releases the hold; it releases
// the hold whichever step fails.
func TestRestoreCold(t *testing.T) {
	disk := &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: "/images/base.qcow2"}}
	t.Run("vm", func(t *testing.T) {
		h := newHarness(t)
		h.workload("vm", v1alpha1.TierVM, v1alpha1.WorkloadSpec{VM: disk}, 2)
		h.exec("vm-1", script.WriteFile("/data", "saved"))
		if _, err := h.m.Create(context.Background(), "vm", "s", false); err != nil {
			t.Fatal(err)
		}
		h.exec("vm-1", script.WriteFile("/data", "changed"))
		h.calls()
		held := h.holdAt(fake.OpRestoreSlotDisk, "vm")
		stop := h.controller()
		_, err := h.m.Restore(context.Background(), "vm", "s")
		stopped := stop()
		if err != nil {
			t.Fatal(err)
		}
		h.wantNoHold("vm")
		if !slices.Equal(*held, []bool{true, true}) {
			t.Errorf("held while each slot disk was restored: %v, want [true true]", *held)
		}
		if !slices.Equal(stopped, []string{"vm-0", "vm-1"}) {
			t.Errorf("the controller stopped %v", stopped)
		}
		// The fake refuses to restore a slot disk a VM runs on: these came after the stop.
		h.wantCalls("restore-slot-disk "+runtime.SlotDiskDir(h.data, "vm", 0), "restore-slot-disk "+runtime.SlotDiskDir(h.data, "vm", 1))
		is := runtime.InstanceSpec{ID: "vm-1", Workload: "vm", Slot: 1, Tier: v1alpha1.TierVM, VM: disk,
			DiskDir: runtime.SlotDiskDir(h.data, "vm", 1), Command: script.Serve(60)}
		if _, err := h.d.Start(context.Background(), is); err != nil {
			t.Fatal(err)
		}
		if got := h.exec("vm-1", script.ReadFile("/data")); got != "saved\n" {
			t.Errorf("the restored slot disk holds %q, want the snapshot's", got)
		}
		if r := h.events.reasons(); !slices.Equal(r, []string{"Snapshotted", "Restored"}) {
			t.Errorf("events %q", r)
		}
	})
	t.Run("vm-fails", func(t *testing.T) {
		h := newHarness(t)
		h.workload("vm", v1alpha1.TierVM, v1alpha1.WorkloadSpec{VM: disk}, 2)
		if _, err := h.m.Create(context.Background(), "vm", "s", false); err != nil {
			t.Fatal(err)
		}
		h.host.Fail(fake.OpRestoreSlotDisk, runtime.SlotDiskDir(h.data, "vm", 1), errInjected)
		stop := h.controller()
		_, err := h.m.Restore(context.Background(), "vm", "s")
		stop()
		if !errors.Is(err, errInjected) {
			t.Fatalf("restore: %v, want the injected failure", err)
		}
		h.wantNoHold("vm")
		if r := h.events.reasons(); !slices.Equal(r, []string{"Snapshotted", "RestoreFailed"}) {
			t.Errorf("events %q", r)
		}
	})
	t.Run("not-stopped", func(t *testing.T) {
		h := newHarness(t)
		h.m = snapshot.New(snapshot.Options{Store: h.st, Drivers: mustRegistry(t, h.d), DataDir: h.data, HoldTimeout: 300 * time.Millisecond})
		h.workload("vm", v1alpha1.TierVM, v1alpha1.WorkloadSpec{VM: disk}, 1)
		if _, err := h.m.Create(context.Background(), "vm", "s", false); err != nil {
			t.Fatal(err)
		}
		h.calls()
		// No controller: the instances never stop.
		_, err := h.m.Restore(context.Background(), "vm", "s")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("restore: %v, want the hold's timeout", err)
		}
		h.wantNoHold("vm")
		h.wantCalls() // nothing was put in place
	})
	t.Run("canceled", func(t *testing.T) {
		h := newHarness(t)
		h.workload("vm", v1alpha1.TierVM, v1alpha1.WorkloadSpec{VM: disk}, 1)
		if _, err := h.m.Create(context.Background(), "vm", "s", false); err != nil {
			t.Fatal(err)
		}
		// No controller; the caller gives up while the restore waits for the stop.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := h.m.Restore(ctx, "vm", "s"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("restore: %v, want the caller's deadline", err)
		}
		h.wantNoHold("vm")
	})
	t.Run("volume-fails", func(t *testing.T) {
		h := newHarness(t)
		h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image, Volumes: volumes("data")}, 1)
		if _, err := h.m.Create(context.Background(), "db", "s", false); err != nil {
			t.Fatal(err)
		}
		archive := filepath.Join(snapshot.Dir(h.data, "db", "s"), "slot-0", "volumes", "data.tar")
		if err := os.WriteFile(archive, []byte("not a tar archive"), 0o600); err != nil {
			t.Fatal(err)
		}
		stop := h.controller()
		_, err := h.m.Restore(context.Background(), "db", "s")
		stop()
		if err == nil || !strings.Contains(err.Error(), "volume data") {
			t.Fatalf("restore from a broken volume archive: %v, want an error naming the volume", err)
		}
		h.wantNoHold("db")
	})
	t.Run("container", func(t *testing.T) {
		h := newHarness(t)
		h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image, Volumes: volumes("data")}, 1)
		h.exec("db-0", script.WriteFile("/data/rows", "saved"))
		h.exec("db-0", script.WriteFile("/etc/app.conf", "saved"))
		if _, err := h.m.Create(context.Background(), "db", "s", false); err != nil {
			t.Fatal(err)
		}
		h.exec("db-0", script.WriteFile("/data/rows", "changed"))
		stop := h.controller()
		_, err := h.m.Restore(context.Background(), "db", "s")
		stop()
		if err != nil {
			t.Fatal(err)
		}
		h.wantNoHold("db")
		rows, err := os.ReadFile(filepath.Join(runtime.VolumeDir(h.data, "db", "data", 0), "rows"))
		if err != nil || string(rows) != "saved\n" {
			t.Errorf("restored volume: %q, %v", rows, err)
		}
		layer := runtime.RootfsLayerFile(h.data, "db", 0)
		is := runtime.InstanceSpec{ID: "db-0", Workload: "db", Tier: v1alpha1.TierContainer, Image: image,
			RootfsLayer: layer, Command: script.Serve(60)}
		if _, err := h.d.Start(context.Background(), is); err != nil {
			t.Fatal(err)
		}
		if got := h.exec("db-0", script.ReadFile("/etc/app.conf")); got != "saved\n" {
			t.Errorf("the next instance's root filesystem holds %q, want the snapshot's", got)
		}
	})
}

func mustRegistry(t *testing.T, d runtime.Driver) *runtime.Registry {
	t.Helper()
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestRestoreMemory: a restore with memory replaces each running guest by its saved
// state, without a hold; the guests go on with the saved disks.
func TestRestoreMemory(t *testing.T) {
	h := newHarness(t)
	h.workload("vm", v1alpha1.TierVM, v1alpha1.WorkloadSpec{Image: image}, 2)
	h.exec("vm-0", script.WriteFile("/data", "saved"))
	if _, err := h.m.Create(context.Background(), "vm", "s", true); err != nil {
		t.Fatal(err)
	}
	h.exec("vm-0", script.WriteFile("/data", "changed"))
	h.calls()
	if _, err := h.m.Restore(context.Background(), "vm", "s"); err != nil {
		t.Fatal(err)
	}
	h.wantCalls("restore-state vm-0", "restore-state vm-1")
	h.wantNoHold("vm")
	if got := h.exec("vm-0", script.ReadFile("/data")); got != "saved\n" {
		t.Errorf("restored guest's disk: %q", got)
	}
	h.calls()
	h.host.Fail(fake.OpRestoreState, "vm-0", errInjected)
	if _, err := h.m.Restore(context.Background(), "vm", "s"); !errors.Is(err, errInjected) {
		t.Fatalf("restore: %v, want the injected failure", err)
	}
	h.wantCalls("restore-state vm-0 failed")
	h.wantNoHold("vm")
}

// TestCreateGroupOrder: a group snapshot runs every pre hook, pauses every instance of
// every workload, copies them all, resumes them all, then runs every post hook: one
// point in time. When a pause fails, the others are resumed at once and each workload
// is copied on its own, frozen by itself.
func TestCreateGroupOrder(t *testing.T) {
	setup := func(t *testing.T) *harness {
		h := newHarness(t)
		h.workload("web", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image, Backup: hooks(script.Echo("pre"), script.Echo("post"))}, 1)
		h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image, Volumes: volumes("data")}, 2)
		h.calls()
		return h
	}
	t.Run("together", func(t *testing.T) {
		h := setup(t)
		g, err := h.m.CreateGroup(context.Background(), []string{"web", "db"}, "g")
		if err != nil {
			t.Fatal(err)
		}
		h.wantCalls("exec web-0", "pause web-0", "pause db-0", "pause db-1",
			"save-rootfs web-0", "save-rootfs db-0", "save-rootfs db-1",
			"resume web-0", "resume db-0", "resume db-1", "exec web-0")
		if !g.FrozenTogether || len(g.Snapshots) != 2 || !g.Snapshots[0].Status.Time.Equal(g.Snapshots[1].Status.Time) {
			t.Errorf("group %+v", g)
		}
	})
	t.Run("pause-fails", func(t *testing.T) {
		h := setup(t)
		h.host.Fail(fake.OpPause, "db-1", errInjected)
		g, err := h.m.CreateGroup(context.Background(), []string{"web", "db"}, "g")
		if err != nil {
			t.Fatal(err)
		}
		h.wantCalls("exec web-0", "pause web-0", "pause db-0", "pause db-1 failed", "resume web-0", "resume db-0",
			"pause web-0", "save-rootfs web-0", "resume web-0",
			"pause db-0", "pause db-1", "save-rootfs db-0", "save-rootfs db-1", "resume db-0", "resume db-1", "exec web-0")
		if g.FrozenTogether || len(g.Warnings) != 1 || !strings.Contains(g.Warnings[0], "could not pause db-1") {
			t.Errorf("group %+v", g)
		}
		if p := h.paused(); len(p) != 0 {
			t.Errorf("left paused: %v", p)
		}
	})
	t.Run("copy-fails", func(t *testing.T) {
		h := setup(t)
		h.host.Fail(fake.OpSaveRootfs, "db-0", errInjected)
		if _, err := h.m.CreateGroup(context.Background(), []string{"web", "db"}, "g"); !errors.Is(err, errInjected) {
			t.Fatalf("create group: %v, want the injected failure", err)
		}
		h.wantCalls("exec web-0", "pause web-0", "pause db-0", "pause db-1",
			"save-rootfs web-0", "save-rootfs db-0 failed",
			"resume web-0", "resume db-0", "resume db-1", "exec web-0")
		if p := h.paused(); len(p) != 0 {
			t.Errorf("left paused: %v", p)
		}
		h.wantNothingLeft("web")
		h.wantNothingLeft("db")
	})
	t.Run("pre-hook-fails", func(t *testing.T) {
		h := setup(t)
		h.host.Fail(fake.OpExec, "web-0", errInjected)
		if _, err := h.m.CreateGroup(context.Background(), []string{"web", "db"}, "g"); !errors.Is(err, errInjected) {
			t.Fatalf("create group: %v, want the injected failure", err)
		}
		h.wantCalls("exec web-0 failed", "exec web-0")
		h.wantNothingLeft("web")
		h.wantNothingLeft("db")
	})
}
