package testmain_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/internal/testmain"
)

// In a child run (envMark set) this test binary is the harnessed one: TestRun returns at
// once, or blocks when envBlock is set; the teardown writes "torn down" to the file envMark
// names, and fails when envFail is set.
const (
	envMark  = "STRATA_TESTMAIN_MARK"
	envFail  = "STRATA_TESTMAIN_FAIL"
	envBlock = "STRATA_TESTMAIN_BLOCK"
)

func TestMain(m *testing.M) {
	mark := os.Getenv(envMark)
	if mark == "" {
		os.Exit(m.Run())
	}
	os.Exit(testmain.Run(m, "test harness", func() error {
		if err := os.WriteFile(mark, []byte("torn down"), 0o600); err != nil {
			return err
		}
		if os.Getenv(envFail) != "" {
			return errors.New("teardown found leftovers")
		}
		return nil
	}))
}

// child starts this test binary as a harnessed run of TestRun, with the marker file in dir.
func child(t *testing.T, block, fail bool, dir string) (*exec.Cmd, *output) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRun$", "-test.v")
	cmd.Env = append(os.Environ(), envMark+"="+filepath.Join(dir, "mark"))
	if fail {
		cmd.Env = append(cmd.Env, envFail+"=1")
	}
	if block {
		cmd.Env = append(cmd.Env, envBlock+"=1")
	}
	out := &output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// output collects a child's output while the test reads it.
type output struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// TestRun: the teardown runs after the tests (a failing one fails the run) and when the
// run is interrupted, which then ends at once with exit code 1.
func TestRun(t *testing.T) {
	if os.Getenv(envMark) != "" { // the child
		if os.Getenv(envBlock) != "" {
			os.Stdout.WriteString("blocking\n")
			time.Sleep(time.Minute)
		}
		return
	}
	for _, tc := range []struct {
		name     string
		fail     bool
		signal   bool
		wantCode int
	}{
		{"passes", false, false, 0},
		{"teardown fails", true, false, 1},
		{"interrupted", false, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd, out := child(t, tc.signal, tc.fail, dir)
			if tc.signal {
				deadline := time.Now().Add(30 * time.Second)
				for !strings.Contains(out.String(), "blocking") {
					if time.Now().After(deadline) {
						_ = cmd.Process.Kill()
						t.Fatalf("the child did not start its test: %s", out)
					}
					time.Sleep(20 * time.Millisecond)
				}
				_ = cmd.Process.Signal(syscall.SIGTERM)
			}
			begin := time.Now()
			err := cmd.Wait()
			if code := exitCode(err); code != tc.wantCode {
				t.Errorf("exit code %d (%v), want %d; output:\n%s", code, err, tc.wantCode, out)
			}
			if tc.signal && time.Since(begin) > 20*time.Second {
				t.Errorf("the interrupted run took %v to end", time.Since(begin))
			}
			if b, err := os.ReadFile(filepath.Join(dir, "mark")); err != nil || string(b) != "torn down" {
				t.Errorf("teardown mark %q, %v; want it written; output:\n%s", b, err, out)
			}
		})
	}
}
