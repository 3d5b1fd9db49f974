// Command strata-guest is the init (PID 1) of strata's image microVMs and
// node VMs.
// Everything it does lives in internal/guest/initproc; build it static
// (CGO_ENABLED=0), as `make build` does.
package main

import "strata.dev/strata/internal/guest/initproc"

func main() {
	initproc.Main()
}
