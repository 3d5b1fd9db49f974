package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
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
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/fake"
	"strata.dev/strata/internal/snapshot"
	"strata.dev/strata/internal/store"
)

// The benchmark volume: 1 GiB in 64 files of 16 MiB, half random (a database's
// tables), half text (logs); an operation of the second backup first rewrites 1% of
// it (10 MiB in two files).
const (
	benchFiles    = 64
	benchFileSize = 16 << 20
	benchChange   = 5 << 20
)

// benchRegion fills buf with the benchmark's region i: random bytes (a database's
// tables) for even i, log text for odd i.
func benchRegion(i int, buf []byte) {
	words := []string{"GET ", "POST ", "/api/items/", "/index.html ", "200 ", "404 ", "took ", "ms ", "user=", "alice ",
		"bob ", "2026-12-07T06:", "00:00Z ", "10.0.0.", "session ", "\n"}
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	if i%2 == 1 {
		for j := 0; j < len(buf); {
			j += copy(buf[j:], words[rng.IntN(len(words))])
			if rng.IntN(8) == 0 {
				j += copy(buf[j:], strconv.Itoa(rng.IntN(100000)))
			}
		}
		return
	}
	for j := 0; j+8 <= len(buf); j += 8 {
		v := rng.Uint64()
		for k := range 8 {
			buf[j+k] = byte(v >> (8 * k))
		}
	}
}

// fillVolume writes the benchmark volume into dir.
func fillVolume(b *testing.B, dir string) {
	b.Helper()
	buf := make([]byte, benchFileSize)
	for i := range benchFiles {
		name := fmt.Sprintf("tables/t%02d.dat", i)
		if i%2 == 1 {
			name = fmt.Sprintf("logs/app-%02d.log", i)
		}
		benchRegion(i, buf)
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// changeVolume rewrites 1% of the volume: benchChange bytes in one table and one log,
// chosen by round.
func changeVolume(b *testing.B, dir string, round int) {
	b.Helper()
	for k, name := range []string{fmt.Sprintf("tables/t%02d.dat", (2*round)%benchFiles), fmt.Sprintf("logs/app-%02d.log", (2*round+1)%benchFiles)} {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		data := bytes.Repeat([]byte(fmt.Sprintf("round %d change %d\n", round, k)), benchChange/16)[:benchChange]
		if _, err := f.WriteAt(data, int64(round%3)*benchChange); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// readChars is what this process has read through read system calls so far
// (/proc/self/io rchar): what a backup read, whatever the code path.
func readChars(b *testing.B) int64 { return procReadChars(b, "self") }

// procReadChars is what process pid ("self" for this one) has read through read
// system calls so far (/proc/PID/io rchar).
func procReadChars(b *testing.B, pid string) int64 {
	path := "/proc/" + pid + "/io"
	data, err := os.ReadFile(path)
	if err != nil && pid == "self" {
		b.Skipf("no %s: %v", path, err)
	}
	if err != nil {
		b.Fatalf("read I/O counters: %v", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatalf("no rchar in %s", path)
	return 0
}

// dirSize is the space the files under dir take on disk.
func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// benchHarness is newHarness for a benchmark, with a container workload db that has
// one slot and a volume data.
func benchHarness(b *testing.B) *harness {
	data := b.TempDir()
	st, err := store.Open(filepath.Join(b.TempDir(), "strata.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	host := fake.NewHost(fake.HostOptions{})
	d, err := fake.New(fake.Options{Host: host, Images: []string{image}})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		b.Fatal(err)
	}
	h := &harness{st: st, d: d, host: host, data: data}
	h.snap = snapshot.New(snapshot.Options{Store: st, Drivers: reg, DataDir: data})
	h.m = backup.New(backup.Options{Store: st, Drivers: reg, Snapshots: h.snap, DataDir: data})
	spec := v1alpha1.WorkloadSpec{Image: image, Volumes: []v1alpha1.Volume{{Name: "data", MountPath: "/data"}}}
	dir := runtime.VolumeDir(data, "db", "data", 0)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	is := runtime.InstanceSpec{ID: "db-0", Workload: "db", Tier: v1alpha1.TierContainer, Image: image,
		Command: script.Serve(3600), Mounts: []runtime.Mount{{HostPath: dir, Path: "/data"}}}
	if _, err := d.Start(context.Background(), is); err != nil {
		b.Fatal(err)
	}
	status := &v1alpha1.WorkloadStatus{Tier: v1alpha1.TierContainer,
		Instances: []v1alpha1.Instance{{ID: is.ID, Tier: v1alpha1.TierContainer, State: string(runtime.StateRunning)}}}
	rec, err := objects.Record(v1alpha1.KindWorkload, v1alpha1.ObjectMeta{Name: "db"}, spec, status)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Create(context.Background(), rec); err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkVolumeBackup backs up a 1 GiB volume (first), and backs it up again after
// each change of 1% (second), with strata and, when it is installed, with restic into
// a repository of its own. read-MiB/op is what strata read from files (restic's reads
// are not counted).
func BenchmarkVolumeBackup(b *testing.B) {
	if testing.Short() {
		b.Skip("writes and backs up 1 GiB")
	}
	ctx := context.Background()
	h2 := benchHarness(b)
	vol := runtime.VolumeDir(h2.data, "db", "data", 0)
	fillVolume(b, vol)
	repoDirs := map[string]string{}
	newRepo := func() string {
		name := fmt.Sprintf("r%d", len(repoDirs)+1)
		repoDirs[name] = b.TempDir()
		if _, err := h2.m.InitRepo(ctx, v1alpha1.BackupRepositoryRequest{URL: "file://" + repoDirs[name], Name: name}); err != nil {
			b.Fatal(err)
		}
		return name
	}
	backup := func(repo string) {
		if _, err := h2.m.Create(ctx, v1alpha1.BackupRequest{Workloads: []string{"db"}, Repo: repo}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("strata/first", func(b *testing.B) {
		var read, size int64
		for range b.N {
			b.StopTimer()
			repo := newRepo()
			b.StartTimer()
			r0 := readChars(b)
			backup(repo)
			read += readChars(b) - r0
			b.StopTimer()
			size += dirSize(b, repoDirs[repo])
			b.StartTimer()
		}
		b.ReportMetric(float64(read)/float64(b.N)/(1<<20), "read-MiB/op")
		b.ReportMetric(float64(size)/float64(b.N)/(1<<20), "repo-MiB")
	})
	restores := 0 // restored workloads are named apart across the runs of b.N
	b.Run("strata/restore", func(b *testing.B) {
		repo := newRepo()
		bk, err := h2.m.Create(ctx, v1alpha1.BackupRequest{Workloads: []string{"db"}, Repo: repo}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			restores++
			as := fmt.Sprintf("copy%d", restores)
			if _, err := h2.m.Restore(ctx, bk.ID, v1alpha1.RestoreRequest{Repo: repo, As: as}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := os.RemoveAll(filepath.Dir(runtime.VolumeDir(h2.data, as, "data", 0))); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("strata/second", func(b *testing.B) {
		repo := newRepo()
		backup(repo)
		var read int64
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			changeVolume(b, vol, i)
			b.StartTimer()
			r0 := readChars(b)
			backup(repo)
			read += readChars(b) - r0
		}
		b.ReportMetric(float64(read)/float64(b.N)/(1<<20), "read-MiB/op")
	})
	restic, err := exec.LookPath("restic")
	if err != nil {
		b.Logf("restic not found: no side-by-side figures")
		return
	}
	run := func(b *testing.B, repo string, args ...string) {
		cmd := exec.Command(restic, append([]string{"-q", "-r", repo}, args...)...)
		cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_CACHE_DIR="+filepath.Join(filepath.Dir(repo), "cache"))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("restic %v: %v\n%s", args, err, out)
		}
	}
	b.Run("restic/first", func(b *testing.B) {
		var size int64
		for range b.N {
			b.StopTimer()
			repo := filepath.Join(b.TempDir(), "repo")
			run(b, repo, "init")
			b.StartTimer()
			run(b, repo, "backup", vol)
			b.StopTimer()
			size += dirSize(b, repo)
			b.StartTimer()
		}
		b.ReportMetric(float64(size)/float64(b.N)/(1<<20), "repo-MiB")
	})
	b.Run("restic/restore", func(b *testing.B) {
		repo := filepath.Join(b.TempDir(), "repo")
		run(b, repo, "init")
		run(b, repo, "backup", vol)
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			target := b.TempDir()
			b.StartTimer()
			run(b, repo, "restore", "latest", "--target", target)
			b.StopTimer()
			if err := os.RemoveAll(target); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("restic/second", func(b *testing.B) {
		repo := filepath.Join(b.TempDir(), "repo")
		run(b, repo, "init")
		run(b, repo, "backup", vol)
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			changeVolume(b, vol, 1000+i)
			b.StartTimer()
			run(b, repo, "backup", vol)
		}
	})
}
