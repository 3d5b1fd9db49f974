package nodevm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"strata.dev/strata/internal/runtime"
)

// emptyStopGrace is how long an empty node VM gets to power off when it is
// removed before QEMU is killed.
const emptyStopGrace = 10 * time.Second

// removeEmpty stops and removes the node VMs that have held no instance for
// EmptyGrace, until the driver is closed. It looks every tenth of the grace
// (at least every 10 s, at most every 100 ms), and counts the grace from
// when this value first saw the node VM empty: a new Driver value gives the
// empty node VMs it finds a whole grace.
func (d *Driver) removeEmpty() {
	every := min(max(d.cfg.EmptyGrace/10, 100*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	since := map[string]time.Time{}
	for {
		d.sweepEmpty(since, time.Now())
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
	}
}

// sweepEmpty notes which node VMs are empty at now and removes those that
// have been for EmptyGrace.
func (d *Driver) sweepEmpty(since map[string]time.Time, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	list, err := d.cfg.QEMU.List(ctx)
	if err != nil {
		d.log.Warn("nodevm driver: list node VMs", "err", err)
		return
	}
	recs, err := d.records()
	if err != nil {
		d.log.Warn("nodevm driver: list instances", "err", err)
		return
	}
	empty := map[string]bool{}
	class := map[string]string{}
	for _, st := range list {
		c, ok := d.isNodeVM(st)
		if !ok {
			continue
		}
		class[st.ID] = c
		empty[st.ID] = d.isEmpty(st.ID, recs)
	}
	for _, vm := range dueEmpty(since, empty, now, d.cfg.EmptyGrace) {
		if ctx.Err() != nil {
			return
		}
		if err := d.removeIfEmpty(ctx, class[vm], vm); err != nil {
			d.log.Warn("nodevm driver: remove an empty node VM", "vm", vm, "err", err)
			continue
		}
		delete(since, vm)
	}
}

// isEmpty reports whether node VM vm holds no instance: no record names it
// (an instance that has ended holds it until it is removed) and no Start is
// putting one into it.
func (d *Driver) isEmpty(vm string, recs []*record) bool {
	if _, ids, _ := d.reserved(vm); len(ids) > 0 {
		return false
	}
	return !slices.ContainsFunc(recs, func(r *record) bool { return r.VM == vm })
}

// dueEmpty records in since when each node VM of empty (every node VM, and
// whether it is empty now) was first seen empty, forgets those that are not
// or are gone, and returns those that have been empty for grace at now,
// sorted.
func dueEmpty(since map[string]time.Time, empty map[string]bool, now time.Time, grace time.Duration) []string {
	for vm := range since {
		if !empty[vm] {
			delete(since, vm)
		}
	}
	var due []string
	for vm, e := range empty {
		if !e {
			continue
		}
		t, ok := since[vm]
		if !ok {
			since[vm], t = now, now
		}
		if now.Sub(t) >= grace {
			due = append(due, vm)
		}
	}
	slices.Sort(due)
	return due
}

// removeIfEmpty stops and removes node VM vm of class, with its console log,
// unless it holds an instance now.
func (d *Driver) removeIfEmpty(ctx context.Context, class, vm string) error {
	unlockClass := lock("class/" + d.cfg.StateDir + "/" + class)
	defer unlockClass()
	unlock := lock("vm/" + vm)
	defer unlock()
	recs, err := d.records()
	if err != nil {
		return err
	}
	if !d.isEmpty(vm, recs) {
		return nil
	}
	if err := d.cfg.QEMU.Stop(ctx, vm, emptyStopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) && !errors.Is(err, runtime.ErrNotRunning) {
		return err
	}
	// The node VM's files go before the qemu driver's instance, so that once
	// the node VM is no longer listed nothing of it is left.
	if err := d.removeShare(vm); err != nil {
		return fmt.Errorf("node VM %s: its share: %w", vm, err)
	}
	_ = os.Remove(d.upPath(vm))
	_ = os.Remove(d.consolePath(vm))
	_ = os.Remove(d.initrdPath(vm))
	if err := d.cfg.QEMU.Remove(ctx, vm); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return err
	}
	d.log.Info("nodevm driver: empty node VM removed", "vm", vm, "class", class, "grace", d.cfg.EmptyGrace)
	return nil
}
