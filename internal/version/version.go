// Package version tells which build of strata is running. The build sets Version and Commit
// with -ldflags "-X strata.dev/strata/internal/version.Version=...".
package version

import (
	"fmt"
	"runtime"
)

// Set at build time.
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one-line version `strata version` prints.
func String() string {
	return fmt.Sprintf("strata %s (commit %s, %s, %s/%s)", Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
