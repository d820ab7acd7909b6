package relay

import (
	"context"
	"fmt"

	"smessenger/internal/store"
)

// ListQueue returns the live entries (dead=false) or the dead letters, for
// `smessenger server queue list`. Payloads are not included.
func ListQueue(ctx context.Context, st store.Store, dead bool) ([]store.QueueEntry, error) {
	es, err := st.ListQueue(ctx, dead)
	if err != nil {
		return nil, fmt.Errorf("relay: list queue: %w", err)
	}
	return es, nil
}

// Retry makes an entry (live or dead) due now.
func Retry(ctx context.Context, st store.Store, id string) error {
	if err := st.RetryNow(ctx, id); err != nil {
		return fmt.Errorf("relay: retry %s: %w", id, err)
	}
	return nil
}

// Drop deletes an entry without a bounce.
func Drop(ctx context.Context, st store.Store, id string) error {
	if err := st.DropEntry(ctx, id); err != nil {
		return fmt.Errorf("relay: drop %s: %w", id, err)
	}
	return nil
}
