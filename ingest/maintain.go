package ingest

import (
	"context"
	"time"

	"github.com/usaged/usaged/store"
)

// Maintain expires dedupe records that have left the window, once at start
// and then every interval, until ctx ends, when the store expires them at
// its caller's request (store.DedupeExpirer); otherwise it returns at once,
// the store expiring them on its own. Records are kept one extra day so
// that an event at the window's edge is never judged against a half-expired
// record set.
func (p *Pipeline) Maintain(ctx context.Context, every time.Duration) {
	exp, ok := p.cfg.Store.(store.DedupeExpirer)
	if !ok {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		before := p.cfg.Now().Add(-p.cfg.DedupeWindow - 24*time.Hour)
		if err := exp.ExpireDedupe(ctx, before); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("expiring dedupe records", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
