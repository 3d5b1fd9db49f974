package repo

import (
	"bytes"
	"context"
	"errors"
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

	"strata.dev/strata/internal/testenv"
)

// The S3 server the tests run against: versitygw with its posix backend,
// built by hack/s3-server.sh (make host-setup).
const (
	s3ServerVersion = "v1.8.0"
	s3ServerDefault = "/var/cache/strata/s3/versitygw-" + s3ServerVersion + "/versitygw"
	envS3Server     = "STRATA_S3_SERVER"
	s3TestAccess    = "strata-test-access"
	s3TestSecret    = "strata-test-secret-0123456789"
)

// s3 is the package's shared server, started by TestMain; nil when the
// binary is absent (s3Skip says why).
var (
	s3     *s3Server
	s3Skip string
)

func TestMain(m *testing.M) {
	if os.Getenv(envCrashChild) != "" {
		crashChild()
		return
	}
	if os.Getenv(envLockChild) != "" {
		lockChild()
		return
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	os.Setenv(EnvS3AccessKey, s3TestAccess)
	os.Setenv(EnvS3SecretKey, s3TestSecret)
	bin := s3ServerBinary()
	if _, err := os.Stat(bin); err != nil {
		s3Skip = fmt.Sprintf("no S3 server binary at %s (build it with `make host-setup`, or set %s)", bin, envS3Server)
		return m.Run()
	}
	root, err := os.MkdirTemp(shmOrTemp(), "strata-repo-s3-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "S3 server directory:", err)
		return 1
	}
	defer os.RemoveAll(root)
	s3, err = startS3Server(bin, root, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s3.stop()
	return m.Run()
}

func s3ServerBinary() string {
	if p := os.Getenv(envS3Server); p != "" {
		return p
	}
	return s3ServerDefault
}

// shmOrTemp is /dev/shm when it is a directory (memory-backed, so the
// server's disk does not slow the benchmarks), else the temp directory.
func shmOrTemp() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// s3Server is a running versitygw.
type s3Server struct {
	cmd  *exec.Cmd
	addr string // 127.0.0.1:port
	root string
	log  *os.File
	done chan struct{}
}

// startS3Server starts versitygw serving root on addr (a free port when
// empty) and waits until it answers.
func startS3Server(bin, root, addr string) (*s3Server, error) {
	if addr == "" {
		var err error
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(root, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(root, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--access", s3TestAccess, "--secret", s3TestSecret,
		"--port", addr, "--quiet", "posix", data)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start S3 server %s: %w", bin, err)
	}
	s := &s3Server{cmd: cmd, addr: addr, root: root, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }() // the exit is expected: stop ends it
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.done:
			logf.Close()
			out, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("S3 server exited at start: %s", out)
		default:
		}
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("S3 server on %s did not answer within 20s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the server (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (s *s3Server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM) // fails only if it already exited
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.log.Close()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// url returns the URL of a repository in bucket (with a prefix).
func (s *s3Server) url(bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?endpoint=" + s.addr + "&insecure=true&retries=2"
}

// bucketName returns a bucket name unique to the test.
func bucketName(t testing.TB) string {
	name := strings.ToLower(t.Name())
	var b strings.Builder
	for _, c := range name {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	return strings.Trim(fmt.Sprintf("t%d-%s", time.Now().UnixNano()%1e9, n), "-")
}

// backend is a place to make test repositories.
type backend struct {
	name string
	// url returns a fresh, empty location for one repository.
	url func(t testing.TB) string
}

func fileBackend() backend {
	return backend{name: "file", url: func(t testing.TB) string {
		return "file://" + filepath.Join(t.TempDir(), "repo")
	}}
}

func s3Backend() backend {
	return backend{name: "s3", url: func(t testing.TB) string {
		if s3 == nil {
			testenv.Skipf(t, "%v", s3Skip)
		}
		return s3.url(bucketName(t), "strata/backups")
	}}
}

func backends() []backend { return []backend{fileBackend(), s3Backend()} }

// newRepo creates a repository at a fresh location of b and opens it.
func newRepo(t testing.TB, b backend) (*Repo, string, Key) {
	t.Helper()
	url := b.url(t)
	ctx := context.Background()
	key, err := Init(ctx, url, Options{KeyFile: filepath.Join(t.TempDir(), "key")})
	if err != nil {
		t.Fatalf("Init(%s): %v", url, err)
	}
	r, err := Open(ctx, url, key)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	return r, url, key
}

// backupFiles backs up the given files (name -> content reader) in one
// backup and commits it.
func backupFiles(t testing.TB, r *Repo, meta Meta, files ...testFile) Manifest {
	t.Helper()
	ctx := context.Background()
	w := r.NewBackup(meta)
	for _, f := range files {
		rd, err := f.open()
		if err != nil {
			t.Fatal(err)
		}
		err = w.AddFile(ctx, f.name, rd, f.mode)
		if c, ok := rd.(io.Closer); ok {
			c.Close()
		}
		if err != nil {
			w.Abort()
			t.Fatalf("AddFile(%s): %v", f.name, err)
		}
	}
	m, err := w.Commit(ctx)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return m
}

// testFile is a file to back up.
type testFile struct {
	name string
	mode os.FileMode
	path string // read from this file, or
	data []byte // this content
}

func (f testFile) open() (io.Reader, error) {
	if f.path != "" {
		return os.Open(f.path)
	}
	return bytes.NewReader(f.data), nil
}

// errIs fails the test unless err wraps target.
func errIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v; want one wrapping %v", err, target)
	}
}
