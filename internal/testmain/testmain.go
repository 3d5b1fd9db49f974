// Package testmain runs a test binary around a harness that must be torn down whatever
// happens: after the tests, and also when the run is interrupted (SIGINT, SIGTERM), so
// that no daemon, mount or directory a harness made outlives it. The private containerd
// (ctrdtest) and the Kubernetes control plane (kubetest) of the tests use it.
package testmain

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// Run runs m's tests, then teardown, and returns the exit code for os.Exit: the tests'
// code, or 1 when teardown fails. On SIGINT or SIGTERM it runs teardown and exits 1 at
// once. name says whose teardown it is in what it prints.
func Run(m *testing.M, name string, teardown func() error) int {
	// A closed output pipe must not kill the run before its teardown.
	signal.Ignore(syscall.SIGPIPE)
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-interrupted
		fmt.Fprintf(os.Stderr, "%s: %v: tearing down\n", name, sig)
		if err := teardown(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}()
	code := m.Run()
	signal.Stop(interrupted)
	if err := teardown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}
