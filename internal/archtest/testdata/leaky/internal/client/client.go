// Package client takes one constant of the server, and with it the server's closure.
package client

import (
	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/server"
)

// Path is where a kind lives.
func Path(k v1alpha1.Kind) string { return server.Prefix + string(k) }
