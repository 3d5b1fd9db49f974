package runtime

import "errors"

// Error kinds that drivers return, wrapped with context. Callers classify
// with errors.Is; only the API edge maps them to HTTP or exit codes.
var (
	// ErrNotFound: the driver owns no instance with this ID.
	ErrNotFound = errors.New("instance not found")
	// ErrAlreadyExists: the driver already owns an instance with this ID.
	ErrAlreadyExists = errors.New("instance already exists")
	// ErrUnsupported: the driver (or the registry) does not serve the tier
	// or the operation.
	ErrUnsupported = errors.New("not supported")
	// ErrInvalid: the spec or argument is malformed (see ValidateSpec).
	ErrInvalid = errors.New("invalid instance spec")
	// ErrImageNotFound: the spec's image is not in the driver's image store;
	// import it first.
	ErrImageNotFound = errors.New("image not found")
	// ErrRunning: the operation needs an exited instance (Remove); stop it
	// first.
	ErrRunning = errors.New("instance is running")
	// ErrNotRunning: the operation needs a running instance (Exec).
	ErrNotRunning = errors.New("instance is not running")
	// ErrTooLarge: the input is larger than a cap the daemon sets (an image
	// tarball, or what its layers unpack to).
	ErrTooLarge = errors.New("too large")
)
