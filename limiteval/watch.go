package limiteval

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// Watcher evaluates an organization's limits on a backend that shows it
// every accepted event as it commits (store.CommitWatcher): the crossings it
// finds go into the outbox in the same commit as the counts that caused
// them, as limit.threshold notifications.
type Watcher struct {
	usage interface {
		store.CommitWatcher
		store.EventQuerier
		store.Outbox
	}
	now func() time.Time

	// mu guards ev between the commits, which call observe under the
	// backend's lock, and the changes of limits, which hold the commits.
	mu sync.Mutex
	ev *Evaluator
}

// Watch starts evaluating limits, every stored limit of every organization,
// on u if u can show its commits (store.CommitWatcher and store.Outbox); it
// returns nil, evaluating nothing, if it cannot. now is the clock.
func Watch(ctx context.Context, u store.Usage, limits []usage.Limit, now func() time.Time) (*Watcher, error) {
	cw, ok := u.(interface {
		store.CommitWatcher
		store.EventQuerier
		store.Outbox
	})
	if !ok {
		return nil, nil
	}
	w := &Watcher{usage: cw, now: now, ev: New()}
	err := cw.WatchCommits(func() error {
		t := now()
		for _, l := range limits {
			// Thresholds already met were notified with the counts that
			// met them, or when the limit was set (Changed).
			if _, err := w.ev.Set(l, t, w.rows(ctx)); err != nil {
				return err
			}
		}
		return nil
	}, w.observe)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Changed starts evaluating l as it now is, created or changed, and
// notifies the thresholds its current window already meets.
func (w *Watcher) Changed(ctx context.Context, l usage.Limit) error {
	var found []Crossing
	err := w.usage.HoldCommits(func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		var err error
		found, err = w.ev.Set(l, w.now(), w.rows(ctx))
		return err
	})
	if err != nil || len(found) == 0 {
		return err
	}
	return w.usage.AppendNotifications(ctx, notifications(found, w.now()))
}

// Removed stops evaluating the limit id of organization org.
func (w *Watcher) Removed(org, id string) {
	w.usage.HoldCommits(func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.ev.Remove(org, id)
		return nil
	})
}

func (w *Watcher) rows(ctx context.Context) Rows {
	return func(q usage.Query) ([]usage.Row, error) { return w.usage.Query(ctx, q) }
}

// observe is the backend's commit watcher.
func (w *Watcher) observe(accepted []*usage.Event) []usage.Notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	found := w.ev.ObserveAll(now, accepted, nil)
	if len(found) == 0 {
		return nil
	}
	return notifications(found, now)
}

// Payload is the data of a limit.threshold notification.
type Payload struct {
	LimitID      string  `json:"limitId"`
	LimitName    string  `json:"limitName"`
	LimitVersion int64   `json:"limitVersion"`
	Metric       string  `json:"metric"`
	Scope        string  `json:"scope"`
	ClientID     string  `json:"clientId,omitempty"` // the client's, for scope client or eachClient
	WindowStart  string  `json:"windowStart"`        // RFC 3339 in the limit's zone
	WindowEnd    string  `json:"windowEnd"`
	Threshold    int     `json:"threshold"`  // percent of Limit
	Value        float64 `json:"value"`      // the metric's value that met it
	Limit        float64 `json:"limit"`      // the limit's value
	Percentage   float64 `json:"percentage"` // Value as a percentage of Limit
	Enforced     bool    `json:"enforced"`
}

func notifications(cs []Crossing, now time.Time) []usage.Notification {
	ns := make([]usage.Notification, 0, len(cs))
	for i := range cs {
		c := &cs[i]
		client := c.ClientID
		if c.Limit.Scope == usage.ScopeClient {
			client = c.Limit.ClientID
		}
		p, _ := json.Marshal(Payload{
			LimitID: c.Limit.ID, LimitName: c.Limit.Name, LimitVersion: c.Limit.Version,
			Metric: c.Limit.Metric.String(), Scope: c.Limit.Scope.String(), ClientID: client,
			WindowStart: c.Window.Start.Format(time.RFC3339), WindowEnd: c.Window.End.Format(time.RFC3339),
			Threshold: c.Threshold, Value: c.Value, Limit: c.Limit.Value, Percentage: c.Limit.Percent(c.Value),
			Enforced: c.Limit.Enforced,
		})
		ns = append(ns, usage.Notification{ID: c.ID(), OrganizationID: c.Limit.OrganizationID,
			Type: usage.NotificationLimitThreshold, Time: now, Payload: p})
	}
	return ns
}
