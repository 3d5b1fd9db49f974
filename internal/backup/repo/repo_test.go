package repo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in   string
		want Location
	}{
		{"file:///var/lib/strata/backups", Location{Scheme: "file", Path: "/var/lib/strata/backups"}},
		{"file:///srv/b/../backups/", Location{Scheme: "file", Path: "/srv/backups"}},
		{"file://localhost/srv/backups", Location{Scheme: "file", Path: "/srv/backups"}},
		{"s3://strata-backups?endpoint=127.0.0.1:9000&insecure=true", Location{
			Scheme: "s3", Bucket: "strata-backups", Endpoint: "127.0.0.1:9000", Insecure: true,
			Region: defaultS3Region, Retries: defaultS3Retries}},
		{"s3://strata-backups/host-1/repo/?endpoint=s3.example.com:443&region=eu-west-1&retries=9", Location{
			Scheme: "s3", Bucket: "strata-backups", Prefix: "host-1/repo/", Endpoint: "s3.example.com:443",
			Region: "eu-west-1", Retries: 9}},
		{"s3://b.example", Location{Scheme: "s3", Bucket: "b.example", Endpoint: defaultS3Endpoint,
			Region: defaultS3Region, Retries: defaultS3Retries}},
	}
	for _, tc := range good {
		got, err := ParseURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		// String is a URL that parses back to the same location.
		again, err := ParseURL(got.String())
		if err != nil || again != got {
			t.Errorf("ParseURL(%q.String() = %q) = %+v, %v", tc.in, got.String(), again, err)
		}
	}

	bad := []struct{ in, says string }{
		{"", "no scheme"},
		{"/var/backups", "no scheme"},
		{"ftp://host/x", `unknown scheme "ftp"`},
		{"file://var/backups", "three slashes"},
		{"file:relative/path", "three slashes"},
		{"file:///", "root directory"},
		{"file:///x?y=1", "no query"},
		{"s3://", "no bucket"},
		{"s3://Bad_Bucket", "not a valid S3 bucket name"},
		{"s3://ab", "not a valid S3 bucket name"},
		{"s3://key:secret@bucket", "STRATA_S3_ACCESS_KEY"},
		{"s3://bucket/a//b", "prefix"},
		{"s3://bucket/a/../b", "prefix"},
		{"s3://bucket?endpoint=localhost", "want host:port"},
		{"s3://bucket?insecure=maybe", "want true or false"},
		{"s3://bucket?retries=0", "1 to 100"},
		{"s3://bucket?region=", "region is empty"},
		{"s3://bucket?endpont=x:1", `unknown parameter "endpont"`},
	}
	for _, tc := range bad {
		_, err := ParseURL(tc.in)
		errIs(t, err, ErrInvalid)
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ParseURL(%q) error %q does not say %q", tc.in, err, tc.says)
		}
		// Every message shows what a good URL looks like, or says what to
		// change.
		if !strings.Contains(err.Error(), "://") && !strings.Contains(err.Error(), "want") {
			t.Errorf("ParseURL(%q) error %q shows no good form", tc.in, err)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"file:///a/b", "s3://bucket/p?endpoint=h:1&insecure=true", "s3://b?region=x&retries=3", "file://x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := ParseURL(s)
		if err != nil {
			return
		}
		again, err := ParseURL(loc.String())
		if err != nil || again != loc {
			t.Fatalf("ParseURL(%q) = %+v; its String %q parses to %+v, %v", s, loc, loc.String(), again, err)
		}
	})
}

func TestS3Credentials(t *testing.T) {
	t.Setenv(EnvS3AccessKey, "")
	t.Setenv(EnvS3SecretKey, "")
	t.Setenv(envAWSAccessKeyID, "")
	t.Setenv(envAWSSecretKey, "")
	_, err := OpenStorage(context.Background(), "s3://bucket?endpoint=127.0.0.1:1")
	errIs(t, err, ErrInvalid)
	if !strings.Contains(err.Error(), EnvS3AccessKey) {
		t.Errorf("error %q does not name %s", err, EnvS3AccessKey)
	}
	t.Setenv(envAWSAccessKeyID, "a")
	t.Setenv(envAWSSecretKey, "b")
	if _, err := OpenStorage(context.Background(), "s3://bucket?endpoint=127.0.0.1:1"); err != nil {
		t.Errorf("with AWS_* set: %v", err)
	}
	t.Setenv(EnvS3AccessKey, "only-access")
	_, err = OpenStorage(context.Background(), "s3://bucket?endpoint=127.0.0.1:1")
	errIs(t, err, ErrInvalid)
}

// TestInitOpen covers creating and opening repositories on each backend:
// the key file, init twice, a non-empty location, the wrong key, a
// location without a repository, a newer format.
func TestInitOpen(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			testInitOpen(t, b)
		})
	}
}

func testInitOpen(t *testing.T, b backend) {
	ctx := context.Background()
	url := b.url(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")

	_, err := Open(ctx, url, Key{})
	errIs(t, err, ErrNotFound)
	_, err = Init(ctx, url, Options{})
	errIs(t, err, ErrInvalid)

	key, err := Init(ctx, url, Options{KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	read, err := ReadKeyFile(keyFile)
	if err != nil || read != key {
		t.Fatalf("ReadKeyFile = %v; want the key Init returned", err)
	}
	if strings.Contains(key.String(), key.Hex()[:8]) {
		t.Fatal("Key.String shows the key")
	}
	r, err := Open(ctx, url, key)
	if err != nil {
		t.Fatal(err)
	}
	if r.URL() == "" || len(r.ID()) != 32 {
		t.Fatalf("repository URL %q, ID %q", r.URL(), r.ID())
	}

	// Init twice: the location is not empty (and the key file exists).
	_, err = Init(ctx, url, Options{KeyFile: filepath.Join(dir, "key2")})
	errIs(t, err, ErrExists)
	if !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second Init: %v; want it to say the location is not empty", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "key2")); !os.IsNotExist(err) {
		t.Errorf("a refused Init left a key file: %v", err)
	}
	_, err = Init(ctx, b.url(t), Options{KeyFile: keyFile})
	errIs(t, err, ErrExists)
	if again, _ := ReadKeyFile(keyFile); again != key {
		t.Fatal("a refused Init changed the existing key file")
	}

	// The wrong key says so.
	other, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, url, other)
	errIs(t, err, ErrWrongKey)
	if !strings.Contains(err.Error(), "wrong key") || !strings.Contains(err.Error(), r.ID()) {
		t.Errorf("Open with the wrong key: %v; want it to say wrong key and name the repository", err)
	}

	// A repository of a newer format is refused with a clear error.
	st, err := OpenStorage(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.Get(ctx, configName)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["format"] = FormatVersion + 1
	newer, _ := json.Marshal(cfg)
	if err := st.Put(ctx, configName, newer); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, url, key)
	errIs(t, err, ErrUnsupportedFormat)
	if !strings.Contains(err.Error(), "upgrade strata") {
		t.Errorf("Open of a newer format: %v; want advice to upgrade", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "k")
	if err := WriteKeyFile(p, k, "repository x\nat file:///y"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(data), "# repository x\n# at file:///y\n") {
		t.Errorf("key file:\n%s", data)
	}
	got, err := ReadKeyFile(p)
	if err != nil || got != k {
		t.Fatalf("ReadKeyFile: %v", err)
	}
	errIs(t, WriteKeyFile(p, k, ""), ErrExists)
	if err := os.WriteFile(filepath.Join(dir, "bad"), []byte("# nothing\nxyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadKeyFile(filepath.Join(dir, "bad"))
	errIs(t, err, ErrInvalid)
}
