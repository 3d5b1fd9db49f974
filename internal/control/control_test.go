package control

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/load"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/fake"
	"strata.dev/strata/internal/store"
)

const image = "localhost/app:1"

type env struct {
	t     *testing.T
	st    *store.Store
	host  *fake.Host
	clock *fake.ManualClock
	c     *Controller
	rec   *memRecorder
}

type memRecorder struct {
	mu     sync.Mutex
	events []objects.Event
}

func (m *memRecorder) Record(_ context.Context, e objects.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
}

func (m *memRecorder) reasons() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.events {
		out = append(out, e.Instance+":"+e.Reason)
	}
	return strings.Join(out, " ")
}

func newEnv(t *testing.T, tiers ...v1alpha1.Tier) *env {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clock := fake.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	host := fake.NewHost(fake.HostOptions{Clock: clock})
	e := &env{t: t, st: st, host: host, clock: clock, rec: &memRecorder{}}
	e.c = e.controller(tiers...)
	return e
}

// controller builds a controller over the env's store and simulated host, as a restarted
// daemon would.
func (e *env) controller(tiers ...v1alpha1.Tier) *Controller {
	if len(tiers) == 0 {
		tiers = []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox}
	}
	d, err := fake.New(fake.Options{Host: e.host, Tiers: tiers, Images: []string{image}})
	if err != nil {
		e.t.Fatal(err)
	}
	reg, err := runtime.NewRegistry(d)
	if err != nil {
		e.t.Fatal(err)
	}
	return New(Options{Store: e.st, Drivers: reg, Events: e.rec, Clock: e.clock.Now, DataDir: e.t.TempDir()})
}

// apply stores a workload as the API server would: decoded, defaulted, with its tier.
func (e *env) apply(doc string, tier v1alpha1.Tier) {
	e.t.Helper()
	objs, errs := load.File("w.yaml", []byte(doc))
	if len(errs) > 0 {
		e.t.Fatal(errs)
	}
	w := objs[0].Object.(*v1alpha1.Workload)
	rec, err := objects.Record(v1alpha1.KindWorkload, w.Metadata, w.Spec, v1alpha1.WorkloadStatus{Tier: tier})
	if err != nil {
		e.t.Fatal(err)
	}
	cur, err := e.st.Get(context.Background(), v1alpha1.KindWorkload, w.Metadata.Name)
	if err == nil {
		rec.ResourceVersion = cur.ResourceVersion
		rec.Status = cur.Status
		_, err = e.st.Update(context.Background(), rec)
	} else {
		_, err = e.st.Create(context.Background(), rec)
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) reconcile(name string) time.Duration {
	e.t.Helper()
	after, err := e.c.Reconcile(context.Background(), name)
	if err != nil {
		e.t.Fatalf("reconcile %s: %v", name, err)
	}
	return after
}

func (e *env) status(name string) v1alpha1.WorkloadStatus {
	e.t.Helper()
	rec, err := e.st.Get(context.Background(), v1alpha1.KindWorkload, name)
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := objects.Workload(rec)
	if err != nil {
		e.t.Fatal(err)
	}
	return *w.Status
}

// states prints the status's instances as id=state/restarts.
func states(s v1alpha1.WorkloadStatus) string {
	var out []string
	for _, in := range s.Instances {
		out = append(out, in.ID+"="+in.State+"/"+strconv.Itoa(int(in.Restarts)))
	}
	return string(s.Phase) + " " + strings.Join(out, " ")
}

func workload(name, replicas string, command []string, policy string) string {
	cmd, _ := json.Marshal(command)
	return "apiVersion: strata.dev/v1alpha1\nkind: Workload\nmetadata: {name: " + name + "}\nspec:\n  image: " + image +
		"\n  replicas: " + replicas + "\n  command: " + string(cmd) + "\n  restartPolicy: " + policy + "\n"
}

// sleepForever runs until SIGTERM ends it at once.
var sleepForever = script.Serve(100000)

func (e *env) instances() []runtime.Status {
	e.t.Helper()
	var all []runtime.Status
	for _, d := range e.c.o.Drivers.Drivers() {
		l, err := d.List(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		all = append(all, l...)
	}
	return all
}

func TestScaleUpAndDown(t *testing.T) {
	e := newEnv(t)
	e.apply(workload("web", "3", sleepForever, "Always"), v1alpha1.TierContainer)
	e.reconcile("web")
	if got := states(e.status("web")); got != "Running web-0=running/0 web-1=running/0 web-2=running/0" {
		t.Fatalf("after start: %s", got)
	}
	if n := len(e.instances()); n != 3 {
		t.Fatalf("%d instances on the host, want 3", n)
	}
	e.reconcile("web") // idempotent: nothing new starts
	if n := len(e.instances()); n != 3 || strings.Count(e.rec.reasons(), "Started") != 3 {
		t.Fatalf("second reconcile changed things: %d instances, events %s", n, e.rec.reasons())
	}
	e.apply(workload("web", "1", sleepForever, "Always"), v1alpha1.TierContainer)
	e.reconcile("web")
	if got := states(e.status("web")); got != "Running web-0=running/0" {
		t.Fatalf("after scale down: %s", got)
	}
	if n := len(e.instances()); n != 1 {
		t.Fatalf("%d instances left, want 1 (slots removed from the top)", n)
	}
	cond := e.status("web").Conditions
	if len(cond) != 1 || cond[0].Type != "Ready" || cond[0].Status != "True" {
		t.Errorf("conditions %+v", cond)
	}
}

func TestRestartPolicies(t *testing.T) {
	tests := []struct {
		policy    string
		command   []string
		restarted bool
	}{
		{"Always", script.Exit(3), true},
		{"Always", script.Exit(0), true},
		{"OnFailure", script.Exit(3), true},
		{"OnFailure", script.Exit(0), false},
		{"Never", script.Exit(3), false},
	}
	for _, tt := range tests {
		t.Run(tt.policy+" "+strings.Join(tt.command, " "), func(t *testing.T) {
			e := newEnv(t)
			e.apply(workload("job", "1", tt.command, tt.policy), v1alpha1.TierContainer)
			e.reconcile("job")
			e.clock.Advance(time.Millisecond)
			after := e.reconcile("job") // sees the exit
			st := e.status("job")
			if st.Instances[0].State != "exited" {
				t.Fatalf("state %s, want exited", st.Instances[0].State)
			}
			if !tt.restarted {
				if after != 0 || strings.Contains(e.rec.reasons(), "Restarted") {
					t.Errorf("restarted against the policy: requeue %v, events %s", after, e.rec.reasons())
				}
				return
			}
			if after <= 0 || after > time.Second {
				t.Fatalf("requeue after %v, want the first backoff (1s)", after)
			}
			e.clock.Advance(after)
			e.reconcile("job")
			if st := e.status("job"); st.Instances[0].Restarts != 1 {
				t.Errorf("restarts %d, want 1; events %s", st.Instances[0].Restarts, e.rec.reasons())
			}
			// The second restart waits twice as long.
			e.clock.Advance(time.Millisecond)
			if after := e.reconcile("job"); after < time.Second || after > 2*time.Second {
				t.Errorf("second backoff %v, want 2s", after)
			}
		})
	}
}

func TestSpecChangeReplaces(t *testing.T) {
	e := newEnv(t)
	e.apply(workload("web", "1", sleepForever, "Always"), v1alpha1.TierContainer)
	e.reconcile("web")
	e.apply(workload("web", "1", script.Serve(99999), "Always"), v1alpha1.TierContainer)
	e.reconcile("web")
	if !strings.Contains(e.rec.reasons(), "web-0:Replaced") {
		t.Errorf("events %s, want web-0 replaced", e.rec.reasons())
	}
	if got := states(e.status("web")); got != "Running web-0=running/0" {
		t.Errorf("status %s", got)
	}
}

// TestReadoption: a new controller (a restarted daemon) adopts running instances and never
// starts a second copy.
func TestReadoption(t *testing.T) {
	e := newEnv(t)
	e.apply(workload("web", "2", sleepForever, "Always"), v1alpha1.TierContainer)
	e.reconcile("web")
	e.c = e.controller()
	e.reconcile("web")
	if n := len(e.instances()); n != 2 || strings.Count(e.rec.reasons(), "Started") != 2 {
		t.Errorf("after restart: %d instances, events %s", n, e.rec.reasons())
	}
}

func TestDeleteRemovesEverything(t *testing.T) {
	e := newEnv(t)
	e.apply(workload("web", "2", sleepForever, "Always"), v1alpha1.TierContainer)
	e.reconcile("web")
	logs := filepath.Join(e.c.o.DataDir, "logs")
	for _, f := range []string{"web-0.log", "web-0.log.1", "web-1.log", "other-0.log"} {
		if err := os.WriteFile(filepath.Join(logs, f), []byte("line\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.Delete(context.Background(), v1alpha1.KindWorkload, "web", 0); err != nil {
		t.Fatal(err)
	}
	e.reconcile("web")
	if n := len(e.instances()); n != 0 {
		t.Errorf("%d instances left after delete", n)
	}
	left, _ := os.ReadDir(logs)
	if len(left) != 1 || left[0].Name() != "other-0.log" {
		t.Errorf("logs after delete: %v; want only another workload's", left)
	}
}

func TestNoDriverForTier(t *testing.T) {
	e := newEnv(t, v1alpha1.TierContainer)
	e.apply(workload("vm", "1", sleepForever, "Always"), v1alpha1.TierVM)
	e.reconcile("vm")
	st := e.status("vm")
	if st.Phase != v1alpha1.PhaseFailed || st.Conditions[0].Reason != "NoDriver" || !strings.Contains(st.Conditions[0].Message, "vm tier") {
		t.Errorf("status %+v", st)
	}
}

func TestMissingImageFails(t *testing.T) {
	e := newEnv(t)
	doc := strings.Replace(workload("web", "1", sleepForever, "Always"), image, "localhost/missing:1", 1)
	e.apply(doc, v1alpha1.TierContainer)
	_, err := e.c.Reconcile(context.Background(), "web")
	if err == nil {
		t.Fatal("a missing image gave no error")
	}
	st := e.status("web")
	if st.Phase != v1alpha1.PhaseFailed || st.Instances[0].State != "failed" || !strings.Contains(e.rec.reasons(), "web-0:FailedStart") {
		t.Errorf("status %s, events %s", states(st), e.rec.reasons())
	}
}

// TestDeletionRequested: a workload marked for deletion loses its instances, then leaves the store.
func TestDeletionRequested(t *testing.T) {
	e := newEnv(t)
	e.apply(workload("web", "2", sleepForever, "Always"), v1alpha1.TierContainer)
	e.reconcile("web")
	ctx := context.Background()
	rec, err := e.st.Get(ctx, v1alpha1.KindWorkload, "web")
	if err != nil {
		t.Fatal(err)
	}
	rec.Annotations = map[string]string{v1alpha1.AnnotationDeletionRequested: "2026-01-01T00:00:00Z"}
	if _, err := e.st.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	e.reconcile("web")
	if n := len(e.instances()); n != 0 {
		t.Errorf("%d instances left", n)
	}
	if _, err := e.st.Get(ctx, v1alpha1.KindWorkload, "web"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the workload is still stored: %v", err)
	}
}

// recorder is a driver that remembers the specs it was asked to start.
type recorder struct {
	*fake.Driver
	mu    sync.Mutex
	specs []runtime.InstanceSpec
}

func (r *recorder) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Status, error) {
	r.mu.Lock()
	r.specs = append(r.specs, spec)
	r.mu.Unlock()
	return r.Driver.Start(ctx, spec)
}

// TestCapabilitiesGranted: the capabilities a workload's traits ask for reach the driver of a
// container or sandbox (not a VM's, whose guest has its own kernel), and asking for others
// replaces the instance.
func TestCapabilitiesGranted(t *testing.T) {
	for _, tier := range []v1alpha1.Tier{v1alpha1.TierContainer, v1alpha1.TierSandbox, v1alpha1.TierVM} {
		t.Run(string(tier), func(t *testing.T) {
			e := newEnv(t)
			d, err := fake.New(fake.Options{Host: e.host, Tiers: []v1alpha1.Tier{tier}, Images: []string{image}})
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{Driver: d}
			reg, err := runtime.NewRegistry(rec)
			if err != nil {
				t.Fatal(err)
			}
			e.c = New(Options{Store: e.st, Drivers: reg, Events: e.rec, Clock: e.clock.Now, DataDir: t.TempDir()})
			doc := workload("ping", "1", sleepForever, "Always")
			e.apply(doc+"  traits: {capabilities: [NET_RAW]}\n", tier)
			e.reconcile("ping")
			e.apply(doc+"  traits: {capabilities: [NET_RAW, SYS_NICE]}\n", tier)
			e.reconcile("ping")
			var got []string
			for _, s := range rec.specs {
				got = append(got, strings.Join(s.Capabilities, ","))
			}
			want := []string{"NET_RAW", "NET_RAW,SYS_NICE"}
			if tier == v1alpha1.TierVM {
				want = []string{""} // nothing asked of the driver, nothing to replace
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("the driver was asked for capabilities %q, want %q", got, want)
			}
		})
	}
}
