package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func newImage(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "image",
		Short:   "Manage the images the daemon runs",
		Example: "  strata image import busybox.tar",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "import FILE.tar",
		Short: "Import an image from an OCI image layout or docker-archive tarball",
		Long: `Import sends an image tarball to the daemon, which stores it under the name the tarball
gives it (the org.opencontainers.image.ref.name annotation of an OCI layout, or the
RepoTags of a docker archive) and unpacks it once for every later start.

The daemon checks the tarball before it stores anything: every name must be a valid image
reference, and the tarball and what its layers unpack to must stay within the daemon's caps
(strata serve --max-image-size, default 4Gi, and --max-image-unpacked, default 16Gi). A
refused or failed import registers no name and leaves an existing name's image in place.
Layers are unpacked by containerd, which resolves every name inside the image's own
file system.`,
		Example: `  strata image import busybox.tar`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("open %s: %w", args[0], err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return failure(err)
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			pr := &progress{r: f, total: fi.Size(), w: s.Err, name: args[0]}
			rd, err := cl.Stream(c.Context(), http.MethodPost, "images", nil, pr)
			pr.done()
			if err != nil {
				return failure(err)
			}
			defer rd.Close()
			var res struct {
				Images []string `json:"images"`
			}
			if err := json.NewDecoder(rd).Decode(&res); err != nil {
				return failure(err)
			}
			for _, ref := range res.Images {
				fmt.Fprintf(s.Out, "imported %s\n", ref)
			}
			return nil
		},
	})
	return cmd
}

// progress reports how much of an upload was sent, at most a few times a second.
type progress struct {
	r     io.Reader
	w     io.Writer
	name  string
	total int64
	sent  int64
	last  time.Time
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if time.Since(p.last) > 200*time.Millisecond && p.total > 1<<20 {
		p.last = time.Now()
		fmt.Fprintf(p.w, "\r%s: %3d%% (%d / %d MiB)", p.name, p.sent*100/p.total, p.sent>>20, p.total>>20)
	}
	return n, err
}

func (p *progress) done() {
	if p.total > 1<<20 {
		fmt.Fprintf(p.w, "\r%s: 100%% (%d MiB)          \n", p.name, p.total>>20)
	}
}
