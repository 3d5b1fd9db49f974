package qemu

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want float64
		ok   bool
	}{
		{"plain", "42 (qemu-system-x86) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 0 0", 3, true},
		{"spaces in name", "7 (a ) b) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0", 0.03, true},
		{"short", "7 (x) R 1 2", 0, false},
		{"no name", "7 x R", 0, false},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 a 2 0", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("parseStatCPU: err = %v, want ok=%v", err, tt.ok)
			}
			if got != tt.want {
				t.Errorf("parseStatCPU = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	got, err := parseStatusRSS([]byte("Name:\tqemu\nVmPeak:\t  9 kB\nVmRSS:\t  2048 kB\nThreads: 3\n"))
	if err != nil || got != 2048<<10 {
		t.Fatalf("parseStatusRSS = %d, %v; want %d", got, err, 2048<<10)
	}
	if _, err := parseStatusRSS([]byte("Name:\tkthreadd\n")); err == nil {
		t.Fatal("parseStatusRSS without VmRSS: no error")
	}
}

// TestProcStatsOfSelf reads the test process's own /proc files the way Stats
// reads QEMU's.
func TestProcStatsOfSelf(t *testing.T) {
	if _, err := procCPUSeconds(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	rss, err := procRSSBytes(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("procRSSBytes(self) = %d, %v; want > 0", rss, err)
	}
}
