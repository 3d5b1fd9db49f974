// Command strata is the command line of strata. Everything it does lives in internal/cli.
package main

import (
	"os"

	"strata.dev/strata/internal/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}
