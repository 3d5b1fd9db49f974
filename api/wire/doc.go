// Package wire holds what the daemon's HTTP API sends and receives besides the objects
// of api/v1alpha1: where the API lives (Prefix and the routes below it), the Status body
// of every error answer, the List body, and the request and result bodies of exec and
// snapshots.
//
// The server writes these types and the client reads them. The package imports nothing
// of strata's but api/v1alpha1, so a program that talks to the daemon (internal/client,
// the CLI's commands) pulls in none of the daemon's code: no store, no drivers, no
// assessor.
package wire
