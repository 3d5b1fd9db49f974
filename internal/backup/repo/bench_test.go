package repo

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// benchSize is the file one benchmark operation backs up or restores.
const benchSize = 32 * mib

// shmBackend makes file repositories in /dev/shm (memory), so that the
// figures measure strata rather than a disk.
func shmBackend() backend {
	return backend{name: "file-shm", url: func(t testing.TB) string {
		dir, err := os.MkdirTemp(shmOrTemp(), "strata-bench-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return "file://" + filepath.Join(dir, "repo")
	}}
}

// benchData fills b with one of the benchmark contents:
//   - random: incompressible, every chunk new;
//   - typical: like a disk image or volume, 1 MiB stretches alternating
//     between zeros and text (words from a small vocabulary).
func benchData(kind string, seed uint64, b []byte) {
	switch kind {
	case "random":
		fillRandom(seed, b)
	case "typical":
		words := []string{"strata ", "workload ", "volume ", "backup ", "the ", "of ", "and ", "container ",
			"disk ", "chunk ", "GET /index.html 200\n", "2025-03-12T10:00:00Z ", "error ", "ok\n", "{\"id\":", "42,"}
		rng := rand.New(rand.NewPCG(seed, 1))
		for off := 0; off < len(b); off += mib {
			seg := b[off:min(off+mib, len(b))]
			if off/mib%2 == 0 {
				clear(seg)
				continue
			}
			for i := 0; i < len(seg); {
				i += copy(seg[i:], words[rng.IntN(len(words))])
			}
		}
	}
}

func benchBackends() []backend { return []backend{shmBackend(), s3Backend()} }

// cpuMeter adds up the CPU time (user and system) that the benchmark's
// timed sections cost: this process's and, for S3, the server's. Figures
// per CPU-second stay meaningful on a busy machine, where wall-clock
// MB/s mostly measures the other load.
type cpuMeter struct {
	b          *testing.B
	server     bool
	self, srv  time.Duration
	self0, sv0 time.Duration
}

func newCPUMeter(b *testing.B, be backend) *cpuMeter {
	return &cpuMeter{b: b, server: be.name == "s3" && s3 != nil}
}

func (m *cpuMeter) start() {
	m.self0 = selfCPU()
	if m.server {
		m.sv0 = pidCPU(m.b, s3.cmd.Process.Pid)
	}
}

func (m *cpuMeter) stop() {
	m.self += selfCPU() - m.self0
	if m.server {
		m.srv += pidCPU(m.b, s3.cmd.Process.Pid) - m.sv0
	}
}

// report adds MB per CPU-second of this process and, for S3, of this
// process and the server together.
func (m *cpuMeter) report(bytes int64) {
	if m.self > 0 {
		m.b.ReportMetric(float64(bytes)/1e6/m.self.Seconds(), "MB/cpu-s")
	}
	if m.server && m.self+m.srv > 0 {
		m.b.ReportMetric(float64(bytes)/1e6/(m.self+m.srv).Seconds(), "MB/cpu-s+srv")
	}
}

func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pidCPU reads a process's user and system time from /proc (in clock
// ticks of 10 ms, the kernel's USER_HZ on Linux).
func pidCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (which is in parentheses and may hold
	// spaces): state is field 3, utime 14, stime 15.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkBackup measures backing up benchSize bytes of new content (each
// operation's content differs, so every chunk is new).
func BenchmarkBackup(b *testing.B) {
	for _, be := range benchBackends() {
		for _, kind := range []string{"random", "typical"} {
			b.Run(be.name+"/"+kind, func(b *testing.B) {
				r, _, _ := newRepo(b, be)
				ctx := context.Background()
				data := make([]byte, benchSize)
				cpu := newCPUMeter(b, be)
				b.SetBytes(benchSize)
				b.ResetTimer()
				for i := range b.N {
					b.StopTimer()
					benchData(kind, uint64(i)+1000, data)
					b.StartTimer()
					cpu.start()
					w := r.NewBackup(Meta{Group: "bench"})
					if err := w.AddBytes(ctx, "f", data, 0o600); err != nil {
						b.Fatal(err)
					}
					if _, err := w.Commit(ctx); err != nil {
						b.Fatal(err)
					}
					cpu.stop()
				}
				cpu.report(int64(b.N) * benchSize)
			})
		}
	}
}

// BenchmarkRestore measures restoring a benchSize file to /dev/shm.
func BenchmarkRestore(b *testing.B) {
	for _, be := range benchBackends() {
		for _, kind := range []string{"random", "typical"} {
			b.Run(be.name+"/"+kind, func(b *testing.B) {
				r, _, _ := newRepo(b, be)
				ctx := context.Background()
				data := make([]byte, benchSize)
				benchData(kind, 1, data)
				m := backupFiles(b, r, Meta{Group: "bench"}, testFile{name: "f", data: data})
				dir, err := os.MkdirTemp(shmOrTemp(), "strata-bench-restore-")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { os.RemoveAll(dir) })
				f, err := os.Create(filepath.Join(dir, "f"))
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				cpu := newCPUMeter(b, be)
				b.SetBytes(benchSize)
				b.ResetTimer()
				cpu.start()
				for range b.N {
					if err := f.Truncate(0); err != nil {
						b.Fatal(err)
					}
					if err := r.RestoreTo(ctx, m, "f", f); err != nil {
						b.Fatal(err)
					}
				}
				cpu.stop()
				cpu.report(int64(b.N) * benchSize)
			})
		}
	}
}
