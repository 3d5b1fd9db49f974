package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"strata.dev/strata/internal/client"
	"strata.dev/strata/internal/runtime/imagetar"
	"strata.dev/strata/internal/server"
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
	imp := cappedImporter{dir: t.TempDir(), lim: imagetar.Limits{MaxSize: 64 << 10, MaxUnpacked: 1 << 20}}
	c, _ := startWith(t, func(o *server.Options) { o.Images = imp })

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
