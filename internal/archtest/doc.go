// Package archtest holds no code, only tests: they list the module with `go list` and fail
// when an import points the wrong way across strata's layers. Two tables say what may
// import what (see "What may import what" in ARCHITECTURE.md at the repository root):
//
//   - rules (archtest_test.go) bound each package's own imports, for every package;
//   - layers (layers_test.go) bound whole dependency closures, from `go list -deps`, for
//     the layers that matter: the API, the client, the store, the driver contract and each
//     driver, the network manager, the controllers, the server, the daemon and the CLI.
//     They are allow lists: a package that a closure newly reaches, directly or through
//     other packages, has to be placed in the table on purpose. A layer may also list the
//     modules outside strata that its closure may import, as the client's does.
//
// Each table has a test that plants violations in a made-up module and checks they are
// caught; testdata/leaky is a small module whose client reaches a store through a server.
//
// Run them on their own with
//
//	go test ./internal/archtest
package archtest
