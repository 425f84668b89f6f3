package ingest

import (
	"context"
	"time"
)

// Maintain expires dedupe records that have left the window, once at start
// and then every interval, until ctx ends. Records are kept one extra day so
// that an event at the window's edge is never judged against a half-expired
// record set.
func (p *Pipeline) Maintain(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		before := p.cfg.Now().Add(-p.cfg.DedupeWindow - 24*time.Hour)
		if err := p.cfg.Store.ExpireDedupe(ctx, before); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Error("expiring dedupe records", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
