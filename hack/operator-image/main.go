// Command operator-image writes strata's own image, the one deploy/operator runs, as an OCI
// image layout tarball: one layer holding a static strata command at /strata, which is the
// image's entrypoint, run as user 65532. `make operator-image` builds the command and runs this:
//
//	operator-image -program bin/strata-static -o bin/strata-image.tar strata:dev
package main

import (
	"flag"
	"fmt"
	"os"

	"strata.dev/strata/internal/testimage"
)

func main() {
	program := flag.String("program", "bin/strata-static", "the static strata command to put in the image")
	out := flag.String("o", "bin/strata-image.tar", "output tarball")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: operator-image [-program FILE] [-o TARBALL] [REF]  (REF defaults to strata:dev)")
		flag.PrintDefaults()
	}
	flag.Parse()
	ref := "strata:dev"
	if flag.NArg() > 0 {
		ref = flag.Arg(0)
	}
	if err := write(*out, *program, ref); err != nil {
		fmt.Fprintln(os.Stderr, "operator-image:", err)
		os.Exit(1)
	}
}

func write(out, program, ref string) error {
	b, err := os.ReadFile(program)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	err = testimage.BuildEntrypoint(f, ref, "strata", b, OperatorUser)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// OperatorUser is the user the image runs as, deploy/operator's runAsUser.
const OperatorUser = "65532:65532"
