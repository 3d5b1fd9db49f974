package netseg

import (
	"errors"
	"strings"
)

// Error kinds that the Manager returns, wrapped with context. Callers
// classify with errors.Is; only the API edge maps them to HTTP or exit codes.
var (
	// ErrInvalid: a name, subnet or option is malformed.
	ErrInvalid = errors.New("invalid network configuration")
	// ErrNotFound: no segment or attachment of that name.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request contradicts what exists (overlapping
	// subnets, an instance attached to another segment, a host link of the
	// same name that the manager did not make, a segment still in use).
	ErrConflict = errors.New("conflict")
	// ErrExhausted: the pool has no free subnet or the segment has no free
	// address.
	ErrExhausted = errors.New("address space exhausted")
)

// detail is err's message without the leading error kind, for messages
// that already say where and what kind.
func detail(err error) string {
	msg := err.Error()
	for _, kind := range []error{ErrInvalid, ErrNotFound, ErrConflict, ErrExhausted} {
		if rest, ok := strings.CutPrefix(msg, kind.Error()+": "); ok {
			return rest
		}
	}
	return msg
}
