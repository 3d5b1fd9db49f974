package runtime

import (
	"context"
	"errors"
)

// StatusOf lists the status of each of ids, for a driver's List: an ID that
// status reports as ErrNotFound (removed meanwhile) is left out; any other
// error ends the listing.
func StatusOf(ctx context.Context, ids []string, status func(context.Context, string) (Status, error)) ([]Status, error) {
	out := make([]Status, 0, len(ids))
	for _, id := range ids {
		st, err := status(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
