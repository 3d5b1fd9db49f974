package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup/repo"
	"strata.dev/strata/internal/testenv"
)

// shop keeps its orders in a volume and its settings in its root filesystem; vault is a
// sandbox with data only in its root filesystem (gVisor keeps those writes in the
// sandbox's memory).
const (
	shop = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: shop}
spec:
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
  volumes: [{name: orders, mountPath: /orders}]
`
	vault = `apiVersion: strata.dev/v1alpha1
kind: Workload
metadata: {name: vault}
spec:
  isolation: sandbox
  image: localhost/busybox:1
  command: ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
`
)

// TestRestoreOnAnotherDaemon: one daemon backs up a container (volume and root
// filesystem) and a sandbox (root filesystem) as a group into a file repository; a
// second daemon, with its own store, containerd and network, connects the repository
// with the first one's key file and restores the group: the workloads run there with
// identical data. The second daemon connects read-only: it restores and lists locks, and
// refuses to back up, prune or unlock.
func TestRestoreOnAnotherDaemon(t *testing.T) {
	if _, err := os.Stat("/opt/strata/bin/runsc"); err != nil {
		testenv.Skipf(t, "the sandbox needs runsc: run `make host-setup`")
	}
	a := newE2E(t)
	a.start()
	a.must("image", "import", filepath.Join(a.dir, "busybox.tar"))
	a.applyDoc("shop", shop)
	a.applyDoc("vault", vault)
	a.eventually("shop and vault run", 90*time.Second, func() error {
		if _, err := a.running("shop", 1); err != nil {
			return err
		}
		_, err := a.running("vault", 1)
		return err
	})
	a.must("exec", "shop", "--", "sh", "-c", "dd if=/dev/urandom of=/orders/book bs=1024 count=2048 2>/dev/null; echo currency=EUR > /etc/shop.conf")
	a.must("exec", "vault", "--", "sh", "-c", "mkdir -p /srv/keys && dd if=/dev/urandom of=/srv/keys/k1 bs=1024 count=64 2>/dev/null")
	shopSums := a.sums("shop", "/orders/book", "/etc/shop.conf")
	vaultSums := a.sums("vault", "/srv/keys/k1")

	repoDir := filepath.Join(a.dir, "repo")
	a.must("repo", "init", "file://"+repoDir)
	keyFile := filepath.Join(a.dir, "data", "backup", "keys", "default.key")
	var b v1alpha1.Backup
	if err := json.Unmarshal([]byte(a.must("backup", "create", "shop", "vault", "--group", "store", "-o", "json")), &b); err != nil {
		t.Fatal(err)
	}
	if !b.FrozenTogether || len(b.Workloads) != 2 {
		t.Fatalf("backup %+v: want both workloads, frozen together", b)
	}

	other := newE2E(t)
	other.start()
	other.must("image", "import", filepath.Join(other.dir, "busybox.tar"))
	// Connected read-only, as a restore host with read-only credentials would be.
	other.must("repo", "connect", "file://"+repoDir, "--key-file", keyFile, "--read-only")
	if out := other.must("repo", "list"); !strings.Contains(out, "connected, read-only") {
		t.Errorf("repo list on the second daemon:\n%s\nwant the connection marked read-only", out)
	}
	if list := other.backups("default"); len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("the second daemon lists %+v, want %s", list, b.ID)
	}
	out := other.must("restore", b.ID)
	t.Logf("restore on the second daemon: %s", strings.TrimSpace(out))
	other.eventually("shop and vault run on the second daemon", 90*time.Second, func() error {
		if _, err := other.running("shop", 1); err != nil {
			return err
		}
		_, err := other.running("vault", 1)
		return err
	})
	if got := other.sums("shop", "/orders/book", "/etc/shop.conf"); got != shopSums {
		t.Errorf("shop on the second daemon:\n%s\nwant\n%s", got, shopSums)
	}
	if got := other.sums("vault", "/srv/keys/k1"); got != vaultSums {
		t.Errorf("vault on the second daemon:\n%s\nwant\n%s", got, vaultSums)
	}
	if w := other.workload("vault"); w.Status.Tier != v1alpha1.TierSandbox {
		t.Errorf("vault restored as a %s, want a sandbox", w.Status.Tier)
	}
	other.expectExit(2, "read-only", "backup", "create", "shop")
	other.expectExit(2, "read-only", "backup", "prune", "--keep-last", "1")

	// A third process writing a backup into the same repository holds a shared lock: the
	// daemons may still back up, but not prune, until it is done or its lock is removed.
	checkRepoLocks(t, a, other, repoDir, keyFile)
}

// checkRepoLocks holds a backup open in the test's own process and checks what the two
// daemons say and do about its lock.
func checkRepoLocks(t *testing.T, a, other *e2e, repoDir, keyFile string) {
	key, err := repo.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(t.Context(), "file://"+repoDir, key)
	if err != nil {
		t.Fatal(err)
	}
	w := r.NewBackup(repo.Meta{Workloads: []string{"outside"}, Group: "outside"})
	defer w.Abort()
	if err := w.AddBytes(t.Context(), "note", []byte("held open"), 0o600); err != nil {
		t.Fatal(err)
	}
	pid := fmt.Sprint(os.Getpid())
	a.expectExit(1, "pid "+pid, "backup", "prune", "--keep-last", "5")
	var locks struct {
		Items []v1alpha1.RepositoryLock `json:"items"`
	}
	if err := json.Unmarshal([]byte(other.must("repo", "locks", "-o", "json")), &locks); err != nil {
		t.Fatal(err)
	}
	if len(locks.Items) != 1 || locks.Items[0].Kind != "shared" || fmt.Sprint(locks.Items[0].PID) != pid || locks.Items[0].Stale {
		t.Fatalf("repo locks: %+v, want the test's live shared lock", locks.Items)
	}
	other.expectExit(2, "read-only", "repo", "unlock")
	if out := a.must("repo", "unlock"); !strings.Contains(out, "removed 0 locks") || !strings.Contains(out, "1 locks stay") {
		t.Errorf("unlock with only a live lock said %q, want nothing removed and the lock listed", out)
	}
	id := strings.TrimPrefix(locks.Items[0].Name, "locks/")
	if out := a.must("repo", "unlock", "--lock", id); !strings.Contains(out, "removed 1 locks") {
		t.Errorf("unlock --lock said %q", out)
	}
	a.must("backup", "prune", "--keep-last", "5")
	if _, err := w.Commit(t.Context()); err == nil {
		t.Error("a backup whose lock was removed committed; want it to fail (the lock is lost)")
	}
}
