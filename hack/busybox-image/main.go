// Command busybox-image writes an OCI image layout tarball of Debian's busybox-static, for the
// demo and for trying strata without a registry: busybox-image -o busybox.tar localhost/busybox:1
package main

import (
	"flag"
	"fmt"
	"os"

	"strata.dev/strata/internal/testimage"
)

func main() {
	out := flag.String("o", "busybox.tar", "output tarball")
	flag.Parse()
	ref := "localhost/busybox:1"
	if flag.NArg() > 0 {
		ref = flag.Arg(0)
	}
	f, err := os.Create(*out)
	if err == nil {
		err = testimage.Build(f, ref)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "busybox-image:", err)
		os.Exit(1)
	}
}
