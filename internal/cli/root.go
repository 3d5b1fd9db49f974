// Package cli is strata's command line: one file per command, built on cobra. Commands parse
// flags, call the packages that do the work, and print; they hold no logic of their own.
//
// Exit codes: 0 success, 1 runtime failure, 2 invalid input or usage. With -o json a command
// prints exactly one JSON document on stdout; messages for people go to stderr.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"strata.dev/strata/internal/diag"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitInvalid = 2
)

// Streams are where a command reads and writes.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// runtimeError marks a failure that is not the user's input: exit code 1.
type runtimeError struct{ err error }

func (e runtimeError) Error() string { return e.err.Error() }
func (e runtimeError) Unwrap() error { return e.err }

// failure wraps err as a runtime failure (exit 1).
func failure(err error) error { return runtimeError{err} }

// invalidInput reports problems with the user's input that were already printed: exit 2.
var errInvalidInput = errors.New("invalid input")

// NewRoot builds the strata command tree.
func NewRoot(s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "strata",
		Short: "One control plane for containers, sandboxes and virtual machines",
		Long: `strata runs containers, gVisor sandboxes and virtual machines under one declarative API.

It decides how strongly each workload must be isolated (container < sandbox < vm) and
explains why, imports what you already have (Kubernetes manifests, compose files, VMware
inventories exported by RVTools), plans fleets, and runs workloads on one host: strata serve
is the daemon; apply, get, describe, logs, exec, events and delete talk to it.`,
		Example: `  # Which tier does each workload need, and why?
  strata assess -f deploy/ -f inventory.csv

  # Run them on this host
  strata serve --start-containerd &
  strata apply -f app.yaml && strata get workloads

  # Check documents before applying them
  strata validate -f app.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nRun '%s --help' for usage", err, c.CommandPath())
	})
	socketFlag(root)
	root.AddCommand(newVersion(s), newValidate(s), newAssess(s), newPlan(s),
		newServe(s), newApply(s), newGet(s), newDescribe(s), newDelete(s), newEvents(s),
		newLogs(s), newExec(s), newImage(s), newDashboard(s), newExport(s), newImport(s))
	root.AddCommand(newSimulate(s), newSnapshot(s), newBackup(s), newRepo(s), newRestore(s), newDrill(s))
	root.AddCommand(newOperator(s))
	return root
}

// Execute runs the command line args and returns the process exit code.
func Execute(args []string, s Streams) int {
	root := NewRoot(s)
	root.SetArgs(args)
	err := root.Execute()
	var rt runtimeError
	var dl diag.List
	var ec exitCodeError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ec):
		return ec.code
	case errors.Is(err, errInvalidInput):
		return ExitInvalid
	case errors.As(err, &dl):
		fmt.Fprintln(s.Err, dl.Error())
		return ExitInvalid
	case errors.As(err, &rt):
		fmt.Fprintln(s.Err, "error:", rt.Error())
		return ExitFailure
	default: // cobra's own errors: unknown commands and flags, wrong argument counts
		fmt.Fprintln(s.Err, "error:", err)
		return ExitInvalid
	}
}

// reportProblems prints input problems, one per line, and returns errInvalidInput if any.
func reportProblems(w io.Writer, errs diag.List) error {
	if len(errs) == 0 {
		return nil
	}
	errs.Sort()
	fmt.Fprintln(w, errs.Error())
	return errInvalidInput
}
