package control

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/fake"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the plan scenarios in testdata/plan")

// TestPlanScenarios runs the scripts in testdata/plan (the format is described in
// testdata/plan/README.md): each sets up a workload, its instances and what time it is, and
// compares the plan made from them with the expected actions.
func TestPlanScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "plan", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/plan")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

// scenarioEpoch is the time a scenario begins at; times in its output are offsets from it.
var scenarioEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// scenario is the world a script builds: what the store, the drivers and the controller's
// memory would hold.
type scenario struct {
	t        *testing.T
	w        *v1alpha1.Workload // nil: not stored
	driver   runtime.Driver     // serves the workload's tier, unless noDriver
	other    runtime.Driver     // another driver, for instances started elsewhere
	noDriver bool
	observed map[string]observed
	health   map[string]healthCheck
	starts   map[string]retry
	now      time.Time
	last     steps // the last plan made
}

func newScenario(t *testing.T) *scenario {
	mk := func(name string) runtime.Driver {
		d, err := fake.New(fake.Options{Name: name, Tiers: v1alpha1.Tiers, Images: []string{image}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return &scenario{
		t: t, driver: mk("fake"), other: mk("other"),
		observed: map[string]observed{}, health: map[string]healthCheck{}, starts: map[string]retry{},
		now: scenarioEpoch,
	}
}

const (
	scenarioBackoff    = time.Second
	scenarioMaxBackoff = time.Minute
)

func (s *scenario) observation() observation {
	o := observation{
		Name: "web", Workload: s.w, Observed: map[string]observed{}, Health: map[string]healthCheck{},
		Starts: s.starts, Now: s.now, RestartBackoff: scenarioBackoff, MaxRestartBackoff: scenarioMaxBackoff,
	}
	if s.w != nil {
		o.Name = s.w.Metadata.Name
		// plan must not change the workload it is given: hand it a copy.
		w := *s.w
		if s.w.Status != nil {
			st := *s.w.Status
			st.Instances = append([]v1alpha1.Instance(nil), s.w.Status.Instances...)
			w.Status = &st
		}
		o.Workload = &w
	}
	for id, ob := range s.observed {
		o.Observed[id] = ob
	}
	for id, h := range s.health {
		o.Health[id] = h
	}
	if s.noDriver {
		o.NoDriver = fmt.Errorf("no driver registered for tier %s", tierOf(s.w))
	} else {
		o.Driver = s.driver
	}
	return o
}

// hash is the spec hash of the workload as it is now.
func (s *scenario) hash() string {
	if s.w == nil {
		return "none"
	}
	return specHash(s.w, tierOf(s.w))
}

// args splits a command's arguments into words and key=value pairs; a value may be quoted.
func scenarioArgs(t *testing.T, line string) (words []string, kv map[string]string) {
	kv = map[string]string{}
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimSpace(rest) {
		var tok string
		if k, v, ok := strings.Cut(rest, "="); ok && !strings.ContainsAny(k, " \t") && strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				t.Fatalf("unterminated quote in %q", line)
			}
			kv[k] = v[1 : end+1]
			rest = v[end+2:]
			continue
		}
		tok, rest, _ = strings.Cut(rest, " ")
		if k, v, ok := strings.Cut(tok, "="); ok {
			kv[k] = v
		} else {
			words = append(words, tok)
		}
	}
	return words, kv
}

func (s *scenario) duration(v string) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil {
		s.t.Fatalf("bad duration %q: %v", v, err)
	}
	return d
}

func (s *scenario) number(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		s.t.Fatalf("bad number %q: %v", v, err)
	}
	return n
}

// run carries out one command and returns its output (commands other than plan and apply
// print nothing).
func (s *scenario) run(cmd, line string) string {
	words, kv := scenarioArgs(s.t, line)
	switch cmd {
	case "workload":
		s.workload(words, kv)
	case "deleted":
		s.w = nil
	case "no-driver":
		s.noDriver = true
	case "instance":
		s.instance(words, kv)
	case "gone":
		for _, id := range words {
			delete(s.observed, id)
			delete(s.health, id)
		}
	case "status":
		s.status(words, kv)
	case "start-failed":
		s.startFailed(words[0], kv["msg"])
	case "health":
		s.healthOf(words, kv)
	case "tick":
		s.now = s.now.Add(s.duration(words[0]))
	case "plan":
		s.last = plan(s.observation())
		checkPlanInvariants(s.t, s.last)
		var b strings.Builder
		for _, a := range s.last.Actions {
			b.WriteString(a.String() + "\n")
		}
		if s.last.Requeue > 0 {
			fmt.Fprintf(&b, "requeue %s\n", s.last.Requeue)
		}
		return b.String()
	case "apply":
		return s.apply(kv)
	default:
		s.t.Fatalf("unknown command %q", cmd)
	}
	return ""
}

// workload creates the workload web, or changes it: replicas=N, restart=POLICY,
// image=IMAGE, health=THRESHOLD/INTERVAL (or health=none), tier=TIER, and the words held,
// unheld, deleting.
func (s *scenario) workload(words []string, kv map[string]string) {
	if s.w == nil {
		s.w = &v1alpha1.Workload{
			Metadata: v1alpha1.ObjectMeta{Name: "web", Annotations: map[string]string{}},
			Spec:     v1alpha1.WorkloadSpec{Image: image, RestartPolicy: v1alpha1.RestartAlways},
		}
	}
	w := s.w
	for k, v := range kv {
		switch k {
		case "replicas":
			n := int32(s.number(v))
			w.Spec.Replicas = &n
		case "restart":
			w.Spec.RestartPolicy = v1alpha1.RestartPolicy(v)
		case "image":
			w.Spec.Image = v
		case "tier":
			if w.Status == nil {
				w.Status = &v1alpha1.WorkloadStatus{}
			}
			w.Status.Tier = v1alpha1.Tier(v)
		case "health":
			if v == "none" {
				w.Spec.Health = nil
				continue
			}
			threshold, interval, _ := strings.Cut(v, "/")
			w.Spec.Health = &v1alpha1.HealthCheck{
				Exec:             &v1alpha1.ExecProbe{Command: []string{"true"}},
				FailureThreshold: int32(s.number(threshold)), IntervalSeconds: int32(s.duration(interval) / time.Second),
			}
		default:
			s.t.Fatalf("workload: unknown setting %q", k)
		}
	}
	for _, word := range words {
		switch word {
		case "held":
			w.Metadata.Annotations[v1alpha1.AnnotationHold] = "snapshot"
		case "unheld":
			delete(w.Metadata.Annotations, v1alpha1.AnnotationHold)
		case "deleting":
			w.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested] = s.now.Format(time.RFC3339)
		default:
			s.t.Fatalf("workload: unknown word %q", word)
		}
	}
}

// instance sets what a driver reports of an instance: instance ID STATE [exit=N] [oom]
// [finished=OFFSET] [oom] [pid=N] [driver=other] [spec=old] [msg=TEXT]. It runs from the
// workload's spec as it is now unless spec=old; an ended one finished now unless
// finished= gives an offset from now (-2s: two seconds ago).
func (s *scenario) instance(words []string, kv map[string]string) {
	if len(words) < 2 {
		s.t.Fatalf("instance: want an ID and a state, got %q", words)
	}
	id, state := words[0], runtime.State(words[1])
	slot := s.number(id[strings.LastIndex(id, "-")+1:])
	st := runtime.Status{
		ID: id, Workload: "web", Slot: slot, State: state, Image: image,
		StartedAt: s.now.Add(-time.Hour), Labels: map[string]string{LabelSpecHash: s.hash()},
	}
	ob := observed{driver: s.driver, status: st}
	for _, word := range words[2:] {
		if word != "oom" {
			s.t.Fatalf("instance: unknown word %q", word)
		}
		ob.status.OOMKilled = true
	}
	for k, v := range kv {
		switch k {
		case "exit":
			ob.status.ExitCode = s.number(v)
		case "finished":
			ob.status.FinishedAt = s.now.Add(s.duration(v))
		case "pid":
			ob.status.PID = s.number(v)
		case "driver":
			if v != "other" {
				s.t.Fatalf("instance: driver is fake (the default) or other, not %q", v)
			}
			ob.driver = s.other
		case "spec":
			ob.status.Labels[LabelSpecHash] = v
		case "msg":
			ob.status.Message = v
		default:
			s.t.Fatalf("instance: unknown setting %q", k)
		}
	}
	if (state == runtime.StateExited || state == runtime.StateFailed) && ob.status.FinishedAt.IsZero() {
		ob.status.FinishedAt = s.now
	}
	s.observed[id] = ob
}

// status sets the workload's last status of an instance: status ID STATE [restarts=N] [ip=IP].
func (s *scenario) status(words []string, kv map[string]string) {
	if s.w == nil {
		s.t.Fatal("status: no workload")
	}
	if s.w.Status == nil {
		s.w.Status = &v1alpha1.WorkloadStatus{}
	}
	in := v1alpha1.Instance{ID: words[0], State: words[1], IP: kv["ip"]}
	if v, ok := kv["restarts"]; ok {
		in.Restarts = int32(s.number(v))
	}
	s.setStatus(in)
}

func (s *scenario) setStatus(in v1alpha1.Instance) {
	for i := range s.w.Status.Instances {
		if s.w.Status.Instances[i].ID == in.ID {
			s.w.Status.Instances[i] = in
			return
		}
	}
	s.w.Status.Instances = append(s.w.Status.Instances, in)
}

// startFailed records a failed start of slot id from the current spec, now, as the
// executor does.
func (s *scenario) startFailed(id, msg string) {
	if msg == "" {
		msg = "the start failed"
	}
	r := &retries{starts: s.starts}
	r.startFailed(id, s.hash(), msg, s.now, scenarioBackoff, scenarioMaxBackoff)
}

// healthOf sets what the health checks of a running instance found: health ID [restart]
// [failures=N] [msg=TEXT] [again=DURATION].
func (s *scenario) healthOf(words []string, kv map[string]string) {
	h := healthCheck{Message: kv["msg"]}
	for _, word := range words[1:] {
		if word != "restart" {
			s.t.Fatalf("health: unknown word %q", word)
		}
		h.Restart = true
	}
	if v, ok := kv["failures"]; ok {
		h.Failures = int32(s.number(v))
	}
	if v, ok := kv["again"]; ok {
		h.Again = s.duration(v)
	}
	if h.Restart {
		h.Reason = fmt.Sprintf("health check failed %d times in a row: %s", h.Failures, h.Message)
	}
	s.health[words[0]] = h
}

// apply carries the last plan out in the scenario's world, every action succeeding but
// the starts of the instances listed in fail= (comma-separated): removals end instances,
// starts run them from the current spec, reports become the status. With deleted-at=ID,
// the workload's deletion is requested just before the check of slot ID, which stops
// there. It prints the instances of the status it writes.
func (s *scenario) apply(kv map[string]string) string {
	failing := map[string]bool{}
	if v := kv["fail"]; v != "" {
		for _, id := range strings.Split(v, ",") {
			failing[id] = true
		}
	}
	var (
		b     strings.Builder
		insts []v1alpha1.Instance
	)
	for _, a := range s.last.Actions {
		switch a.Kind {
		case actRemove, actRestartRemove:
			delete(s.observed, a.ID)
			delete(s.health, a.ID)
		case actStillWanted:
			if a.ID == kv["deleted-at"] {
				s.w.Metadata.Annotations[v1alpha1.AnnotationDeletionRequested] = s.now.Format(time.RFC3339)
				fmt.Fprintf(&b, "the workload is deleted before %s starts: the reconcile stops, to run again at once\n", a.ID)
				return b.String()
			}
		case actReport, actKeep:
			insts = append(insts, a.Instance)
		case actStart:
			in := a.Instance
			if failing[a.ID] {
				s.startFailed(a.ID, "")
				in.State, in.Message = string(runtime.StateFailed), "the start failed"
				insts = append(insts, in)
				continue
			}
			delete(s.starts, a.ID)
			st := runtime.Status{
				ID: a.ID, Workload: s.w.Metadata.Name, Slot: a.Slot, State: runtime.StateRunning, Image: image,
				PID: 100 + a.Slot, StartedAt: s.now, Labels: map[string]string{LabelSpecHash: s.hash()},
			}
			s.observed[a.ID] = observed{driver: s.driver, status: st}
			insts = append(insts, observedInstance(in, st))
		case actDeleteWorkload:
			s.w = nil
			b.WriteString("the workload is deleted\n")
		case actWriteStatus:
			if s.w.Status == nil {
				s.w.Status = &v1alpha1.WorkloadStatus{}
			}
			s.w.Status.Instances = insts
			for _, in := range insts {
				in.StartedAt = nil // times are the scenario's, not worth printing
				b.WriteString("status " + instanceString(in) + "\n")
			}
			phase, reason, _ := summarize(insts, a.Replicas)
			if a.Phase != "" {
				phase, reason = a.Phase, a.Reason
			}
			fmt.Fprintf(&b, "phase %s %s\n", phase, reason)
		}
	}
	if b.Len() == 0 {
		return "no status to write\n"
	}
	return b.String()
}

// scenarioStep is one command of a script and, for those that print, its expected output.
type scenarioStep struct {
	line     int
	cmd      string // the command line as written
	expected string
	checked  bool // followed by ----
}

func parseScenario(t *testing.T, path string) (steps []scenarioStep) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for n < len(lines) {
		l := lines[n]
		n++
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			steps = append(steps, scenarioStep{line: n, cmd: l})
			continue
		}
		st := scenarioStep{line: n, cmd: l}
		if n < len(lines) && lines[n] == "----" {
			st.checked = true
			n++
			var out []string
			for n < len(lines) && lines[n] != "" {
				out = append(out, lines[n])
				n++
			}
			n++ // the blank line that ends the output
			if len(out) > 0 {
				st.expected = strings.Join(out, "\n") + "\n"
			}
		}
		steps = append(steps, st)
	}
	return steps
}

func runScenario(t *testing.T, path string) {
	steps := parseScenario(t, path)
	s := newScenario(t)
	var out strings.Builder
	for _, st := range steps {
		line := strings.TrimSpace(st.cmd)
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(st.cmd + "\n")
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		got := s.run(cmd, args)
		out.WriteString(st.cmd + "\n")
		if cmd != "plan" && cmd != "apply" {
			if st.checked {
				t.Errorf("%s:%d: %s prints nothing: remove the ---- after it", path, st.line, cmd)
			}
			continue
		}
		out.WriteString("----\n" + got + "\n")
		if !*rewrite && got != st.expected {
			t.Errorf("%s:%d: %s\n got:\n%s want:\n%s", path, st.line, line, got, st.expected)
		}
	}
	if *rewrite {
		text := out.String()
		for strings.Contains(text, "\n\n\n") {
			text = strings.ReplaceAll(text, "\n\n\n", "\n\n")
		}
		text = strings.TrimRight(text, "\n") + "\n"
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkPlanInvariants checks what every plan must hold, whatever the scenario: each start
// comes right after the check that its workload still wants the slot (a workload deleted
// mid-reconcile must not see more starts), and a status write, when there is one, is last.
func checkPlanInvariants(t *testing.T, p steps) {
	t.Helper()
	for i, a := range p.Actions {
		if a.Kind == actStart && (i == 0 || p.Actions[i-1].Kind != actStillWanted || p.Actions[i-1].ID != a.ID) {
			t.Errorf("action %d (%s) is not preceded by the check of its slot", i, a)
		}
		if a.Kind == actWriteStatus && i != len(p.Actions)-1 {
			t.Errorf("action %d (%s) is not the last", i, a)
		}
	}
}
