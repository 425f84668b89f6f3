package clickhouse

import "context"

// OpenWithHook opens a Store whose batches call hook after each step of
// the protocol: hook may block (a paused node) and returns true to stop the
// batch there, as if its node had died.
func OpenWithHook(ctx context.Context, cfg Config, hook func(step string) (stop bool)) (*Store, error) {
	return open(ctx, cfg, hook)
}
