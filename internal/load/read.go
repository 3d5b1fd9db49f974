package load

import (
	"fmt"
	"io"
)

// MaxInput bounds what strata reads from one input: 1 GiB.
const MaxInput = 1 << 30

func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxInput {
		return nil, fmt.Errorf("input is larger than %d bytes", MaxInput)
	}
	return b, nil
}
