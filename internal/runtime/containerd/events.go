package containerd

import (
	"context"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/events"
	"github.com/containerd/containerd/protobuf"
	"github.com/containerd/typeurl/v2"

	"strata.dev/strata/internal/runtime"
)

// Topics of containerd's task events.
const (
	topicExit = "/tasks/exit"
	topicOOM  = "/tasks/oom"
)

// eventBuffer is how many undelivered events a subscriber may have before
// further ones are dropped.
const eventBuffer = 256

// subscribe subscribes to the given task topics in the driver's namespace.
func (d *Driver) subscribe(ctx context.Context, topics ...string) (<-chan *events.Envelope, <-chan error) {
	filters := make([]string, len(topics))
	for i, t := range topics {
		filters[i] = fmt.Sprintf(`namespace==%s,topic==%q`, d.cfg.Namespace, t)
	}
	return d.client.EventService().Subscribe(ctx, filters...)
}

// Events implements runtime.EventSource. The channel also closes when the
// subscription to containerd breaks (containerd restarted); subscribe again
// and List to catch up.
func (d *Driver) Events(ctx context.Context) (<-chan runtime.Event, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	envs, errs := d.subscribe(sctx, topicExit, topicOOM)
	out := make(chan runtime.Event, eventBuffer)
	go func() {
		defer close(out)
		defer cancel()
		for {
			select {
			case <-sctx.Done():
				return
			case <-d.closed:
				return
			case err := <-errs:
				if err != nil && sctx.Err() == nil {
					d.log.Warn("event subscription ended", "err", err)
				}
				return
			case env := <-envs:
				e, ok := d.convert(sctx, env)
				if !ok {
					continue
				}
				select {
				case out <- e:
				default:
					d.log.Warn("runtime event dropped: subscriber is not reading", "instance", e.ID, "type", string(e.Type))
				}
			}
		}
	}()
	return out, nil
}

// convert turns a containerd task event about an owned instance's main
// process into a runtime.Event.
func (d *Driver) convert(ctx context.Context, env *events.Envelope) (runtime.Event, bool) {
	if env == nil || env.Event == nil {
		return runtime.Event{}, false
	}
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		d.log.Warn("undecodable containerd event", "topic", env.Topic, "err", err)
		return runtime.Event{}, false
	}
	var e runtime.Event
	switch ev := v.(type) {
	case *apievents.TaskExit:
		if ev.ID != ev.ContainerID {
			return runtime.Event{}, false // an exec'd process
		}
		e = runtime.Event{Type: runtime.EventExit, ID: ev.ContainerID, Time: protobuf.FromTimestamp(ev.ExitedAt), ExitCode: int(ev.ExitStatus)}
	case *apievents.TaskOOM:
		e = runtime.Event{Type: runtime.EventOOM, ID: ev.ContainerID, Time: env.Timestamp}
	default:
		return runtime.Event{}, false
	}
	_, info, err := d.load(ctx, e.ID)
	if err != nil {
		return runtime.Event{}, false // not ours, or removed already
	}
	if e.Type == runtime.EventExit {
		e.OOMKilled = parseLabels(info.Labels).oom || d.oomKills(e.ID) > 0
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	return e, true
}

// watchOOM records every OOM kill containerd reports for an owned instance
// as a label on its container, so that Status reports it even where the
// memory cgroup cannot be read (an unknown cgroup layout). It runs until
// Close.
func (d *Driver) watchOOM() {
	ctx, cancel := context.WithCancel(context.Background())
	envs, errs := d.subscribe(ctx, topicOOM)
	d.watcher.Add(1)
	go func() {
		defer d.watcher.Done()
		defer cancel()
		for {
			select {
			case <-d.closed:
				return
			case err := <-errs:
				if err != nil {
					d.log.Warn("OOM watch ended; OOM kills are read from cgroups only", "err", err)
				}
				return
			case env := <-envs:
				e, ok := d.convert(ctx, env)
				if !ok || e.Type != runtime.EventOOM {
					continue
				}
				c, err := d.client.LoadContainer(ctx, e.ID)
				if err == nil {
					_, err = c.SetLabels(ctx, map[string]string{labelOOM: "true"})
				}
				if err != nil {
					d.log.Warn("recording an OOM kill", "instance", e.ID, "err", err)
				}
			}
		}
	}()
}
