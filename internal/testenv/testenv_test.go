package testenv_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"strata.dev/strata/internal/testenv"
)

// TestSkipf: the same missing piece skips a test outside CI and fails it in
// CI (run as a child test binary, so that this test sees both ends).
func TestSkipf(t *testing.T) {
	if os.Getenv("STRATA_TESTENV_CHILD") == "1" {
		testenv.Skipf(t, "no %s here", "widget")
		return
	}
	for _, tt := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"", false, "--- SKIP: TestSkipf"},
		{"true", os.Geteuid() == 0, "no widget here"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipf$", "-test.v")
		cmd.Env = append(os.Environ(), "STRATA_TESTENV_CHILD=1", "CI="+tt.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tt.wantFail || !strings.Contains(string(out), tt.want) {
			t.Errorf("CI=%q: failed %v, output:\n%s\nwant failed %v and %q", tt.ci, failed, out, tt.wantFail, tt.want)
		}
		if tt.wantFail && !strings.Contains(string(out), "--- FAIL: TestSkipf") {
			t.Errorf("CI=%q: the test did not fail:\n%s", tt.ci, out)
		}
	}
}
