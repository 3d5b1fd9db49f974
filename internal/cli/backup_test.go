package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"strata.dev/strata/internal/golden"
)

// The commands print times in the local zone; the tests of this package run in UTC so that
// golden files hold the same times everywhere. (Set before any test starts a goroutine.)
func init() { time.Local = time.UTC }

// fakeDaemon answers the API's backup and snapshot routes with canned JSON on a unix
// socket, and logs every request it gets.
type fakeDaemon struct {
	socket string
	mu     sync.Mutex
	log    []string
}

// canned answers by "METHOD PATH" (after the API prefix), or by "METHOD PATH (VARIANT)" for a
// request whose body has a variant's marker (see variants); a status code other than 200
// goes first, as "404 {...}".
var canned = map[string]string{
	"POST workloads/ledger/snapshots": `{"apiVersion":"strata.dev/v1alpha1","kind":"Snapshot","metadata":{"name":"ledger.before"},
		"spec":{"workload":"ledger","name":"before","memory":true},
		"status":{"time":"2026-01-05T09:00:00Z","tier":"vm","consistency":"application","bytes":3221225472,
		"slots":[{"slot":0,"instance":"ledger-0","files":["disk.qcow2","memory"]},{"slot":1,"instance":"ledger-1","files":["disk.qcow2"]}],
		"warnings":["slot 1: the guest agent did not answer; its memory was not saved"]}}`,
	"POST workloads/ghost/snapshots": `404 {"kind":"Status","code":404,"reason":"NotFound","message":"workload ghost not found"}`,
	"GET snapshots": `{"items":[
		{"spec":{"workload":"ledger","name":"before","memory":true},"status":{"time":"2026-01-05T09:00:00Z","tier":"vm","consistency":"application","bytes":3221225472,"slots":[{"slot":0},{"slot":1}]}},
		{"spec":{"workload":"web","name":"snap-1"},"status":{"time":"2026-01-05T10:30:00Z","tier":"container","consistency":"crash","bytes":40960,"slots":[{"slot":0}]}},
		{"spec":{"workload":"web","name":"pending"}}]}`,
	"POST workloads/ledger/snapshots/before/restore": `{"spec":{"workload":"ledger","name":"before"},"status":{"time":"2026-01-05T09:00:00Z"}}`,
	"DELETE workloads/ledger/snapshots/before":       `{}`,
	"POST backups": `{"progress":{"workload":"web","file":"slot-0/volumes/data","bytes":1048576,"total":4194304,"unchanged":786432,"read":262144}}
{"progress":{"workload":"web","file":"slot-0/volumes/data","bytes":2097152,"total":4194304,"unchanged":1835008,"read":262144}}
{"progress":{"workload":"db","file":"slot-0/disk.qcow2","bytes":4194304,"total":4194304,"unchanged":1835008,"read":2359296}}
{"backup":{"id":"3f2a9c01d4e5b6a7","repo":"offsite","time":"2026-01-05T11:00:00Z","workloads":["web","db"],"group":"shop","size":4194304,"storedBytes":1048576,"unchangedBytes":1835008,"readBytes":2359296,"consistency":"application","frozenTogether":true,"seconds":2.5,"warnings":["db: no post hook"]}}`,
	"POST backups (ghost)": `{"progress":{"workload":"web","file":"slot-0/volumes/data","bytes":0,"total":4194304}}
{"error":{"reason":"NotFound","message":"workload ghost not found"}}`,
	"GET backups": `{"items":[{"id":"3f2a9c01d4e5b6a7","repo":"offsite","time":"2026-01-05T11:00:00Z","workloads":["web","db"],"group":"shop",
		"size":4194304,"storedBytes":1048576,"consistency":"application"},
		{"id":"0011223344556677","repo":"offsite","time":"2026-01-04T11:00:00Z","workloads":["ledger"],"group":"ledger",
		"size":512,"storedBytes":0,"consistency":"crash"}]}`,
	"POST backups/3f2a9c01d4e5b6a7/verify": `{"id":"3f2a9c01d4e5b6a7","ok":true,"files":7,"chunks":12,"bytes":4194304}`,
	"POST backups/0011223344556677/verify": `{"id":"0011223344556677","ok":false,"files":1,"chunks":1,"bytes":512,
		"problems":["slot-0/disk.qcow2: chunk 5e1d missing","slot-0/disk.qcow2: 512 bytes short"]}`,
	"DELETE backups/3f2a9c01d4e5b6a7": `{}`,
	"POST backups/prune": `{"kept":[{"id":"3f2a9c01d4e5b6a7"}],"deleted":[{"id":"0011223344556677","group":"ledger","time":"2026-01-04T11:00:00Z"}],
		"freedBytes":2097152}`,
	"POST backups/prune (dry run)": `{"kept":[{"id":"3f2a9c01d4e5b6a7"}],"deleted":[{"id":"0011223344556677","group":"ledger","time":"2026-01-04T11:00:00Z"}],
		"dryRun":true}`,
	"POST backups/3f2a9c01d4e5b6a7/restore": `{"backup":"3f2a9c01d4e5b6a7","time":"2026-01-05T11:00:00Z","seconds":4.25,
		"workloads":[{"from":"web","name":"web-copy","tier":"container"},{"from":"db","name":"db","tier":"vm"}]}`,
	"POST drills": `{"backup":"3f2a9c01d4e5b6a7","rtoSeconds":12.5,"rpoSeconds":3600,"workloads":["web","db"],"result":"succeeded","segment":"drill-ab12"}`,
	"POST drills (failed)": `{"backup":"0011223344556677","rtoSeconds":0,"rpoSeconds":86400,"workloads":["ledger"],"result":"failed",
		"message":"ledger-drill never became healthy: its health check failed 3 times","segment":"drill-cd34"}`,
}

// variants tell requests apart by their body.
var variants = map[string]string{`"dryRun":true`: "dry run", `"target":"ledger"`: "failed", `"ghost"`: "ghost"}

func startFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{socket: filepath.Join(t.TempDir(), "strata.sock")}
	l, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "/apis/strata.dev/v1alpha1/"
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		route := r.Method + " " + strings.TrimPrefix(r.URL.Path, prefix)
		d.mu.Lock()
		d.log = append(d.log, strings.TrimSpace(fmt.Sprintf("%s?%s %s", route, r.URL.RawQuery, body)))
		d.mu.Unlock()
		for marker, variant := range variants {
			if bytes.Contains(body, []byte(marker)) && canned[route+" ("+variant+")"] != "" {
				route += " (" + variant + ")"
			}
		}
		answer, ok := canned[route]
		if !ok {
			answer = `404 {"kind":"Status","code":404,"reason":"NotFound","message":"no route ` + route + `"}`
		}
		code := http.StatusOK
		if n, rest, found := strings.Cut(answer, " "); found && len(n) == 3 && n[0] >= '1' && n[0] <= '5' {
			_, _ = fmt.Sscan(n, &code)
			answer = rest
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, answer)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return d
}

func (d *fakeDaemon) requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.log
	d.log = nil
	return l
}

// TestBackupSnapshotCommands runs the backup, restore, drill and snapshot commands against
// a daemon that answers with canned objects, and holds what they print, what they send and
// how they fail in one golden file: the commands' shape, output and errors stay as they are.
func TestBackupSnapshotCommands(t *testing.T) {
	d := startFakeDaemon(t)
	// A restore says how long it took on this side; that is the one figure that varies.
	took := regexp.MustCompile(`in [0-9.]+[µmn]?s\n`)
	var report bytes.Buffer
	for _, args := range [][]string{
		{"snapshot", "create", "ledger", "--name", "before", "--memory"},
		{"snapshot", "create", "ledger", "-o", "json"},
		{"snapshot", "create", "ledger", "-o", "yaml"},
		{"snapshot", "create", "ghost"},
		{"snapshot", "list"},
		{"snapshot", "list", "web", "-o", "json"},
		{"snapshot", "restore", "ledger", "before"},
		{"snapshot", "delete", "ledger", "before"},
		{"backup", "create", "web", "db", "--group", "shop", "--repo", "offsite"},
		{"backup", "create", "web", "db", "-o", "json"},
		{"backup", "create", "web", "--force-read"},
		{"backup", "create", "web", "ghost"},
		{"backup", "list", "--repo", "offsite"},
		{"backup", "list", "-o", "json"},
		{"backup", "verify", "3f2a9c01d4e5b6a7"},
		{"backup", "verify", "0011223344556677", "--repo", "offsite"},
		{"backup", "delete", "3f2a9c01d4e5b6a7", "--repo", "offsite"},
		{"backup", "prune", "--keep-last", "3", "--dry-run"},
		{"backup", "prune", "--keep-daily", "7"},
		{"backup", "prune", "--keep-daily", "7", "-o", "json"},
		{"restore", "3f2a9c01d4e5b6a7", "--as", "copy", "--workload", "web", "--repo", "offsite"},
		{"restore", "3f2a9c01d4e5b6a7", "-o", "json"},
		{"drill", "shop", "--repo", "offsite"},
		{"drill", "ledger", "-o", "json"},
	} {
		var out, errOut bytes.Buffer
		root := NewRoot(Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
		root.SetArgs(append(args, "--socket", d.socket))
		root.SetOut(&errOut)
		root.SetErr(&errOut)
		err := root.Execute()
		fmt.Fprintf(&report, "$ strata %s\n%s", strings.Join(args, " "), took.ReplaceAllString(out.String(), "in TIME\n"))
		if errOut.Len() > 0 {
			fmt.Fprintf(&report, "-- stderr\n%s", errOut.String())
		}
		if err != nil {
			fmt.Fprintf(&report, "-- error (%T)\n%v\n", err, err)
		}
		for _, r := range d.requests() {
			fmt.Fprintf(&report, "-- sent %s\n", r)
		}
		report.WriteString("\n")
	}
	golden.Compare(t, "testdata/backup-snapshot-commands.txt", report.Bytes())
}
