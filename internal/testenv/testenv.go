// Package testenv lets a test say that the host lacks something it needs.
// On a developer's machine the test skips, saying what is missing. In CI
// (.ci/run: CI=true, as root) the host has everything `make host-setup`
// installs, so a missing piece there is a broken set-up and the test
// fails: a test that CI skips is a test nobody runs. Only tests import it.
package testenv

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in CI as root, where the host has what
// `make host-setup` installs.
func InCI() bool { return os.Getenv("CI") == "true" && os.Geteuid() == 0 }

// Skipf skips tb with the message, or fails it in CI.
func Skipf(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("CI=true, where make host-setup provides what this test needs, yet: "+format, args...)
	}
	tb.Skipf(format, args...)
}
