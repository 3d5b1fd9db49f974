package scaler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/scale"
)

// scriptedHost is a Host whose workloads, demand and failures the test sets; it writes
// status.scaling into its own map and logs every call it gets.
type scriptedHost struct {
	workloads []Workload[string]
	inputs    map[string]Inputs
	holds     map[string]*Hold
	fail      map[string]error // Measure's error by key
	roundErr  error            // Round.Err's
	scaling   map[string]*v1alpha1.ScalingStatus
	calls     []string
}

func newHost() *scriptedHost {
	return &scriptedHost{inputs: map[string]Inputs{}, holds: map[string]*Hold{}, fail: map[string]error{},
		scaling: map[string]*v1alpha1.ScalingStatus{}}
}

func (h *scriptedHost) Round(context.Context) (Round[string], error) {
	var r Round[string]
	for _, w := range h.workloads {
		w.Scaling = h.scaling[w.Key]
		if w.Scaling != nil && w.Floor {
			w.Current = int(w.Scaling.Replicas)
		}
		r.Workloads = append(r.Workloads, w)
	}
	if h.roundErr != nil {
		err := h.roundErr
		r.Err = func() error { return err }
	}
	return r, nil
}

func (h *scriptedHost) Measure(_ context.Context, w Workload[string], _ time.Time) (Inputs, error) {
	h.calls = append(h.calls, "measure "+w.Key)
	if hold := h.holds[w.Key]; hold != nil {
		return Inputs{}, hold
	}
	return h.inputs[w.Key], h.fail[w.Key]
}

func (h *scriptedHost) Write(_ context.Context, w Workload[string], sc *v1alpha1.ScalingStatus) error {
	if sc == nil {
		h.calls = append(h.calls, "clear "+w.Key)
		delete(h.scaling, w.Key)
		return nil
	}
	h.calls = append(h.calls, fmt.Sprintf("write %s %d", w.Key, sc.Replicas))
	h.scaling[w.Key] = sc
	return nil
}

func (h *scriptedHost) Warn(_ context.Context, w Workload[string], hold *Hold) {
	h.calls = append(h.calls, "warn "+w.Key+" "+hold.Reason)
}

func (h *scriptedHost) Scaled(_ context.Context, w Workload[string], d *v1alpha1.ScalingDecision) {
	h.calls = append(h.calls, fmt.Sprintf("scaled %s %d->%d", w.Key, d.From, d.To))
}

func (h *scriptedHost) Failed(context.Context, error) {}

// take returns the calls since the last take.
func (h *scriptedHost) take() []string {
	c := h.calls
	h.calls = nil
	return c
}

// testClock is a clock the test moves.
type testClock struct{ now time.Time }

func (c *testClock) Now() time.Time { return c.now }

func reactive(key string, current int) Workload[string] {
	return Workload[string]{Key: key, Object: key, Current: current, RequestMilli: 500,
		Policy: scale.Policy{Min: 1, Max: 5, TargetCPUPercent: 70}}
}

// step makes a round; with a clock, a sample later than the last one.
func step(t *testing.T, l *Loop[string], clk ...*testClock) {
	t.Helper()
	for _, c := range clk {
		c.now = c.now.Add(15 * time.Second)
	}
	if err := l.Step(context.Background()); err != nil {
		t.Fatalf("step: %v", err)
	}
}

// TestLoopDecides: a first decision that keeps the count states it; one that changes it
// writes the decision, then tells the host; a count already stated writes nothing.
func TestLoopDecides(t *testing.T) {
	h := newHost()
	clk := &testClock{now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	l := New[string](h, Options{Clock: clk.Now})
	h.workloads = []Workload[string]{reactive("web", 2)}
	h.inputs["web"] = Inputs{Demand: 0.7, Measured: 2} // on target
	step(t, l, clk)
	if got := h.take(); !slices.Equal(got, []string{"measure web", "write web 2"}) {
		t.Errorf("first round: %q", got)
	}
	step(t, l, clk)
	if got := h.take(); !slices.Equal(got, []string{"measure web"}) {
		t.Errorf("a round that keeps a stated count: %q", got)
	}
	h.inputs["web"] = Inputs{Demand: 1.84, Measured: 2} // ceil(2 * 1.84/2/0.35) = 6, capped at 5
	step(t, l, clk)
	if got := h.take(); !slices.Equal(got, []string{"measure web", "write web 5", "scaled web 2->5"}) {
		t.Errorf("a scale-out: %q", got)
	}
	ld := h.scaling["web"].LastDecision
	if ld == nil || ld.From != 2 || ld.To != 5 || !ld.Time.Equal(clk.now) || !strings.HasSuffix(ld.Reason, "; capped at max 5") {
		t.Errorf("last decision %+v", ld)
	}
}

// TestLoopFit: a scale-out stops at what the host can hold, and the reason says why; Fit is
// not asked when no replica is added.
func TestLoopFit(t *testing.T) {
	h := newHost()
	l := New[string](h, Options{})
	asked := 0
	fit := func() (int, string) { asked++; return 3, "the host holds 3" }
	h.workloads = []Workload[string]{reactive("web", 2)}
	h.inputs["web"] = Inputs{Demand: 0.7, Measured: 2, Fit: fit}
	step(t, l)
	if asked != 0 {
		t.Errorf("Fit asked %d times for a decision that keeps the count", asked)
	}
	h.inputs["web"] = Inputs{Demand: 3, Measured: 2, Fit: fit}
	step(t, l)
	if sc := h.scaling["web"]; sc.Replicas != 3 || !strings.HasSuffix(sc.LastDecision.Reason, "; the host holds 3") || asked != 1 {
		t.Errorf("status.scaling %+v after Fit asked %d times, want 3 replicas and the host's note", sc, asked)
	}
}

// TestLoopHold: a held workload is warned about once, and again only after a decision went
// through; its count is not touched.
func TestLoopHold(t *testing.T) {
	h := newHost()
	l := New[string](h, Options{})
	h.workloads = []Workload[string]{reactive("web", 2)}
	h.holds["web"] = &Hold{Reason: "NoMetrics", Message: "nothing measured"}
	for range 3 {
		step(t, l)
	}
	if got := h.take(); !slices.Equal(got, []string{"measure web", "warn web NoMetrics", "measure web", "measure web"}) {
		t.Errorf("three held rounds: %q", got)
	}
	h.holds["web"] = nil
	h.inputs["web"] = Inputs{Demand: 0.7, Measured: 2}
	step(t, l)
	h.holds["web"] = &Hold{Reason: "NoMetrics"}
	step(t, l)
	if got := h.take(); !slices.Equal(got, []string{"measure web", "write web 2", "measure web", "warn web NoMetrics"}) {
		t.Errorf("a decision, then held again: %q", got)
	}
}

// TestLoopActions: Skip leaves a workload alone and the loop keeps its memory (the
// cooldown of its last scale-out); Clear clears status.scaling and forgets it, as does
// leaving it out of a round. Errors name the workload, and a round's own error comes last.
func TestLoopActions(t *testing.T) {
	clk := &testClock{now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	cooldown := func(p scale.Policy) scale.Policy { p.ScaleInCooldownSeconds = 300; return p }
	// scaledIn runs: a scale-out to 4, a round that does action, a drop in demand; it
	// tells whether the loop removed replicas within the cooldown.
	scaledIn := func(t *testing.T, action func(h *scriptedHost)) bool {
		h := newHost()
		l := New[string](h, Options{Clock: clk.Now})
		w := reactive("web", 2)
		w.Policy = cooldown(w.Policy)
		h.workloads = []Workload[string]{w}
		h.inputs["web"] = Inputs{Demand: 1.3, Measured: 2}
		step(t, l)
		if sc := h.scaling["web"]; sc == nil || sc.Replicas != 4 {
			t.Fatalf("no scale-out to 4: %+v", sc)
		}
		action(h)
		step(t, l)
		clk.now = clk.now.Add(time.Minute)
		w.Current, w.Action = 4, Decide
		h.workloads = []Workload[string]{w}
		h.scaling["web"] = &v1alpha1.ScalingStatus{Replicas: 4} // as a host that lost the last decision
		h.inputs["web"] = Inputs{Demand: 0.1, Measured: 4}
		step(t, l)
		return h.scaling["web"].Replicas < 4
	}
	if scaledIn(t, func(h *scriptedHost) { h.workloads[0].Action = Skip }) {
		t.Error("a skipped workload lost its cooldown")
	}
	if !scaledIn(t, func(h *scriptedHost) { h.workloads[0].Action = Clear }) {
		t.Error("a cleared workload kept its cooldown")
	}
	if !scaledIn(t, func(h *scriptedHost) { h.workloads = nil }) {
		t.Error("a workload left out of a round kept its cooldown")
	}

	h := newHost()
	l := New[string](h, Options{})
	h.workloads = []Workload[string]{reactive("a", 1), reactive("b", 1), {Key: "c", Action: Clear}, {Key: "d", Action: Skip}}
	h.scaling["c"] = &v1alpha1.ScalingStatus{Replicas: 2}
	h.fail["a"] = errors.New("usage unreadable")
	h.roundErr = errors.New("start-ups unreadable")
	err := l.Step(context.Background())
	if err == nil || err.Error() != "workload a: usage unreadable\nstart-ups unreadable" {
		t.Errorf("Step error %q", err)
	}
	if got := h.take(); !slices.Equal(got, []string{"measure a", "measure b", "write b 1", "clear c"}) {
		t.Errorf("calls %q", got)
	}
}
