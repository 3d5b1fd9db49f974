package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"strata.dev/strata/internal/testenv"
)

// hostSetup is the script that builds strata's guest kernel; sourced, it only
// defines its functions.
var hostSetup, _ = filepath.Abs(filepath.Join("..", "..", "hack", "host-setup.sh"))

// kernelStep runs script (bash) after sourcing hostSetup, with patches as
// STRATA_KERNEL_PATCHES and args as $1..., and returns its output.
func kernelStep(t *testing.T, patches, script string, args ...string) (string, error) {
	t.Helper()
	for _, prog := range []string{"bash", "patch", "sha256sum"} {
		if _, err := exec.LookPath(prog); err != nil {
			testenv.Skipf(t, "skipping: %s is not installed", prog)
		}
	}
	cmd := exec.Command("bash", append([]string{"-c", `source "$STRATA_TEST_HOST_SETUP"; STRATA_KERNEL_PATCHES=$STRATA_TEST_PATCHES; ` + script, "bash"}, args...)...)
	cmd.Env = append(os.Environ(), "STRATA_TEST_HOST_SETUP="+hostSetup, "STRATA_TEST_PATCHES="+patches)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestKernelPatchSteps: the build step applies the patches of its patch
// directory to the source tree, and when they change reverts the ones it
// applied before and applies the new ones; the cache key follows the patches,
// and without any it is the key of the configuration alone, as before there
// were patches.
func TestKernelPatchSteps(t *testing.T) {
	tree, patches := t.TempDir(), t.TempDir()
	const pristine = "one\ntwo\nthree\n"
	writeFiles(t, tree, map[string]string{"drivers/demo.c": pristine})
	two := "--- a/drivers/demo.c\n+++ b/drivers/demo.c\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n"
	three := "--- a/drivers/demo.c\n+++ b/drivers/demo.c\n@@ -1,3 +1,3 @@\n one\n two\n-three\n+THREE\n"
	demo := filepath.Join(tree, "drivers", "demo.c")
	key := func() string {
		t.Helper()
		out, err := kernelStep(t, patches, `STRATA_KERNEL_CONFIG=$1; strata_kernel_key 6.1.192-3`, filepath.Join("..", "..", "hack", "guest-kernel", "strata.config"))
		if err != nil {
			t.Fatalf("strata_kernel_key: %v\n%s", err, out)
		}
		return strings.TrimSpace(out)
	}
	step := func(want string) {
		t.Helper()
		if out, err := kernelStep(t, patches, `patch_strata_kernel "$1"`, tree); err != nil {
			t.Fatalf("patch_strata_kernel: %v\n%s", err, out)
		}
		if got := readFile(t, demo); got != want {
			t.Errorf("drivers/demo.c = %q, want %q", got, want)
		}
	}

	keyNone := key()
	// Without patches, the key is sha256 of the source line and the configuration, as before.
	cfg := readFile(t, filepath.Join("..", "..", "hack", "guest-kernel", "strata.config"))
	out, err := exec.Command("bash", "-c", `printf 'linux-source-6.1 6.1.192-3\n%s' "$1" | sha256sum | cut -c 1-16`, "-", cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(out)); keyNone != want {
		t.Errorf("key without patches = %s, want %s (the key of the configuration alone)", keyNone, want)
	}
	step(pristine)

	writeFiles(t, patches, map[string]string{"0001-two.patch": two})
	step("one\nTWO\nthree\n")
	keyTwo := key()
	step("one\nTWO\nthree\n") // applied already: nothing to do

	writeFiles(t, patches, map[string]string{"0001-two.patch": three})
	step("one\ntwo\nTHREE\n")
	if k := key(); k == keyTwo || k == keyNone {
		t.Errorf("key %s after the patch changed, want one other than %s and %s", k, keyTwo, keyNone)
	}

	if err := os.Remove(filepath.Join(patches, "0001-two.patch")); err != nil {
		t.Fatal(err)
	}
	step(pristine)
	if k := key(); k != keyNone {
		t.Errorf("key %s with the patches removed, want %s again", k, keyNone)
	}

	// A patch that does not apply fails the step and removes the tree, which the
	// next build unpacks afresh.
	writeFiles(t, patches, map[string]string{"0001-other.patch": strings.ReplaceAll(two, "two", "zwei")})
	if out, err := kernelStep(t, patches, `patch_strata_kernel "$1"`, tree); err == nil || !strings.Contains(out, "0001-other.patch does not apply") {
		t.Errorf("patch_strata_kernel with a patch that does not apply: %v\n%s", err, out)
	}
	if _, err := os.Stat(tree); !os.IsNotExist(err) {
		t.Errorf("the tree is still there after a patch failed: %v", err)
	}
}

// TestKernelPatchesApply applies the repository's kernel patches to the files
// they change, taken from Debian's kernel source package.
func TestKernelPatchesApply(t *testing.T) {
	const tarball = "/usr/src/linux-source-6.1.tar.xz"
	if _, err := os.Stat(tarball); err != nil {
		testenv.Skipf(t, "skipping: %v (apt-get install linux-source-6.1)", err)
	}
	patches, err := filepath.Abs(filepath.Join("..", "..", "hack", "guest-kernel", "patches"))
	if err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(patches, "*.patch"))
	if len(names) == 0 {
		t.Fatalf("no patches in %s", patches)
	}
	target := regexp.MustCompile(`(?m)^\+\+\+ b/(\S+)`)
	var files []string
	for _, n := range names {
		for _, m := range target.FindAllStringSubmatch(readFile(t, n), -1) {
			files = append(files, "linux-source-6.1/"+m[1])
		}
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", append([]string{"-xJf", tarball, "-C", dir}, files...)...).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	tree := filepath.Join(dir, "linux-source-6.1")
	if out, err := kernelStep(t, patches, `patch_strata_kernel "$1"`, tree); err != nil {
		t.Fatalf("the patches do not apply to %s: %v\n%s", tarball, err, out)
	}
	for file, param := range map[string]string{
		"drivers/char/virtio_console.c": "module_param(rx_bufs, uint, 0444);",
		"drivers/virtio/virtio_mmio.c":  "module_param(queue_size_max, uint, 0444);",
	} {
		if !strings.Contains(readFile(t, filepath.Join(tree, file)), param) {
			t.Errorf("%s lacks %q after the patches", file, param)
		}
	}
}
