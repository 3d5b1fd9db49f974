package nodevm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
	"strata.dev/strata/internal/runtime"
)

// How often a running container's output is copied to its log: every
// logPoll while it writes, backing off to logPollIdle while it is silent.
// Each copy is a request to the node VM's agent, and a node VM carries
// dozens of containers: polled at the fast rate, their idle ones kept its
// agent (and, under emulation, its CPU) busy enough that starts took tens
// of seconds.
const (
	logPoll     = 250 * time.Millisecond
	logPollIdle = 4 * time.Second
)

// lockPath is the file whose lock (flock) a Driver value holds while it
// watches instance id: one value at a time copies the container's output
// and reports its end, even when two values share the state directory.
func (d *Driver) lockPath(id string) string {
	return filepath.Join(d.instancesDir(), id+".lock")
}

// adopt starts watching instance id unless this value does already.
func (d *Driver) adopt(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.watchers[id] != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.watchers[id] = cancel
	d.watched.Add(1)
	go func() {
		defer d.watched.Done()
		d.watch(ctx, id)
		d.mu.Lock()
		delete(d.watchers, id)
		d.mu.Unlock()
		cancel()
	}()
}

// unwatch stops watching id.
func (d *Driver) unwatch(id string) {
	d.mu.Lock()
	cancel := d.watchers[id]
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// watch copies instance id's output to its log until it has ended, then
// records its exit code and reports it. It returns when the instance is
// gone or ctx ends.
func (d *Driver) watch(ctx context.Context, id string) {
	f, err := d.own(ctx, id)
	if f == nil {
		if err != nil {
			d.log.Warn("nodevm driver: watch", "id", id, "err", err)
		} else if ctx.Err() == nil {
			// Another value sharing the state directory watched it to its
			// end; this value's subscribers hear of that end too.
			d.publishEnded(id)
		}
		return
	}
	defer f.Close() // and with it the lock

	type result struct {
		rep guest.NodeReply
		err error
	}
	for {
		r, err := d.readRecord(id)
		if err != nil {
			return
		}
		if r.Finished {
			// It ended while its last watcher stopped: copy the rest.
			d.copyLog(ctx, r)
			d.publishEnded(id)
			return
		}
		waited := make(chan result, 1)
		go func() {
			rep, err := d.node(ctx, r.VM, guest.NodeRequest{Op: guest.NodeWait, ID: id})
			waited <- result{rep, err}
		}()
		every := logPoll
		tick := time.NewTimer(every)
		var res result
	poll:
		for {
			select {
			case <-ctx.Done():
				tick.Stop()
				<-waited
				return
			case <-tick.C:
				if d.copyLog(ctx, r) {
					every = logPoll
				} else {
					every = min(2*every, logPollIdle)
				}
				tick.Reset(every)
			case res = <-waited:
				break poll
			}
		}
		tick.Stop()
		switch {
		case ctx.Err() != nil:
			return
		case res.err == nil && res.rep.ExitCode != nil:
			d.copyLog(ctx, r)
			if st, err := d.finish(id, exitOf(res.rep), ""); err == nil {
				d.publishExit(st)
			}
			return
		case vmGone(res.err) || noContainer(res.err):
			if st, err := d.live(ctx, r); err == nil && st.State == runtime.StateExited {
				d.publishExit(st)
			}
			return
		}
		// The connection to the agent broke: wait again.
		d.log.Warn("nodevm driver: wait for a container", "id", id, "vm", r.VM, "err", res.err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// publishEnded reports the end of instance id that its record holds; an
// instance that was removed meanwhile has nothing to report.
func (d *Driver) publishEnded(id string) {
	if r, err := d.readRecord(id); err == nil && r.Finished {
		d.publishExit(r.status(runtime.StateExited, 0, ""))
	}
}

// own takes the watcher's lock of instance id, waiting while another
// Driver value holds it; nil (and no error) once the instance is gone or
// has ended, or ctx ends.
func (d *Driver) own(ctx context.Context, id string) (*os.File, error) {
	for {
		f, err := os.OpenFile(d.lockPath(id), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			// Locked; unless Remove deleted the file meanwhile (and a new
			// instance of the ID has another one).
			held, err1 := f.Stat()
			now, err2 := os.Stat(d.lockPath(id))
			if err1 == nil && err2 == nil && os.SameFile(held, now) {
				return f, nil
			}
		}
		_ = f.Close()
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(time.Second):
		}
		if r, err := d.readRecord(id); err != nil || r.Finished {
			return nil, nil
		}
	}
}

// copyLog appends what the container has written since the last copy to
// its log file, and reports whether there was any.
func (d *Driver) copyLog(ctx context.Context, r *record) (copied bool) {
	if r.LogPath == "" {
		return false
	}
	f, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.log.Warn("nodevm driver: open the log", "id", r.ID, "path", r.LogPath, "err", err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return
	}
	off := max(fi.Size()-r.LogBase, 0)
	for {
		rep, err := d.node(ctx, r.VM, guest.NodeRequest{Op: guest.NodeLogs, ID: r.ID, Offset: off})
		if err != nil {
			if !errors.Is(err, context.Canceled) && !noContainer(err) {
				d.log.Warn("nodevm driver: copy the log", "id", r.ID, "err", err)
			}
			return
		}
		if len(rep.Log) == 0 {
			return
		}
		if _, err := f.Write(rep.Log); err != nil {
			d.log.Warn("nodevm driver: write the log", "id", r.ID, "path", r.LogPath, "err", err)
			return
		}
		off, copied = rep.NextOffset, true
	}
}
