// Package server serves the store and defines a path.
package server

import "strata.dev/strata/internal/store"

// Prefix is where the API lives.
const Prefix = "/apis/"

// Serve serves.
func Serve() { store.Open() }
