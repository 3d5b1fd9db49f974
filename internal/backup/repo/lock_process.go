package repo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// processIdentity is what a lock says about the process that holds it, and
// what is needed to tell, on the same host, whether that process still
// runs.
type processIdentity struct {
	host  string // os.Hostname; "" when unknown (then no lock counts as this host's)
	pid   int
	nonce string // random, made once per process: tells this process from an earlier one with the same pid
	boot  string // /proc/sys/kernel/random/boot_id; "" when unknown
	start uint64 // the process's start time in clock ticks after boot; 0 when unknown
}

// thisProcess is the identity of the running process, computed once.
var thisProcess = sync.OnceValue(func() processIdentity {
	p := processIdentity{pid: os.Getpid()}
	if h, err := os.Hostname(); err == nil {
		p.host = h
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err == nil {
		p.nonce = hex.EncodeToString(b[:])
	}
	p.boot = bootID()
	p.start, _ = processStart(p.pid)
	return p
})

// bootID returns the kernel's random ID of the current boot, or "".
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// processStart returns the start time of process pid (field 22 of
// /proc/<pid>/stat, clock ticks after boot). Together with the pid it
// names one process of one boot: a pid used again has a later start.
func processStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat") //nolint:gosec // G703: the path is built from an integer pid
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses itself: the fields after it start at the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(s[i+1:])
	const startField = 22 - 3 // fields[0] is field 3, the state
	if len(fields) <= startField {
		return 0, false
	}
	v, err := strconv.ParseUint(fields[startField], 10, 64)
	return v, err == nil
}

// pidAlive reports whether a process with this pid exists on this host
// (signal 0 checks without sending anything; EPERM means it exists but
// belongs to another user).
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false // kill(0) and kill(-n) address process groups
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// heldLocks holds the names of the locks this process has taken and not
// yet released, keyed by repository ID and lock name. A lock that names
// this process but is not in the set was left behind (its release failed)
// and is stale.
var heldLocks = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

func heldKey(repoID, name string) string { return repoID + "\x00" + name }

func markHeld(repoID, name string, held bool) {
	heldLocks.Lock()
	defer heldLocks.Unlock()
	if held {
		heldLocks.m[heldKey(repoID, name)] = true
	} else {
		delete(heldLocks.m, heldKey(repoID, name))
	}
}

func isHeld(repoID, name string) bool {
	heldLocks.Lock()
	defer heldLocks.Unlock()
	return heldLocks.m[heldKey(repoID, name)]
}
