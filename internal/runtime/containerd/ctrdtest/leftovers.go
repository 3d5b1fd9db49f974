package ctrdtest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	ctr "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/snapshots"

	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/containerd"
	"strata.dev/strata/internal/testimage"
)

// ImportImage builds the busybox test image (package testimage) named ref
// and imports it into d.
func ImportImage(t testing.TB, d runtime.ImageImporter, ref string) {
	t.Helper()
	var buf bytes.Buffer
	if err := testimage.Build(&buf, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ImportImage(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
}

// Leftovers lists what the test namespace holds beyond its images, one
// string per thing: containers, leases, and snapshots that are not committed
// layers (a container's writable snapshot, a view), and the image views
// still mounted. Between tests it should be empty.
func (e *Env) Leftovers(ctx context.Context) ([]string, error) {
	c, err := e.client(10 * time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	l, err := leftovers(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, mnt := range mountsUnder(e.viewsDir()) {
		l = append(l, "mount "+mnt)
	}
	return l, nil
}

// leftover is one thing a test left in containerd and how to remove it.
type leftover struct {
	what   string
	remove func(context.Context) error
}

// leftovers lists the leftovers in c's namespace.
func leftovers(ctx context.Context, c *ctr.Client) ([]string, error) {
	ls, err := find(ctx, c)
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.what
	}
	return out, err
}

// removeLeftovers removes the leftovers in c's namespace and reports each one
// (and each failure to remove it).
func removeLeftovers(ctx context.Context, c *ctr.Client) []string {
	ls, err := find(ctx, c)
	var problems []string
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, l := range ls {
		problems = append(problems, l.what+" left by a test")
		if err := l.remove(ctx); err != nil {
			problems = append(problems, fmt.Sprintf("remove %s: %v", l.what, err))
		}
	}
	return problems
}

// find lists the leftovers in the order they are best removed: containers
// (with their tasks and snapshots), other snapshots, then leases.
func find(ctx context.Context, c *ctr.Client) ([]leftover, error) {
	var out []leftover
	cs, err := c.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	containerSnapshots := map[string]bool{}
	for _, cont := range cs {
		if info, err := cont.Info(ctx, ctr.WithoutRefreshedMetadata); err == nil {
			containerSnapshots[info.SnapshotKey] = true
		}
		out = append(out, leftover{"container " + cont.ID(), func(ctx context.Context) error {
			if task, err := cont.Task(ctx, nil); err == nil {
				_, _ = task.Delete(ctx, ctr.WithProcessKill)
			}
			if err := cont.Delete(ctx, ctr.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			return nil
		}})
	}
	sn := c.SnapshotService(containerd.DefaultSnapshotter)
	err = sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted && !containerSnapshots[info.Name] {
			out = append(out, leftover{fmt.Sprintf("%s snapshot %s", info.Kind, info.Name), func(ctx context.Context) error {
				if err := sn.Remove(ctx, info.Name); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
				return nil
			}})
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("list snapshots: %w", err)
	}
	lm := c.LeasesService()
	ls, err := lm.List(ctx)
	if err != nil {
		return out, fmt.Errorf("list leases: %w", err)
	}
	for _, l := range ls {
		out = append(out, leftover{"lease " + l.ID, func(ctx context.Context) error {
			if err := lm.Delete(ctx, l); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			return nil
		}})
	}
	return out, nil
}
