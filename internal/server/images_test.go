package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/runtime/imagetar"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
)

// cappedImporter imports as the drivers do as far as checking goes: the tarball is
// read and checked by imagetar under lim, and nothing is stored.
type cappedImporter struct {
	dir string
	lim imagetar.Limits
}

func (c cappedImporter) ImportImage(_ context.Context, r io.Reader) ([]string, error) {
	f, rep, err := imagetar.Read(r, c.dir, c.lim)
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	f.Close()
	return rep.Images, nil
}

// TestImportImageTooLarge: an upload over the size cap gets 413 with a message that
// names the cap and the flags that raise it, although the client is still sending
// (the server stops reading just past the cap).
func TestImportImageTooLarge(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "strata.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := server.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	imp := cappedImporter{dir: dir, lim: imagetar.Limits{MaxSize: 64 << 10, MaxUnpacked: 1 << 20}}
	go func() { done <- server.New(server.Options{Store: st, Images: imp}).Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = st.Close()
	}()
	c := client.NewUnix(sock)

	body := &countingReader{r: bytes.NewReader(make([]byte, 64<<20))}
	rd, err := c.Stream(context.Background(), http.MethodPost, "images", nil, body)
	if err == nil {
		rd.Close()
		t.Fatal("a 64 MiB upload over a 64 KiB cap was taken")
	}
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusRequestEntityTooLarge ||
		!strings.Contains(err.Error(), "65536") || !strings.Contains(err.Error(), "--max-image-size") {
		t.Fatalf("err = %v, want 413 naming the cap and --max-image-size", err)
	}
	if n := body.n.Load(); n > 32<<20 {
		t.Errorf("the client sent %d bytes before it had the answer", n)
	}
}

// countingReader counts what the client's transport read of a body; it may still be
// reading when the answer is in.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
