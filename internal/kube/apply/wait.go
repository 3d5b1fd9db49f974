package apply

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"strata.dev/strata/internal/kube/render"
)

// NotReadyError is a wait that timed out: what was not ready, and why.
type NotReadyError struct {
	After    time.Duration
	NotReady []string // one per object: kind/name: why
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("not ready after %s: %s (check the objects' events with kubectl describe, or wait longer with --timeout)",
		e.After, strings.Join(e.NotReady, "; "))
}

// Wait polls the Deployments, StatefulSets and VirtualMachines among objs until each is
// ready, showing progress on Options.Progress, one line per workload. It fails with a
// *NotReadyError when Options.Timeout passes first.
func Wait(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, opts Options) error {
	opts = opts.withDefaults()
	var watched []*unstructured.Unstructured
	for _, u := range objs {
		if waited(u.GetKind()) {
			watched = append(watched, u)
		}
	}
	if len(watched) == 0 {
		return nil
	}
	show := newProgress(opts.Progress)
	deadline := time.NewTimer(opts.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(opts.Poll)
	defer tick.Stop()
	var states []objectState
	for {
		cur, err := poll(ctx, c, watched)
		if err != nil {
			return err
		}
		states = cur
		show.draw(states)
		if len(pending(states)) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return &NotReadyError{After: opts.Timeout, NotReady: pending(states)}
		case <-tick.C:
		}
	}
}

// objectState is the readiness of one watched object.
type objectState struct {
	kind, name, workload string
	Readiness
}

// poll reads every watched object once.
func poll(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) ([]objectState, error) {
	out := make([]objectState, 0, len(objs))
	for _, want := range objs {
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(want.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(want), cur); err != nil {
			return nil, fmt.Errorf("read %s: %w", objectName(want.GetKind(), want.GetNamespace(), want.GetName()), err)
		}
		r, err := ReadinessOf(cur)
		if err != nil {
			return nil, err
		}
		out = append(out, objectState{kind: want.GetKind(), name: want.GetName(),
			workload: cmp.Or(want.GetLabels()[render.LabelWorkload], want.GetName()), Readiness: r})
	}
	return out, nil
}

// pending lists the objects that are not ready, with why.
func pending(states []objectState) []string {
	var out []string
	for _, s := range states {
		if !s.Ready {
			out = append(out, strings.ToLower(s.kind)+"/"+s.name+": "+s.Why)
		}
	}
	return out
}

// progress shows one line per workload. On a terminal it redraws the lines in place; into a
// file or pipe it writes a workload's line again only when it changes.
type progress struct {
	w     io.Writer
	tty   bool
	drawn int               // lines drawn last time (terminal)
	last  map[string]string // line last written per workload (not a terminal)
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, last: map[string]string{}}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// workloadLine sums the states of one workload's objects.
type workloadLine struct {
	name, kind  string
	want, ready int32
	allReady    bool
	why         []string
}

func (p *progress) draw(states []objectState) {
	if p.w == nil {
		return
	}
	lines := map[string]*workloadLine{}
	var order []string
	for _, s := range states {
		l := lines[s.workload]
		if l == nil {
			l = &workloadLine{name: s.workload, kind: strings.ToLower(s.kind), allReady: true}
			lines[s.workload] = l
			order = append(order, s.workload)
		}
		l.want += s.Replicas
		l.ready += s.ReadyReplicas
		l.allReady = l.allReady && s.Ready
		if !s.Ready {
			l.why = append(l.why, s.Why)
		}
	}
	slices.Sort(order)
	if p.tty && p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	p.drawn = 0
	for _, name := range order {
		text := lines[name].String()
		if p.tty {
			fmt.Fprintf(p.w, "\x1b[2K%s\n", text)
			p.drawn++
			continue
		}
		if p.last[name] != text {
			fmt.Fprintln(p.w, text)
			p.last[name] = text
		}
	}
}

func (l *workloadLine) String() string {
	state := "waiting: " + strings.Join(l.why, "; ")
	if l.allReady {
		state = "ready"
	}
	return fmt.Sprintf("%-24s %-15s %d/%d %s", l.name, l.kind, l.ready, l.want, state)
}
