package netseg

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRevert(t *testing.T) {
	var ran []string
	step := func(name string, err error) func() error {
		return func() error { ran = append(ran, name); return err }
	}
	var rv revert
	rv.add("bridge", step("bridge", nil))
	rv.add("netns", step("netns", errors.New("busy")))
	rv.add("veth", step("veth", nil))
	err := rv.undo()
	if want := []string{"veth", "netns", "bridge"}; !slices.Equal(ran, want) {
		t.Errorf("undo ran %v, want %v (newest first, all of them)", ran, want)
	}
	if err == nil || !strings.Contains(err.Error(), "undo netns: busy") {
		t.Errorf("undo error = %v", err)
	}
	ran = nil
	if err := rv.undo(); err != nil || len(ran) > 0 {
		t.Errorf("second undo ran %v, %v", ran, err)
	}
}

func TestRevertUndoOn(t *testing.T) {
	run := func(fail bool) (ran bool, err error) {
		var rv revert
		defer rv.undoOn(&err)
		rv.add("step", func() error { ran = true; return errors.New("cannot undo") })
		if fail {
			return ran, errors.New("step 2")
		}
		return ran, nil
	}
	if _, err := run(false); err != nil {
		t.Errorf("success: %v", err)
	}
	_, err := run(true)
	if err == nil || !strings.Contains(err.Error(), "step 2") || !strings.Contains(err.Error(), "undo step: cannot undo") {
		t.Errorf("failure: %v, want both the failure and the undo error", err)
	}
}
