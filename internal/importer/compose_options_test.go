package importer

import (
	"os"
	"path/filepath"
	"testing"
)

// TestComposeOptions: a compose file takes its variables from the process environment, then
// the .env file beside it, or the env files of the options instead.
func TestComposeOptions(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(file, "services:\n  app:\n    image: registry.example/app:${APP_TAG}\n    healthcheck:\n      test: [CMD, true]\n      interval: $APP_INTERVAL\n")
	write(filepath.Join(dir, ".env"), "APP_TAG=1.0\nAPP_INTERVAL=30s\n")
	other := filepath.Join(dir, "release.env")
	write(other, "APP_TAG=2.0\nAPP_INTERVAL=1m\n")

	image := func(opts Options) string {
		t.Helper()
		set, errs := FilesWith([]string{file}, nil, opts)
		if len(errs) > 0 || len(set.Warnings) > 0 || len(set.Items) != 1 {
			t.Fatalf("%d items, errors:\n%v\nwarnings:\n%v", len(set.Items), errs, set.Warnings)
		}
		return set.Items[0].Workload.Spec.Image
	}
	if got := image(Options{}); got != "registry.example/app:1.0" {
		t.Errorf("with .env: image %q", got)
	}
	if got := image(Options{EnvFiles: []string{other}}); got != "registry.example/app:2.0" {
		t.Errorf("with --env-file: image %q", got)
	}
	t.Setenv("APP_TAG", "3.0")
	if got := image(Options{EnvFiles: []string{other}}); got != "registry.example/app:3.0" {
		t.Errorf("with the variable in the environment: image %q", got)
	}
}
