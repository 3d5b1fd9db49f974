package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var crashSeed = flag.Uint64("crash.seed", 0, "seed of TestCrash (0: taken from the clock and logged)")

// Environment of the child process of TestCrash.
const (
	envCrashStore = "STRATA_STORE_CRASH_CHILD" // the store's path
	envCrashSeed  = "STRATA_STORE_CRASH_SEED"
	envCrashRound = "STRATA_STORE_CRASH_ROUND"
)

// crashKinds and crashNames are the keys the child writes.
var crashKinds = []string{"Workload", "Segment"}

const crashNames = 30

// TestCrash kills a writing process with SIGKILL at random moments and
// checks, after each kill, that the store opens cleanly, passes bbolt's
// consistency check, and holds exactly the acknowledged writes: the one
// write that may have been in flight is either wholly there or wholly
// absent. The rounds share one store file, so later rounds also recover
// from earlier crashes, including one during the file's creation.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs child processes; skipped in -short mode")
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with: go test -run 'TestCrash$' -crash.seed=%d ./internal/store/)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	path := filepath.Join(t.TempDir(), "strata.db")
	model := crashModel{objects: map[string]crashObject{}}
	const rounds = 20
	var totalAcks, inFlight, committed int
	for round := range rounds {
		// Most rounds kill a child that is writing; some kill it while it
		// starts up and opens (or creates) the store.
		var delay time.Duration
		early := rng.IntN(5) == 0
		if early {
			delay = time.Duration(rng.IntN(40_000)) * time.Microsecond
		} else {
			delay = time.Duration(rng.IntN(250_000)) * time.Microsecond
		}
		lines := runCrashChild(t, path, round, rng.Uint64(), early, delay)
		acks, pending := model.replay(t, round, lines)
		totalAcks += acks
		if pending != nil {
			inFlight++
		}
		if model.verify(t, round, path, pending) {
			committed++
		}
	}
	t.Logf("%d rounds, %d acknowledged writes, final revision %d; %d kills hit a write in flight, %d of those writes had committed",
		rounds, totalAcks, model.rev, inFlight, committed)
}

// runCrashChild starts the child, kills it after delay (counted from its
// start if early, else from when it reports ready) and returns the complete
// lines it printed.
func runCrashChild(t *testing.T, path string, round int, seed uint64, early bool, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0]) // TestMain runs crashChild when the environment says so
	cmd.Env = append(os.Environ(),
		envCrashStore+"="+path,
		envCrashSeed+"="+strconv.FormatUint(seed, 10),
		envCrashRound+"="+strconv.Itoa(round))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan []string)
	go func() { done <- readLines(stdout, ready) }()

	start := time.Now()
	if !early {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			_ = cmd.Wait()
			t.Fatalf("round %d: the child did not open the store within 30s; its stderr:\n%s", round, stderr.String())
		}
	}
	time.Sleep(delay)
	killErr := cmd.Process.Kill() // SIGKILL
	lines := <-done
	err = cmd.Wait()
	if killErr != nil || !killedBySignal(err) {
		t.Fatalf("round %d: the child ended before it was killed (%v, %v); its stderr:\n%s", round, killErr, err, stderr.String())
	}
	t.Logf("round %d: killed %s after %v (%s), %d lines", round, map[bool]string{true: "at start-up", false: "while writing"}[early],
		time.Since(start).Round(time.Millisecond), delay, len(lines))
	return lines
}

func killedBySignal(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// readLines returns the newline-terminated lines of r (a line cut short by
// the kill was never completely written, so it does not count), closing
// ready at the first "ready" line.
func readLines(r io.Reader, ready chan struct{}) []string {
	var lines []string
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return lines
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, "ready ") {
			close(ready)
		}
		lines = append(lines, line)
	}
}

// crashObject is what the parent knows of one object.
type crashObject struct {
	rv         uint64
	spec, stat string // tags of the last spec and status writes
}

// crashOp is one write the child announced ("begin") or acknowledged ("ack").
type crashOp struct {
	op, kind, name, tag string
}

func (o crashOp) key() string { return o.kind + "/" + o.name }

// crashModel is the parent's view of the store: exactly the acknowledged
// writes.
type crashModel struct {
	objects map[string]crashObject
	rev     uint64
}

// apply applies op as the write of revision rev.
func (m *crashModel) apply(op crashOp, rev uint64) {
	o := m.objects[op.key()]
	switch op.op {
	case "create":
		o = crashObject{spec: op.tag}
	case "update":
		o.spec = op.tag
	case "status":
		o.stat = op.tag
	}
	o.rv = rev
	if op.op == "delete" {
		delete(m.objects, op.key())
	} else {
		m.objects[op.key()] = o
	}
	m.rev = rev
}

// replay applies the round's acknowledged writes to the model and returns
// how many there were and the write in flight at the kill, if any.
func (m *crashModel) replay(t *testing.T, round int, lines []string) (acks int, pending *crashOp) {
	t.Helper()
	for _, line := range lines {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "ready":
			if rev, _ := strconv.ParseUint(f[1], 10, 64); rev != m.rev {
				t.Fatalf("round %d: the child opened the store at revision %d, the model is at %d", round, rev, m.rev)
			}
		case len(f) == 5 && f[0] == "begin":
			pending = &crashOp{op: f[1], kind: f[2], name: f[3], tag: f[4]}
		case len(f) == 5 && f[0] == "ack":
			rv, err := strconv.ParseUint(f[4], 10, 64)
			if err != nil || pending == nil || pending.key() != f[2]+"/"+f[3] || pending.op != f[1] {
				t.Fatalf("round %d: ack %q does not match the write begun (%+v)", round, line, pending)
			}
			if rv != m.rev+1 {
				t.Fatalf("round %d: write acknowledged at revision %d, want %d", round, rv, m.rev+1)
			}
			m.apply(*pending, rv)
			pending = nil
			acks++
		default:
			// test framework output; ignore
		}
	}
	return acks, pending
}

// verify opens the store after a kill and compares it with the model; if
// the write in flight turns out to be committed, the model takes it and
// verify returns true.
func (m *crashModel) verify(t *testing.T, round int, path string, pending *crashOp) (committed bool) {
	t.Helper()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && m.rev == 0 {
		return false // killed before the store was created
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("round %d: the store does not open after the kill: %v", round, err)
	}
	defer s.Close()
	checkConsistent(t, s)

	// With the write in flight committed, the store is the model plus that
	// write at the next revision.
	committed = s.Revision() == m.rev+1 && pending != nil
	if s.Revision() != m.rev && !committed {
		t.Fatalf("round %d: store at revision %d, the acknowledged writes end at %d (in flight: %+v)", round, s.Revision(), m.rev, pending)
	}
	if committed {
		m.apply(*pending, m.rev+1)
	}
	got := map[string]crashObject{}
	for _, kind := range crashKinds {
		objs, _, err := s.List(context.Background(), kind)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, o := range objs {
			var spec, status struct{ Tag string }
			if err := json.Unmarshal(o.Spec, &spec); err != nil {
				t.Fatalf("round %d: %s: spec %s: %v", round, o.Key(), o.Spec, err)
			}
			if o.Status != nil {
				if err := json.Unmarshal(o.Status, &status); err != nil {
					t.Fatalf("round %d: %s: status %s: %v", round, o.Key(), o.Status, err)
				}
			}
			got[o.Key()] = crashObject{rv: o.ResourceVersion, spec: spec.Tag, stat: status.Tag}
		}
	}
	for key, want := range m.objects {
		if g, ok := got[key]; !ok || g != want {
			t.Errorf("round %d: %s is %+v (present: %t), want %+v", round, key, g, ok, want)
		}
	}
	for key, g := range got {
		if _, ok := m.objects[key]; !ok {
			t.Errorf("round %d: %s (%+v) was never acknowledged", round, key, g)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("round %d: directory holds %d entries after recovery, want only the store", round, len(entries))
	}
	if t.Failed() {
		t.FailNow()
	}
	return committed
}

// TestMain runs the tests, or, in a process that TestCrash started, the
// crash child.
func TestMain(m *testing.M) {
	if path := os.Getenv(envCrashStore); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild is the writing process of TestCrash. It announces each write
// ("begin OP KIND NAME TAG"), makes it, and acknowledges it once the call has
// returned ("ack OP KIND NAME RV"), until it is killed.
func crashChild(path string) {
	seed, _ := strconv.ParseUint(os.Getenv(envCrashSeed), 10, 64)
	round := os.Getenv(envCrashRound)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}

	s, err := Open(path, Options{LockTimeout: 10 * time.Second})
	if err != nil {
		fail(err)
	}
	known := map[string]Object{}
	for _, kind := range crashKinds {
		objs, _, err := s.List(ctx, kind)
		if err != nil {
			fail(err)
		}
		for _, o := range objs {
			known[o.Key()] = o
		}
	}
	fmt.Printf("ready %d\n", s.Revision())

	for step := 0; step < 1_000_000; step++ {
		kind := crashKinds[rng.IntN(len(crashKinds))]
		name := fmt.Sprintf("obj-%02d", rng.IntN(crashNames))
		tag := fmt.Sprintf("r%ss%d", round, step)
		// Values from tiny to several pages, so that commits also split
		// pages and write overflow pages.
		value := fmt.Sprintf(`{"tag":%q,"pad":%q}`, tag, strings.Repeat("x", rng.IntN(3)*rng.IntN(6000)))

		cur, exists := known[kind+"/"+name]
		op := "create"
		if exists {
			switch r := rng.IntN(100); {
			case r < 55:
				op = "update"
			case r < 85:
				op = "status"
			default:
				op = "delete"
			}
		}
		fmt.Printf("begin %s %s %s %s\n", op, kind, name, tag)
		var (
			got Object
			rv  uint64
		)
		switch op {
		case "create":
			got, err = s.Create(ctx, Object{Kind: kind, Name: name, Spec: json.RawMessage(value)})
		case "update":
			cur.Spec = json.RawMessage(value)
			got, err = s.Update(ctx, cur)
		case "status":
			cur.Status = json.RawMessage(value)
			got, err = s.UpdateStatus(ctx, cur)
		case "delete":
			err = s.Delete(ctx, kind, name, cur.ResourceVersion)
			rv = s.Revision()
			delete(known, kind+"/"+name)
		}
		if err != nil {
			fail(err)
		}
		if op != "delete" {
			known[got.Key()] = got
			rv = got.ResourceVersion
		}
		fmt.Printf("ack %s %s %s %d\n", op, kind, name, rv)
	}
	fail(errors.New("the crash child ran out of steps before it was killed"))
}
