package backup_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/qemu"
	"strata.dev/strata/internal/runtime/qemu/qmptest"
	"strata.dev/strata/internal/snapshot"
	"strata.dev/strata/internal/store"
)

// BenchmarkVMDiskBackup backs up a running VM's 1 GiB disk (the benchmark volume's
// content, as one raw image) into a new repository (first), and again after the guest
// wrote 1% of it (second: 10 MiB in two runs that start off block boundaries), with
// strata and, when it is installed, with restic backing up the same image as a file
// changed the same way. read-MiB/op is what strata stored anew (blocks read whole or
// rebuilt); qemu-read-MiB/op what QEMU read from the disk for the copy.
func BenchmarkVMDiskBackup(b *testing.B) {
	if testing.Short() {
		b.Skip("writes and backs up a 1 GiB disk")
	}
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Skipf("skipping: %s not found (make host-setup)", bin)
		}
	}
	ctx := context.Background()
	data := b.TempDir()
	disk := filepath.Join(data, "images", "db.img")
	if err := os.MkdirAll(filepath.Dir(disk), 0o700); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(disk)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchFileSize)
	for i := range benchFiles {
		benchRegion(i, buf)
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}

	st, err := store.Open(filepath.Join(b.TempDir(), "strata.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	d, err := qemu.New(ctx, qemu.Config{StateDir: filepath.Join(data, "vm")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		b.Fatal(err)
	}
	snap := snapshot.New(snapshot.Options{Store: st, Drivers: reg, DataDir: data})
	m := backup.New(backup.Options{Store: st, Drivers: reg, Snapshots: snap, DataDir: data})
	vm := &v1alpha1.VMSource{Disk: &v1alpha1.Disk{Path: disk, Format: v1alpha1.DiskRaw}}
	is := runtime.InstanceSpec{ID: "db-0", Workload: "db", Tier: v1alpha1.TierVM, MemoryBytes: 64 << 20, VM: vm,
		DiskDir: runtime.SlotDiskDir(data, "db", 0), LogPath: filepath.Join(data, "db.log")}
	if _, err := d.Start(ctx, is); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = d.Stop(context.Background(), is.ID, 0)
		_ = d.Remove(context.Background(), is.ID)
	})
	status := &v1alpha1.WorkloadStatus{Tier: v1alpha1.TierVM,
		Instances: []v1alpha1.Instance{{ID: is.ID, Tier: v1alpha1.TierVM, State: string(runtime.StateRunning)}}}
	rec, err := objects.Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: "db"}, v1alpha1.WorkloadSpec{VM: vm}, status)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Create(ctx, rec); err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(data, "vm", is.ID, "qmp.sock")
	pid := qmptest.PID(sock)
	if pid == 0 {
		b.Fatalf("no QEMU serves %s", sock)
	}

	repos := 0
	newRepo := func() string {
		repos++
		name := fmt.Sprintf("r%d", repos)
		if _, err := m.InitRepo(ctx, v1alpha1.BackupRepositoryRequest{URL: "file://" + b.TempDir(), Name: name}); err != nil {
			b.Fatal(err)
		}
		return name
	}
	backupOnce := func(b *testing.B, repo string) *v1alpha1.Backup {
		bk, err := m.Create(ctx, v1alpha1.BackupRequest{Workloads: []string{"db"}, Repo: repo}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return bk
	}
	// change writes 1% of the disk, as the guest would: 5 MiB into each of two regions.
	change := func(b *testing.B, round int, write func(off, n int64, pattern byte)) {
		for k := range 2 {
			region := int64((2*round + k) % benchFiles)
			write(region*benchFileSize+int64(round%3)*benchChange+300<<10, benchChange, byte(round*2+k+1))
		}
	}
	guestWrite := func(off, n int64, pattern byte) {
		qmptest.HMP(b, sock, fmt.Sprintf(`qemu-io -d %s "write -P %d %d %d"`, qmptest.DiskDevice, pattern, off, n))
	}
	measure := func(b *testing.B, run func(i int) *v1alpha1.Backup) {
		var read, qread int64
		for i := range b.N {
			q0 := procReadChars(b, strconv.Itoa(pid))
			bk := run(i)
			qread += procReadChars(b, strconv.Itoa(pid)) - q0
			read += bk.ReadBytes
		}
		b.ReportMetric(float64(read)/float64(b.N)/(1<<20), "read-MiB/op")
		b.ReportMetric(float64(qread)/float64(b.N)/(1<<20), "qemu-read-MiB/op")
	}
	b.Run("strata/first", func(b *testing.B) {
		measure(b, func(int) *v1alpha1.Backup {
			b.StopTimer()
			repo := newRepo()
			b.StartTimer()
			return backupOnce(b, repo)
		})
	})
	b.Run("strata/second", func(b *testing.B) {
		repo := newRepo()
		backupOnce(b, repo)
		b.ResetTimer()
		measure(b, func(i int) *v1alpha1.Backup {
			b.StopTimer()
			change(b, i, guestWrite)
			b.StartTimer()
			return backupOnce(b, repo)
		})
	})

	restic, err := exec.LookPath("restic")
	if err != nil {
		b.Logf("restic not found: no side-by-side figures")
		return
	}
	// restic backs up a copy of the image as a file, changed the same way.
	image := filepath.Join(b.TempDir(), "db.img")
	if out, err := exec.Command("cp", "--sparse=always", disk, image).CombinedOutput(); err != nil {
		b.Fatalf("copy the image: %v %s", err, out)
	}
	fileWrite := func(off, n int64, pattern byte) {
		f, err := os.OpenFile(image, os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte(strings.Repeat(string(rune(pattern)), int(n)))[:n], off); err != nil {
			b.Fatal(err)
		}
	}
	run := func(b *testing.B, repo string, args ...string) {
		cmd := exec.Command(restic, append([]string{"-q", "-r", repo}, args...)...)
		cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_CACHE_DIR="+filepath.Join(filepath.Dir(repo), "cache"))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("restic %v: %v\n%s", args, err, out)
		}
	}
	b.Run("restic/first", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			repo := filepath.Join(b.TempDir(), "repo")
			run(b, repo, "init")
			b.StartTimer()
			run(b, repo, "backup", image)
		}
	})
	b.Run("restic/second", func(b *testing.B) {
		repo := filepath.Join(b.TempDir(), "repo")
		run(b, repo, "init")
		run(b, repo, "backup", image)
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			change(b, 1000+i, fileWrite)
			b.StartTimer()
			run(b, repo, "backup", image)
		}
	})
}
