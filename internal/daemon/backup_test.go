package daemon_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/daemon"
	"strata.dev/strata/internal/testenv"
)

// ledger writes 3 MiB of random data into its volume once and keeps it; notes is a
// second workload with a volume, backed up together with ledger as a group.
const (
	ledger = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: ledger}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "[ -e /data/blob ] || { dd if=/dev/urandom of=/data/blob bs=1024 count=3072 2>/dev/null; echo v1 > /data/state; }; trap 'exit 0' TERM; sleep 100000 & wait"]
  volumes: [{name: data, mountPath: /data}]
  backup:
    hooks:
      pre: ["sh", "-c", "sync; echo flushed > /data/flushed"]
`
	notes = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: notes}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "[ -e /notes/n ] || echo first > /notes/n; trap 'exit 0' TERM; sleep 100000 & wait"]
  volumes: [{name: notes, mountPath: /notes}]
`
)

// applyDoc writes doc to a file and applies it.
func (e *e2e) applyDoc(name, doc string) {
	e.t.Helper()
	file := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.must("apply", "-f", file)
}

// sums is the SHA-256 of files as the workload's first instance reads them.
func (e *e2e) sums(workload string, files ...string) string {
	e.t.Helper()
	var out []string
	for _, f := range files {
		var data string
		e.eventually(workload+" reads "+f, 30*time.Second, func() error {
			var err error
			data, err = e.strata("exec", workload, "--", "cat", f)
			return err
		})
		out = append(out, fmt.Sprintf("%x %s (%d bytes)", sha256.Sum256([]byte(data)), f, len(data)))
	}
	return strings.Join(out, "\n")
}

// deleteGone deletes workloads, waits until they are gone, and removes their volume and
// disk directories as if the restore ran on another host.
func (e *e2e) deleteGone(names ...string) {
	e.t.Helper()
	for _, n := range names {
		e.must("delete", "workload", n, "--timeout", "60s")
		for _, d := range []string{"volumes", "disks"} {
			if err := os.RemoveAll(filepath.Join(e.dir, "data", d, n)); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// expectExit runs strata and checks its exit code and that its error says msg.
func (e *e2e) expectExit(code int, msg string, args ...string) {
	e.t.Helper()
	_, err := e.strata(args...)
	if exitCode(err) != code || err == nil || !strings.Contains(err.Error(), msg) {
		e.t.Errorf("strata %v: exit %d, %v; want exit %d saying %q", args, exitCode(err), err, code, msg)
	}
}

func (e *e2e) backups(repo string) []v1alpha1.Backup {
	e.t.Helper()
	var list struct {
		Items []v1alpha1.Backup `json:"items"`
	}
	if err := json.Unmarshal([]byte(e.must("backup", "list", "--repo", repo, "-o", "json")), &list); err != nil {
		e.t.Fatal(err)
	}
	return list.Items
}

// bridges lists the bridges in the harness's network namespace.
func (e *e2e) bridges() string {
	out, _ := exec.Command("ip", "-n", e.netns, "-o", "link", "show", "type", "bridge").Output()
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	return strings.Join(names, ",")
}

// TestBackupContainers: a container's volume is backed up into a file repository,
// the workload deleted (its volume too), and restored from the backup with identical
// data; a clash is refused; a group of two is backed up at one point and restored
// together under a suffix; another repository name connects with the key file, a wrong
// key is refused; verify, prune and delete work; and a drill restores the backup into a
// scratch segment, reports RTO and RPO, and leaves nothing behind.
func TestBackupContainers(t *testing.T) {
	e := newE2E(t)
	t.Setenv(daemon.BackupTickEnv, "1s")
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	e.applyDoc("ledger", ledger)
	e.applyDoc("notes", notes)
	e.eventually("ledger and notes run", 60*time.Second, func() error {
		if _, err := e.running("ledger", 1); err != nil {
			return err
		}
		_, err := e.running("notes", 1)
		return err
	})
	files := []string{"/data/blob", "/data/state"}
	e.eventually("ledger wrote its data", 20*time.Second, func() error {
		_, err := e.strata("exec", "ledger", "--", "cat", "/data/state")
		return err
	})
	before := e.sums("ledger", files...)

	// Repositories: the key stays on the daemon's host, never in the output.
	repoDir := filepath.Join(e.dir, "repo")
	out := e.must("repo", "init", "file://"+repoDir)
	keyFile := filepath.Join(e.dir, "data", "backup", "keys", "default.key")
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v %v, want mode 0600", keyFile, fi, err)
	}
	keyText, _ := os.ReadFile(keyFile)
	key := strings.TrimSpace(string(keyText[strings.LastIndexByte(strings.TrimSpace(string(keyText)), '\n')+1:]))
	if !strings.Contains(out, keyFile) || !strings.Contains(out, "losing the key loses every backup") || strings.Contains(out, key) {
		t.Errorf("repo init said %q: want where the key is and the warning, never the key", out)
	}
	e.expectExit(2, "repository URL", "repo", "init", "ftp://example/x", "--name", "bad")
	e.expectExit(1, "already known", "repo", "init", "file://"+filepath.Join(e.dir, "repo-x"))

	// Back up, change the data, delete the workload and its volume, restore.
	e.expectExit(2, "workload nope not found", "backup", "create", "nope")
	begin := time.Now()
	var b v1alpha1.Backup
	if err := json.Unmarshal([]byte(e.must("backup", "create", "ledger", "-o", "json")), &b); err != nil {
		t.Fatal(err)
	}
	t.Logf("backup of ledger (3 MiB volume) took %v", time.Since(begin).Round(time.Millisecond))
	if b.ID == "" || b.Consistency != "application" || b.Size < 3<<20 || b.StoredBytes <= 0 || strings.Join(b.Workloads, ",") != "ledger" {
		t.Errorf("backup %+v: want one application-consistent backup of ledger with its 3 MiB", b)
	}
	if list := e.backups("default"); len(list) != 1 || list[0].ID != b.ID || list[0].StoredBytes != b.StoredBytes {
		t.Errorf("backup list: %+v, want %s", list, b.ID)
	}
	var snaps struct {
		Items []v1alpha1.Snapshot `json:"items"`
	}
	if err := json.Unmarshal([]byte(e.must("snapshot", "list", "-o", "json")), &snaps); err != nil || len(snaps.Items) != 0 {
		t.Errorf("the backup's temporary snapshots are still there: %+v %v", snaps.Items, err)
	}
	if out := e.must("backup", "verify", b.ID); !strings.Contains(out, "all intact") {
		t.Errorf("verify said %q", out)
	}
	e.must("exec", "ledger", "--", "sh", "-c", "echo v2 > /data/state")
	e.expectExit(1, "--as", "restore", b.ID)
	e.deleteGone("ledger")
	begin = time.Now()
	out = e.must("restore", b.ID)
	t.Logf("restore of ledger took %v (command), output %q", time.Since(begin).Round(time.Millisecond), out)
	e.eventually("ledger runs again", 60*time.Second, func() error { _, err := e.running("ledger", 1); return err })
	if got := e.sums("ledger", files...); got != before {
		t.Errorf("after the restore:\n%s\nwant\n%s", got, before)
	}
	if w := e.workload("ledger"); w.Metadata.Annotations[v1alpha1.AnnotationHold] != "" {
		t.Errorf("the restored workload is still held: %v", w.Metadata.Annotations)
	}

	// Another name for the same repository: a wrong key is refused, the right one lists
	// the same backups (what a second host does with a copy of the key file).
	e.must("repo", "init", "file://"+filepath.Join(e.dir, "repo2"), "--name", "other")
	otherKey := filepath.Join(e.dir, "data", "backup", "keys", "other.key")
	e.expectExit(2, "wrong key", "repo", "connect", "file://"+repoDir, "--key-file", otherKey, "--name", "mirror")
	e.must("repo", "connect", "file://"+repoDir, "--key-file", keyFile, "--name", "mirror")
	if list := e.backups("mirror"); len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("the connected repository lists %+v, want %s", list, b.ID)
	}

	// A group: both workloads frozen together, restored together under a suffix.
	notesBefore := e.sums("notes", "/notes/n")
	var g v1alpha1.Backup
	if err := json.Unmarshal([]byte(e.must("backup", "create", "ledger", "notes", "--group", "shop", "-o", "json")), &g); err != nil {
		t.Fatal(err)
	}
	if !g.FrozenTogether || g.Group != "shop" || len(g.Workloads) != 2 || g.Consistency != "mixed" {
		t.Errorf("group backup %+v: want shop, frozen together, mixed consistency (only ledger has hooks)", g)
	}
	e.expectExit(1, "already exists", "restore", g.ID)
	// Restored through the connected name, as another host would.
	e.must("restore", g.ID, "--as", "copy", "--repo", "mirror")
	e.eventually("the group's copies run", 60*time.Second, func() error {
		if _, err := e.running("ledger-copy", 1); err != nil {
			return err
		}
		_, err := e.running("notes-copy", 1)
		return err
	})
	if got := e.sums("ledger-copy", files...); got != before {
		t.Errorf("ledger-copy:\n%s\nwant\n%s", got, before)
	}
	if got := e.sums("notes-copy", "/notes/n"); got != notesBefore {
		t.Errorf("notes-copy: %s, want %s", got, notesBefore)
	}
	e.deleteGone("ledger-copy", "notes-copy")

	// A drill of the group: its latest backup restored in a scratch segment, measured,
	// and removed.
	bridgesBefore := e.bridges()
	var d v1alpha1.DrillResult
	if err := json.Unmarshal([]byte(e.must("drill", "shop", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	t.Logf("drill of shop: RTO %.2fs, RPO %.2fs, %s", d.RTOSeconds, d.RPOSeconds, d.Message)
	if d.Result != v1alpha1.DrillSucceeded || d.Backup != g.ID || d.RTOSeconds <= 0 || d.RPOSeconds <= 0 || len(d.Workloads) != 2 {
		t.Errorf("drill %+v: want a successful drill of backup %s with RTO and RPO", d, g.ID)
	}
	e.checkDrillGone(d, bridgesBefore)
	if ev := e.must("events"); !strings.Contains(ev, "DrillSucceeded") {
		t.Errorf("no DrillSucceeded event:\n%s", ev)
	}

	// Prune (per group: ledger's older backup goes) and delete.
	var b2 v1alpha1.Backup
	if err := json.Unmarshal([]byte(e.must("backup", "create", "ledger", "-o", "json")), &b2); err != nil {
		t.Fatal(err)
	}
	if b2.StoredBytes >= b.StoredBytes {
		t.Errorf("a second backup of unchanged data stored %d bytes, the first %d: want deduplication", b2.StoredBytes, b.StoredBytes)
	}
	if out := e.must("backup", "prune", "--keep-last", "1", "--dry-run"); !strings.Contains(out, "would delete "+b.ID) || strings.Contains(out, g.ID) {
		t.Errorf("prune --dry-run said %q, want it to name %s only (the older backup of group ledger)", out, b.ID)
	}
	e.expectExit(2, "keeps nothing", "backup", "prune")
	if list := e.backups("default"); len(list) != 3 {
		t.Errorf("after a dry run: %d backups, want 3", len(list))
	}
	e.must("backup", "prune", "--keep-last", "1")
	e.must("backup", "delete", b2.ID)
	e.expectExit(2, "not found", "backup", "verify", b2.ID)
	if list := e.backups("default"); len(list) != 1 || list[0].ID != g.ID {
		t.Errorf("after prune and delete: %+v, want only %s", list, g.ID)
	}

	e.checkSchedule()
}

// ticker is backed up by the daemon's schedule every 10 s, keeping the last one.
const ticker = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: ticker}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "date > /t/started; trap 'exit 0' TERM; sleep 100000 & wait"]
  volumes: [{name: t, mountPath: /t}]
  backup: {schedule: "@every 10s", keep: {last: 1}}
`

// checkSchedule: a scheduled workload is backed up on its own, its status records it,
// the next backup prunes the one before, and the metrics and events say so.
func (e *e2e) checkSchedule() {
	t := e.t
	e.applyDoc("ticker", ticker)
	var first string
	e.eventually("a scheduled backup of ticker", 60*time.Second, func() error {
		st := e.workload("ticker").Status
		if st == nil || st.Backup == nil || st.Backup.LastSuccess == nil || st.Backup.LastBackupID == "" {
			return fmt.Errorf("status.backup %+v", st)
		}
		first = st.Backup.LastBackupID
		return nil
	})
	e.eventually("the next scheduled backup, and the first pruned", 40*time.Second, func() error {
		st := e.workload("ticker").Status
		if st.Backup.LastBackupID == first {
			return fmt.Errorf("still %s", first)
		}
		var mine []string
		for _, b := range e.backups("default") {
			if b.Group == "ticker" {
				mine = append(mine, b.ID)
			}
		}
		if len(mine) != 1 || mine[0] != st.Backup.LastBackupID {
			return fmt.Errorf("ticker's backups %v, want only %s (keep last 1)", mine, st.Backup.LastBackupID)
		}
		return nil
	})
	if ev := e.must("events"); !strings.Contains(ev, "BackedUp") {
		t.Errorf("no BackedUp event:\n%s", ev)
	}
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", e.socket)
	}}}
	resp, err := hc.Get("http://strata/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{`strata_backup_last_success_timestamp_seconds{workload="ticker"}`, "strata_backup_duration_seconds_count"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// checkDrillGone checks that a drill left no workload, segment, bridge, volume or disk.
func (e *e2e) checkDrillGone(d v1alpha1.DrillResult, bridgesBefore string) {
	e.t.Helper()
	out := e.must("get", "workloads")
	if strings.Contains(out, d.Segment) {
		e.t.Errorf("the drill's workloads are still there:\n%s", out)
	}
	e.eventually("the drill's segment and bridge are gone", 30*time.Second, func() error {
		if out := e.must("get", "segments"); strings.Contains(out, d.Segment) {
			return fmt.Errorf("segments:\n%s", out)
		}
		if got := e.bridges(); got != bridgesBefore {
			return fmt.Errorf("bridges %s, before the drill %s", got, bridgesBefore)
		}
		return nil
	})
	for _, w := range d.Workloads {
		for _, dir := range []string{"volumes", "disks"} {
			if _, err := os.Stat(filepath.Join(e.dir, "data", dir, w)); !os.IsNotExist(err) {
				e.t.Errorf("the drill left %s/%s: %v", dir, w, err)
			}
		}
	}
}

// bootDisk is a raw disk whose boot sector prints bootLine on the serial port and halts,
// followed by 3 MiB of random data: what a restore must bring back bit for bit.
func bootDisk(t *testing.T, path string) {
	t.Helper()
	code := []byte{
		0xFA, 0x31, 0xC0, 0x8E, 0xD8, // cli; xor ax, ax; mov ds, ax
		0xBE, 0x16, 0x7C, // mov si, 0x7c16: the line, right after the code
		0xBA, 0xF8, 0x03, // mov dx, 0x3f8: COM1
		0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8, // lodsb; test al, al; jz +3; out dx, al; jmp back
		0xF4, 0xEB, 0xFD, // hlt; jmp hlt
	}
	disk := make([]byte, 4<<20)
	copy(disk, code)
	copy(disk[len(code):], bootLine+"\r\n\x00")
	disk[510], disk[511] = 0x55, 0xAA
	if _, err := rand.Read(disk[1<<20:]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, disk, 0o600); err != nil {
		t.Fatal(err)
	}
}

const bootLine = "strata legacy disk up"

// s3Server starts versitygw inside the harness's network namespace (where the daemon
// runs) and returns its endpoint there; it skips when the binary is missing.
func s3Server(t *testing.T, e *e2e) string {
	t.Helper()
	bin := os.Getenv("STRATA_S3_SERVER")
	if bin == "" {
		bin = "/var/cache/strata/s3/versitygw-v1.8.0/versitygw"
	}
	if _, err := os.Stat(bin); err != nil {
		testenv.Skipf(t, "skipping: no S3 server at %s (build it with `make host-setup`, or set STRATA_S3_SERVER)", bin)
	}
	data := filepath.Join(e.dir, "s3")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.0.1:19000"
	t.Setenv("STRATA_S3_ACCESS_KEY", "strata-e2e-access")
	t.Setenv("STRATA_S3_SECRET_KEY", "strata-e2e-secret-0123456789")
	logf, err := os.Create(filepath.Join(e.dir, "s3.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net=/run/netns/"+e.netns, bin, "--access", "strata-e2e-access", "--secret", "strata-e2e-secret-0123456789",
		"--port", addr, "--quiet", "posix", data)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	e.eventually("the S3 server answers", 20*time.Second, func() error {
		out, err := exec.Command("nsenter", "--net=/run/netns/"+e.netns, "ss", "-ltn").Output()
		if err == nil && !strings.Contains(string(out), addr) {
			err = fmt.Errorf("nothing listens on %s:\n%s", addr, out)
		}
		return err
	})
	return addr
}

// TestBackupVMDiskS3: a disk VM and a container are backed up together into an S3
// repository (versitygw), deleted with their disks and volumes, and restored: the VM's
// slot disk holds the same blocks as before (qemu-img compare) and the volume the same
// bytes.
func TestBackupVMDiskS3(t *testing.T) {
	e := newE2E(t)
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Skipf(t, "skipping: %s not found (make host-setup)", bin)
		}
	}
	addr := s3Server(t, e)
	e.start()
	e.must("image", "import", filepath.Join(e.dir, "busybox.tar"))
	// The daemon boots VM disks from its images directory only.
	disk := filepath.Join(e.dir, "data", "images", "legacy.img")
	if err := os.MkdirAll(filepath.Dir(disk), 0o700); err != nil {
		t.Fatal(err)
	}
	bootDisk(t, disk)
	e.applyDoc("legacy", fmt.Sprintf(`apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: legacy}
spec:
  vm: {disk: {path: %s, format: raw}}
  resources: {memory: 64Mi}
`, disk))
	e.applyDoc("ledger", ledger)
	e.eventually("the legacy VM boots", 120*time.Second, func() error {
		out, err := e.strata("logs", "legacy")
		if err == nil && !strings.Contains(out, bootLine) {
			err = fmt.Errorf("console so far: %q", out)
		}
		return err
	})
	e.eventually("ledger runs", 60*time.Second, func() error { _, err := e.running("ledger", 1); return err })
	e.eventually("ledger wrote its data", 20*time.Second, func() error {
		_, err := e.strata("exec", "ledger", "--", "cat", "/data/state")
		return err
	})
	files := []string{"/data/blob", "/data/state"}
	before := e.sums("ledger", files...)

	url := "s3://strata-e2e/host1?endpoint=" + addr + "&insecure=true"
	e.must("repo", "init", url, "--name", "s3")
	begin := time.Now()
	var b v1alpha1.Backup
	if err := json.Unmarshal([]byte(e.must("backup", "create", "legacy", "ledger", "--repo", "s3", "-o", "json")), &b); err != nil {
		t.Fatal(err)
	}
	t.Logf("backup of a 4 MiB disk VM and a 3 MiB volume to S3 took %v", time.Since(begin).Round(time.Millisecond))
	if !b.FrozenTogether || b.Size < 7<<20 {
		t.Errorf("backup %+v: want both workloads frozen together, 7 MiB or more", b)
	}
	if list := e.backups("s3"); len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("backup list --repo s3: %+v", list)
	}
	e.deleteGone("legacy", "ledger")
	// The image changes after the backup: the restored slot disk must hold the blocks
	// backed up, not the image's new ones.
	orig := filepath.Join(e.dir, "legacy-at-backup.img")
	data, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orig, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(data[1<<20:]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(disk, data, 0o600); err != nil {
		t.Fatal(err)
	}
	begin = time.Now()
	e.must("restore", b.ID, "--repo", "s3")
	t.Logf("restore from S3 took %v", time.Since(begin).Round(time.Millisecond))
	e.eventually("the restored VM boots", 120*time.Second, func() error {
		out, err := e.strata("logs", "legacy")
		if err == nil && !strings.Contains(out, bootLine) {
			err = fmt.Errorf("console so far: %q", out)
		}
		return err
	})
	e.eventually("ledger runs again", 60*time.Second, func() error { _, err := e.running("ledger", 1); return err })
	slotDisk := filepath.Join(e.dir, "data", "disks", "legacy", "0", "disk.qcow2")
	if out, err := exec.Command("qemu-img", "compare", "-U", slotDisk, orig).CombinedOutput(); err != nil {
		t.Errorf("the restored slot disk differs from the disk backed up: %v\n%s", err, out)
	}
	if out, err := exec.Command("qemu-img", "compare", "-U", slotDisk, disk).CombinedOutput(); exitCode(err) != 1 {
		t.Errorf("the restored slot disk matches the changed image (exit %d): the restore did not bring back the saved blocks\n%s", exitCode(err), out)
	}
	if got := e.sums("ledger", files...); got != before {
		t.Errorf("after the restore:\n%s\nwant\n%s", got, before)
	}
}
