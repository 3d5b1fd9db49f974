package netseg

import (
	"errors"
	"fmt"
)

// revert collects the undo actions of a multi-step operation. After each
// step succeeds, the caller adds the action that undoes it; if a later step
// fails, undo runs the actions in reverse order. Typical use:
//
//	var rv revert
//	defer rv.undoOn(&err)
//	create A; rv.add("remove A", undoA)
//	create B; rv.add("remove B", undoB)
//	return nil // success: undoOn does nothing
type revert struct {
	steps []revertStep
}

type revertStep struct {
	what string
	undo func() error
}

// add records how to undo the step just done.
func (r *revert) add(what string, undo func() error) {
	r.steps = append(r.steps, revertStep{what, undo})
}

// undo runs every recorded action, newest first, and forgets them. It runs
// them all even when some fail and returns their errors joined.
func (r *revert) undo() error {
	var errs []error
	for i := len(r.steps) - 1; i >= 0; i-- {
		s := r.steps[i]
		if err := s.undo(); err != nil {
			errs = append(errs, fmt.Errorf("undo %s: %w", s.what, err))
		}
	}
	r.steps = nil
	return errors.Join(errs...)
}

// undoOn undoes everything when *err is not nil and joins what the undo
// could not do to *err. Call it deferred.
func (r *revert) undoOn(err *error) {
	if *err == nil {
		return
	}
	if uerr := r.undo(); uerr != nil {
		*err = errors.Join(*err, uerr)
	}
}
