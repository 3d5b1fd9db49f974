package initproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"strata.dev/strata/internal/guest"
)

// DefaultPath is the PATH of a program whose environment has none, as
// container runtimes set it.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// reaper collects the exit status of every child of the init. The statuses
// of the programs started through it go to their waiters; those of orphans
// that were re-parented to the init are dropped.
type reaper struct {
	mu      sync.Mutex // held while starting a program, so it is registered before it can be reaped
	waiters map[int]chan unix.WaitStatus
}

func newReaper() *reaper {
	r := &reaper{waiters: map[int]chan unix.WaitStatus{}}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	go func() {
		for range sigs {
			r.reap()
		}
	}()
	return r
}

// reap collects every child that has ended and reports whether any remain.
func (r *reaper) reap() (more bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil: // ECHILD: no children at all
			return false
		case pid == 0:
			return true
		}
		if ch, ok := r.waiters[pid]; ok {
			ch <- ws
			delete(r.waiters, pid)
		}
	}
}

// drain reaps until no children remain or timeout has passed.
func (r *reaper) drain(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for r.reap() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// command is a program to run in the root filesystem.
type command struct {
	args  []string
	env   []string // complete: see mergeEnv
	dir   string   // inside the root; "" is "/"
	user  string   // guest.Config.User
	files []*os.File
}

// process is a started program.
type process struct {
	pid  int
	done <-chan unix.WaitStatus // receives the exit status once
}

// start runs c chrooted into root, in a session of its own. Its errors
// (program not found, not executable, bad user or directory) give the exit
// code through guest.StartExitCode.
func (r *reaper) start(root string, c command) (*process, error) {
	dir := c.dir
	if dir == "" {
		dir = "/"
	}
	if !path.IsAbs(dir) {
		return nil, fmt.Errorf("working directory %q is not absolute", dir)
	}
	prog, err := lookPath(root, c.args[0], envValue(c.env, "PATH"), dir)
	if err != nil {
		return nil, err
	}
	cred, err := credential(root, c.user)
	if err != nil {
		return nil, err
	}
	fds := make([]uintptr, len(c.files))
	for i, f := range c.files {
		fds[i] = f.Fd()
	}
	attr := &syscall.ProcAttr{
		Dir: dir, Env: c.env, Files: fds,
		Sys: &syscall.SysProcAttr{Chroot: root, Credential: cred, Setsid: true},
	}
	done := make(chan unix.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(prog, c.args, attr)
	if err != nil {
		return nil, &fs.PathError{Op: "exec", Path: prog, Err: err}
	}
	r.waiters[pid] = done
	return &process{pid: pid, done: done}, nil
}

// exitCode is a wait status as a shell reports it: the exit status, or 128+N
// for a program that signal N ended.
func exitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 1
}

// lookPath finds the program file names inside root, as the kernel will see
// it after chroot: a name with a slash is taken as it is (relative to dir),
// other names are searched in pathList. Symlinks, absolute ones included,
// resolve inside root. The error wraps fs.ErrNotExist when nothing was found
// and fs.ErrPermission when only files that cannot be executed were.
func lookPath(root, file, pathList, dir string) (string, error) {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open root %s: %w", root, err)
	}
	defer unix.Close(rootFD)
	if strings.Contains(file, "/") {
		p := absIn(dir, file)
		return p, checkExecutable(rootFD, p)
	}
	if pathList == "" {
		pathList = DefaultPath
	}
	var denied error
	for _, d := range filepath.SplitList(pathList) {
		p := absIn(dir, path.Join(d, file))
		err := checkExecutable(rootFD, p)
		if err == nil {
			return p, nil
		}
		if denied == nil && !errors.Is(err, fs.ErrNotExist) {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("%q not found in PATH %s: %w", file, pathList, fs.ErrNotExist)
}

func absIn(dir, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(dir, p)
}

// checkExecutable reports whether p, resolved inside the directory rootFD,
// is a regular file with an execute bit.
func checkExecutable(rootFD int, p string) error {
	fd, err := unix.Openat2(rootFD, p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return &fs.PathError{Op: "exec", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "exec", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
		return &fs.PathError{Op: "exec", Path: p, Err: unix.EACCES}
	}
	return nil
}

// credential resolves a user spec, "USER" or "USER:GROUP" (numeric, or
// names from root's /etc/passwd and /etc/group), to the program's
// credentials; nil for root. A user without a group takes its primary group
// from /etc/passwd, or 0 when it has no entry there.
func credential(root, spec string) (*syscall.Credential, error) {
	if spec == "" {
		return nil, nil
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	uid, gid, ok := lookupID(filepath.Join(root, "etc/passwd"), userPart)
	if !ok {
		return nil, fmt.Errorf("user %q: not a number and not in the image's /etc/passwd", userPart)
	}
	if hasGroup {
		g, _, ok := lookupID(filepath.Join(root, "etc/group"), groupPart)
		if !ok {
			return nil, fmt.Errorf("group %q: not a number and not in the image's /etc/group", groupPart)
		}
		gid = g
	}
	return &syscall.Credential{Uid: uid, Gid: gid}, nil
}

// lookupID finds name (a number, or a name in the colon-separated database
// file) and returns its ID (field 3) and, for passwd, its group (field 4;
// 0 when unknown).
func lookupID(file, name string) (id, group uint32, ok bool) {
	if n, err := parseID(name); err == nil {
		id, ok = n, true
	}
	data, _ := os.ReadFile(file)
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		n, err := parseID(f[2])
		if err != nil || (f[0] != name && (!ok || n != id)) {
			continue
		}
		id, ok = n, true
		if len(f) > 3 {
			if g, err := parseID(f[3]); err == nil {
				group = g
			}
		}
		return id, group, ok
	}
	return id, group, ok
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// mergeEnv is base with add on top (an entry of add replaces base's entry
// of the same name), and PATH set to DefaultPath when neither has one.
func mergeEnv(base, add []string) []string {
	out := make([]string, 0, len(base)+len(add)+1)
	index := map[string]int{}
	for _, kv := range append(append([]string{}, base...), add...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	if _, ok := index["PATH"]; !ok {
		out = append(out, "PATH="+DefaultPath)
	}
	return out
}

// entrypointEnv is the Config's environment with what container runtimes
// add when it is missing: PATH, HOSTNAME, and HOME (the user's home from
// the image's /etc/passwd, else /root for root and / for others).
func entrypointEnv(root string, c guest.Config) []string {
	var add []string
	if c.Hostname != "" && envValue(c.Env, "HOSTNAME") == "" {
		add = append(add, "HOSTNAME="+c.Hostname)
	}
	if envValue(c.Env, "HOME") == "" {
		home := "/root"
		if cred, err := credential(root, c.User); err == nil && cred != nil {
			home = homeDir(filepath.Join(root, "etc/passwd"), cred.Uid)
		}
		add = append(add, "HOME="+home)
	}
	// The Config's own entries win over these defaults.
	return mergeEnv(add, c.Env)
}

// homeDir is uid's home directory in the passwd file, or "/" (or "/root"
// for root) when it has none.
func homeDir(passwd string, uid uint32) string {
	data, _ := os.ReadFile(passwd)
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 6 && f[2] == strconv.FormatUint(uint64(uid), 10) && f[5] != "" {
			return f[5]
		}
	}
	if uid == 0 {
		return "/root"
	}
	return "/"
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// startError is the ExitReport for a program that could not start.
func startError(err error) guest.ExitReport {
	return guest.ExitReport{ExitCode: guest.StartExitCode(err), Error: err.Error()}
}
