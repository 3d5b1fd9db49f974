// Package archtest holds no code, only a test: it lists every package of the
// module with `go list` and fails when an import points the wrong way across
// strata's layers (see ARCHITECTURE.md at the repository root, whose import
// table mirrors the rules in archtest_test.go).
//
// Run it on its own with
//
//	go test ./internal/archtest
package archtest
