package fake_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/runtime/drivertest"
	"strata.dev/strata/internal/runtime/drivertest/script"
	"strata.dev/strata/internal/runtime/fake"
)

func TestSuite(t *testing.T) {
	for _, tier := range v1alpha1.Tiers {
		t.Run(string(tier), func(t *testing.T) {
			host := fake.NewHost(fake.HostOptions{})
			drivertest.Run(t, func(t *testing.T) runtime.Driver {
				d, err := fake.New(fake.Options{Host: host})
				if err != nil {
					t.Fatal(err)
				}
				return d
			}, drivertest.Options{Tier: tier, Prefix: string(tier[:1]),
				// The simulated kernel kills the main process: it ends with SIGKILL's 137.
				Kill: func(id string, _ int) error { return host.Exit(id, 137) }})
		})
	}
}

// newDriver returns a fake driver on a manual clock with the test image.
func newDriver(t *testing.T) (*fake.Driver, *fake.ManualClock) {
	t.Helper()
	clock := fake.NewManualClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	d, err := fake.New(fake.Options{
		Host:   fake.NewHost(fake.HostOptions{Clock: clock}),
		Tiers:  []v1alpha1.Tier{v1alpha1.TierContainer},
		Images: []string{"localhost/app:1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, clock
}

func spec(id string, cmd []string) runtime.InstanceSpec {
	return runtime.InstanceSpec{ID: id, Workload: "app", Tier: v1alpha1.TierContainer, Image: "localhost/app:1", Command: cmd}
}

func TestClockDrivesExits(t *testing.T) {
	d, clock := newDriver(t)
	ctx := context.Background()
	st, err := d.Start(ctx, spec("app-0", script.Sleep(30)))
	if err != nil {
		t.Fatal(err)
	}
	start := clock.Now()
	if !st.StartedAt.Equal(start) || st.State != runtime.StateRunning {
		t.Fatalf("started: %+v", st)
	}
	clock.Advance(29 * time.Second)
	if st, _ := d.Status(ctx, "app-0"); st.State != runtime.StateRunning {
		t.Fatalf("after 29 s of a 30 s sleep: %s, want running", st.State)
	}
	clock.Advance(time.Second)
	st, err = d.Status(ctx, "app-0")
	if err != nil || st.State != runtime.StateExited || st.ExitCode != 0 || !st.FinishedAt.Equal(start.Add(30*time.Second)) {
		t.Fatalf("after 30 s: %+v, %v; want exited 0 at start+30s", st, err)
	}
}

func TestStopWaitsForGraceOnClock(t *testing.T) {
	d, clock := newDriver(t)
	ctx := context.Background()
	if _, err := d.Start(ctx, spec("app-0", script.IgnoreTerm(600))); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Stop(ctx, "app-0", 10*time.Second) }()
	// Wait until Stop waits on the clock (the instance's own timer is the
	// other waiter), then check the stopping state.
	for clock.Waiters() < 2 {
		time.Sleep(time.Millisecond)
	}
	if st, _ := d.Status(ctx, "app-0"); st.State != runtime.StateStopping {
		t.Errorf("during the grace: %s, want stopping", st.State)
	}
	clock.Advance(10 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Status(ctx, "app-0"); st.State != runtime.StateExited || st.ExitCode != 137 {
		t.Errorf("after the grace: %+v, want exited 137", st)
	}
}

func TestInjectedFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("start", func(t *testing.T) {
		d, _ := newDriver(t)
		boom := errors.New("boom")
		d.Host().FailStart("app-0", boom)
		if _, err := d.Start(ctx, spec("app-0", nil)); !errors.Is(err, boom) {
			t.Fatalf("start: %v, want boom", err)
		}
		if _, err := d.Status(ctx, "app-0"); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("a failed start left an instance: %v", err)
		}
		if _, err := d.Start(ctx, spec("app-0", nil)); err != nil {
			t.Errorf("the failure is for one start only: %v", err)
		}
	})
	t.Run("exit", func(t *testing.T) {
		d, _ := newDriver(t)
		events, err := d.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Start(ctx, spec("app-0", nil)); err != nil {
			t.Fatal(err)
		}
		if err := d.Host().Exit("app-0", 42); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.Status(ctx, "app-0"); st.State != runtime.StateExited || st.ExitCode != 42 || st.OOMKilled {
			t.Errorf("after Exit(42): %+v", st)
		}
		if e := <-events; e.Type != runtime.EventExit || e.ExitCode != 42 {
			t.Errorf("event %+v, want exit 42", e)
		}
		if err := d.Host().Exit("app-0", 1); !errors.Is(err, runtime.ErrNotRunning) {
			t.Errorf("Exit of an exited instance: %v, want ErrNotRunning", err)
		}
	})
	t.Run("oom", func(t *testing.T) {
		d, _ := newDriver(t)
		events, err := d.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Start(ctx, spec("app-0", nil)); err != nil {
			t.Fatal(err)
		}
		if err := d.Host().OOMKill("app-0"); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.Status(ctx, "app-0"); st.ExitCode != 137 || !st.OOMKilled {
			t.Errorf("after OOMKill: %+v", st)
		}
		if e := <-events; e.Type != runtime.EventOOM {
			t.Errorf("first event %+v, want oom", e)
		}
		if e := <-events; e.Type != runtime.EventExit || !e.OOMKilled {
			t.Errorf("second event %+v, want exit with OOMKilled", e)
		}
	})
}

func TestUnknownCommandIsAServer(t *testing.T) {
	d, _ := newDriver(t)
	ctx := context.Background()
	log := filepath.Join(t.TempDir(), "app.log")
	sp := spec("app-0", []string{"/bin/payments", "--port", "8080"})
	sp.LogPath = log
	if _, err := d.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, "app-0", time.Hour); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Status(ctx, "app-0"); st.ExitCode != 143 {
		t.Errorf("exit code %d, want 143", st.ExitCode)
	}
	if _, err := os.Stat(log); err != nil {
		t.Errorf("log file not created: %v", err)
	}
}

func TestOwnership(t *testing.T) {
	host := fake.NewHost(fake.HostOptions{})
	a, _ := fake.New(fake.Options{Host: host, Name: "a", Images: []string{"localhost/app:1"}})
	b, _ := fake.New(fake.Options{Host: host, Name: "b"})
	ctx := context.Background()
	if _, err := a.Start(ctx, spec("app-0", nil)); err != nil {
		t.Fatal(err)
	}
	if list, _ := b.List(ctx); len(list) != 0 {
		t.Errorf("driver b lists a's instances: %+v", list)
	}
	if _, err := b.Status(ctx, "app-0"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("driver b sees a's instance: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.List(ctx); !errors.Is(err, fake.ErrClosed) {
		t.Errorf("list after close: %v, want ErrClosed", err)
	}
}
