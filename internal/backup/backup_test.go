package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/fake"
	"strata.dev/strata/internal/snapshot"
	"strata.dev/strata/internal/store"
)

// harness is a backup Manager with a file repository, a real store and snapshot
// Manager, and a fake driver serving every tier.
type harness struct {
	t    *testing.T
	st   *store.Store
	d    *fake.Driver
	host *fake.Host
	snap *snapshot.Manager
	m    *backup.Manager
	data string
}

const image = "localhost/app:1"

var (
	disk        = &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: "/images/base.qcow2"}}
	errInjected = errors.New("injected failure")
)

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
	h := &harness{t: t, st: st, d: d, host: host, data: data}
	h.snap = snapshot.New(snapshot.Options{Store: st, Drivers: reg, DataDir: data})
	h.m = backup.New(backup.Options{Store: st, Drivers: reg, Snapshots: h.snap, DataDir: data})
	if _, err := h.m.InitRepo(context.Background(), v1alpha1.BackupRepositoryRequest{URL: "file://" + t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	return h
}

// workload stores a workload and starts its slots' instances, as the controller would.
func (h *harness) workload(name string, tier v1alpha1.Tier, spec v1alpha1.WorkloadSpec, slots int) {
	h.t.Helper()
	ctx := context.Background()
	status := &v1alpha1.WorkloadStatus{Tier: tier}
	for slot := range slots {
		is := runtime.InstanceSpec{ID: fmt.Sprintf("%s-%d", name, slot), Workload: name, Slot: slot, Tier: tier,
			Image: spec.Image, VM: spec.VM, DiskDir: h.diskDir(name, slot), Command: script.Serve(3600)}
		if tier != v1alpha1.TierVM {
			is.DiskDir = ""
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
	rec, err := objects.Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: name, Labels: map[string]string{"team": "a"}}, spec, status)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.Create(ctx, rec); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) diskDir(workload string, slot int) string {
	return runtime.SlotDiskDir(h.data, workload, slot)
}

func (h *harness) exec(id string, cmd []string) string {
	h.t.Helper()
	var out strings.Builder
	if code, err := h.d.Exec(context.Background(), id, cmd, nil, &out, &out); err != nil || code != 0 {
		h.t.Fatalf("exec %q in %s: %d %v: %s", cmd, id, code, err, out.String())
	}
	return out.String()
}

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

// wantNoSnapshots checks that the backup left no snapshot behind, recorded or on disk.
func (h *harness) wantNoSnapshots() {
	h.t.Helper()
	list, err := h.snap.List(context.Background(), "")
	if err != nil {
		h.t.Fatal(err)
	}
	for _, s := range list {
		h.t.Errorf("snapshot left: %s of %s", s.Spec.Name, s.Spec.Workload)
	}
	_ = filepath.WalkDir(filepath.Join(h.data, "snapshots"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			h.t.Errorf("snapshot file left: %s", p)
		}
		return nil
	})
}

func (h *harness) backups() []v1alpha1.Backup {
	h.t.Helper()
	list, err := h.m.List(context.Background(), "")
	if err != nil {
		h.t.Fatal(err)
	}
	return list
}

// TestBackupOrder: a backup pauses every instance of its workloads together, copies
// them, resumes them, and leaves no snapshot on the host; a failure in any driver step
// leaves neither a backup in the repository nor a snapshot nor a paused instance.
func TestBackupOrder(t *testing.T) {
	setup := func(t *testing.T) *harness {
		h := newHarness(t)
		h.workload("vm", v1alpha1.TierVM, v1alpha1.WorkloadSpec{VM: disk}, 1)
		h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image,
			Volumes: []v1alpha1.Volume{{Name: "data", MountPath: "/data"}}}, 1)
		h.calls()
		return h
	}
	req := v1alpha1.BackupRequest{Workloads: []string{"vm", "db"}}
	t.Run("ok", func(t *testing.T) {
		h := setup(t)
		b, err := h.m.Create(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.wantCalls("pause vm-0", "pause db-0", "snapshot-disk vm-0", "save-rootfs db-0", "resume vm-0", "resume db-0")
		if !b.FrozenTogether || len(h.backups()) != 1 {
			t.Errorf("backup %+v", b)
		}
		h.wantNoSnapshots()
	})
	for _, f := range []struct {
		op fake.Op
		id string
	}{{fake.OpSnapshotDisk, "vm-0"}, {fake.OpSaveRootfs, "db-0"}} {
		t.Run(string(f.op), func(t *testing.T) {
			h := setup(t)
			h.host.Fail(f.op, f.id, errInjected)
			if _, err := h.m.Create(context.Background(), req, nil); !errors.Is(err, errInjected) {
				t.Fatalf("backup: %v, want the injected failure", err)
			}
			got := h.calls()
			if n := len(got); n < 2 || !slices.Equal(got[n-2:], []string{"resume vm-0", "resume db-0"}) {
				t.Errorf("driver calls %q: want both instances resumed at the end", got)
			}
			if len(h.backups()) != 0 {
				t.Error("a failed backup is in the repository")
			}
			h.wantNoSnapshots()
		})
	}
}

// TestRestoreHeld: a restore creates each workload held, puts its data in place, and
// only then releases the hold; the restored slot disks hold the backup's data. When a
// step fails, the workloads it created are deleted again, so no held workload stays.
func TestRestoreHeld(t *testing.T) {
	setup := func(t *testing.T) (*harness, string) {
		h := newHarness(t)
		h.workload("vm", v1alpha1.TierVM, v1alpha1.WorkloadSpec{VM: disk}, 2)
		h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image,
			Volumes: []v1alpha1.Volume{{Name: "data", MountPath: "/data"}}}, 1)
		h.exec("vm-1", script.WriteFile("/data", "backed-up"))
		h.exec("db-0", script.WriteFile("/data/rows", "backed-up"))
		b, err := h.m.Create(context.Background(), v1alpha1.BackupRequest{Workloads: []string{"vm", "db"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.calls()
		return h, b.ID
	}
	t.Run("ok", func(t *testing.T) {
		h, id := setup(t)
		var held []bool
		h.host.OnCall(func(c fake.Call) {
			if c.Op == fake.OpRestoreSlotDisk {
				rec, err := h.st.Get(context.Background(), v1alpha1.KindWorkload, "vm-copy")
				_, ok := rec.Annotations[v1alpha1.AnnotationHold]
				held = append(held, err == nil && ok)
			}
		})
		res, err := h.m.Restore(context.Background(), id, v1alpha1.RestoreRequest{As: "copy"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(held, []bool{true, true}) {
			t.Errorf("vm-copy stored and held while each slot disk was restored: %v, want [true true]", held)
		}
		if len(res.Workloads) != 2 {
			t.Errorf("restored %+v", res.Workloads)
		}
		h.wantCalls("restore-slot-disk "+h.diskDir("vm-copy", 0), "restore-slot-disk "+h.diskDir("vm-copy", 1))
		for _, name := range []string{"vm-copy", "db-copy"} {
			rec, err := h.st.Get(context.Background(), v1alpha1.KindWorkload, name)
			if err != nil {
				t.Fatal(err)
			}
			if why, held := rec.Annotations[v1alpha1.AnnotationHold]; held {
				t.Errorf("%s is still held (%q)", name, why)
			}
			if rec.Labels["team"] != "a" {
				t.Errorf("%s lost its labels: %v", name, rec.Labels)
			}
		}
		is := runtime.InstanceSpec{ID: "vm-copy-1", Workload: "vm-copy", Slot: 1, Tier: v1alpha1.TierVM, VM: disk,
			DiskDir: h.diskDir("vm-copy", 1), Command: script.Serve(60)}
		if _, err := h.d.Start(context.Background(), is); err != nil {
			t.Fatal(err)
		}
		if got := h.exec("vm-copy-1", script.ReadFile("/data")); got != "backed-up\n" {
			t.Errorf("the restored slot disk holds %q", got)
		}
		rows, err := os.ReadFile(filepath.Join(runtime.VolumeDir(h.data, "db-copy", "data", 0), "rows"))
		if err != nil || string(rows) != "backed-up\n" {
			t.Errorf("the restored volume holds %q, %v", rows, err)
		}
	})
	t.Run("restore-slot-disk-fails", func(t *testing.T) {
		h, id := setup(t)
		h.host.Fail(fake.OpRestoreSlotDisk, h.diskDir("vm-copy", 1), errInjected)
		if _, err := h.m.Restore(context.Background(), id, v1alpha1.RestoreRequest{As: "copy"}); !errors.Is(err, errInjected) {
			t.Fatalf("restore: %v, want the injected failure", err)
		}
		h.wantCalls("restore-slot-disk "+h.diskDir("vm-copy", 0), "restore-slot-disk "+h.diskDir("vm-copy", 1)+" failed")
		for _, name := range []string{"vm-copy", "db-copy"} {
			if _, err := h.st.Get(context.Background(), v1alpha1.KindWorkload, name); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("workload %s after a failed restore: %v, want it deleted", name, err)
			}
		}
	})
}

// TestScheduledBackup: a due scheduled backup is taken and pruned to its keep, and its
// outcome lands in the workload's status; a failed one records its error, keeps the
// last success, and leaves no instance paused and no snapshot behind.
func TestScheduledBackup(t *testing.T) {
	h := newHarness(t)
	h.workload("db", v1alpha1.TierContainer, v1alpha1.WorkloadSpec{Image: image,
		Volumes: []v1alpha1.Volume{{Name: "data", MountPath: "/data"}},
		Backup:  &v1alpha1.BackupSpec{Schedule: "@hourly", Keep: &v1alpha1.BackupKeep{Last: 1}}}, 1)
	now := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	m := backup.New(backup.Options{Store: h.st, Drivers: mustRegistry(t, h.d), Snapshots: h.snap, DataDir: h.data,
		Clock: func() time.Time { return now }})
	status := func() v1alpha1.BackupStatus {
		t.Helper()
		rec, err := h.st.Get(context.Background(), v1alpha1.KindWorkload, "db")
		if err != nil {
			t.Fatal(err)
		}
		w, err := objects.Workload(rec)
		if err != nil || w.Status.Backup == nil {
			t.Fatalf("workload status: %+v, %v", w.Status, err)
		}
		return *w.Status.Backup
	}
	for range 2 {
		if err := m.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Hour)
	}
	ok := status()
	if ok.LastError != "" || ok.LastSuccess == nil || ok.LastBackupID == "" {
		t.Fatalf("after two scheduled backups: %+v", ok)
	}
	if list := h.backups(); len(list) != 1 || list[0].ID != ok.LastBackupID {
		t.Errorf("kept backups %+v, want the last one only (keep.last 1)", list)
	}
	h.calls()
	h.host.Fail(fake.OpSaveRootfs, "db-0", errInjected)
	if err := m.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.wantCalls("pause db-0", "save-rootfs db-0 failed", "resume db-0")
	failed := status()
	if !strings.Contains(failed.LastError, errInjected.Error()) || failed.LastBackupID != ok.LastBackupID ||
		!failed.LastSuccess.Equal(*ok.LastSuccess) || !failed.LastAttempt.Equal(now) {
		t.Errorf("after a failed scheduled backup: %+v (before: %+v)", failed, ok)
	}
	h.wantNoSnapshots()
}

func mustRegistry(t *testing.T, d runtime.Driver) *runtime.Registry {
	t.Helper()
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}
