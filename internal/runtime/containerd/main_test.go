package containerd_test

import (
	"os"
	"testing"

	"strata.dev/strata/internal/runtime/containerd/ctrdtest"
)

// env is the private containerd the tests run against, started by TestMain.
var env ctrdtest.Env

func TestMain(m *testing.M) {
	if os.Getenv(crashEnv) != "" {
		// A child process of TestViewLeftByCrash, not a test run.
		os.Exit(crashWhileViewing())
	}
	os.Exit(env.Main(m, "strata-ctrd-"))
}
