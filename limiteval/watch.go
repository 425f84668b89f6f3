package limiteval

import (
	"bytes"
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

	subsMu sync.Mutex
	subs   map[*subscriber]struct{}
}

// FeedEvery is how often the enforced limits' changes are sent to the
// subscribers: it coalesces a burst of commits into one update.
const FeedEvery = 100 * time.Millisecond

// subscriberBuffer is how many updates a subscriber may fall behind before
// it is dropped (it then subscribes again, from a snapshot).
const subscriberBuffer = 64

type subscriber struct {
	org string // "" for every organization
	ch  chan usage.LimitUpdate
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
	w := &Watcher{usage: cw, now: now, ev: New(), subs: map[*subscriber]struct{}{}}
	// Thresholds already met were notified with the counts that met them,
	// or when the limit was set (Changed), and the outbox knows them,
	// pending or delivered: appending them again leaves them so. One it
	// does not know is a crossing whose notification was lost to a crash
	// between storing a changed limit and Changed: it is written now.
	err := cw.WatchCommits(func(state store.StateReader) (store.Effects, error) {
		t := now()
		var found []Crossing
		var changes []store.StateChange
		for _, l := range limits {
			met, ch, err := w.set(ctx, l, t, state)
			if err != nil {
				return store.Effects{}, err
			}
			found, changes = append(found, met...), append(changes, ch...)
		}
		// The state of limits deleted before a crash let them be
		// forgotten.
		orphans, err := w.ev.orphanedState(state)
		if err != nil {
			return store.Effects{}, err
		}
		return store.Effects{Notifications: Notifications(found, now()), State: append(changes, orphans...)}, nil
	}, w.observe)
	if err != nil {
		return nil, err
	}
	go w.feed(ctx)
	go w.sweep(ctx)
	return w, nil
}

// Subscribe returns every enforced limit of organization org (of all of
// them for "") with the values of their current windows, and a channel of
// the changes that follow: the same values again where a commit changed
// them, at most every FeedEvery. The channel is closed when the
// subscriber falls behind by more than a few updates, or when the
// watcher stops; cancel ends the subscription.
func (w *Watcher) Subscribe(_ context.Context, org string) (snapshot usage.LimitUpdate, updates <-chan usage.LimitUpdate, cancel func(), err error) {
	s := &subscriber{org: org, ch: make(chan usage.LimitUpdate, subscriberBuffer)}
	// Under mu, no change is taken between the snapshot and the
	// subscription: what the snapshot misses the next update has.
	w.mu.Lock()
	snapshot = w.ev.Enforced(w.now(), org)
	w.subsMu.Lock()
	w.subs[s] = struct{}{}
	w.subsMu.Unlock()
	w.mu.Unlock()
	return snapshot, s.ch, func() {
		w.subsMu.Lock()
		defer w.subsMu.Unlock()
		if _, ok := w.subs[s]; ok {
			delete(w.subs, s)
			close(s.ch)
		}
	}, nil
}

// feed sends the enforced limits' changes to the subscribers every
// FeedEvery until ctx ends.
func (w *Watcher) feed(ctx context.Context) {
	t := time.NewTicker(FeedEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.subsMu.Lock()
			for s := range w.subs {
				delete(w.subs, s)
				close(s.ch)
			}
			w.subsMu.Unlock()
			return
		case <-t.C:
		}
		w.mu.Lock()
		u := w.ev.Changes(w.now())
		w.mu.Unlock()
		if u.Empty() {
			continue
		}
		w.subsMu.Lock()
		for s := range w.subs {
			part := u
			if s.org != "" {
				part = u.Of(s.org)
				if part.Empty() {
					continue
				}
			}
			select {
			case s.ch <- part:
			default: // behind: it starts again from a snapshot
				delete(w.subs, s)
				close(s.ch)
			}
		}
		w.subsMu.Unlock()
	}
}

// Changed starts evaluating l as it now is, created or changed, and
// notifies the thresholds its current window already meets.
func (w *Watcher) Changed(ctx context.Context, l usage.Limit) error {
	return w.usage.HoldCommits(func(state store.StateReader) (store.Effects, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		now := w.now()
		found, changes, err := w.set(ctx, l, now, state)
		if err != nil {
			return store.Effects{}, err
		}
		return store.Effects{Notifications: Notifications(found, now), State: changes}, nil
	})
}

// set starts evaluating l as of now, from the counts or, for a rolling
// window, from the evaluator's state.
func (w *Watcher) set(ctx context.Context, l usage.Limit, now time.Time, state store.StateReader) ([]Crossing, []store.StateChange, error) {
	if l.Window.Type == usage.WindowRolling {
		return w.ev.SetRolling(l, now, state)
	}
	found, err := w.ev.Set(l, now, w.rows(ctx))
	return found, nil, err
}

// Removed stops evaluating the limit id of organization org, and deletes
// its state.
func (w *Watcher) Removed(org, id string) {
	w.usage.HoldCommits(func(state store.StateReader) (store.Effects, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.ev.Remove(org, id)
		var eff store.Effects
		err := state(rollingPrefix(&usage.Limit{OrganizationID: org, ID: id}, false), func(k, _ []byte) error {
			eff.State = append(eff.State, store.StateChange{Key: bytes.Clone(k)})
			return nil
		})
		return eff, err
	})
}

// SweepEvery is how often the rolling windows of clients that stopped
// calling are forgotten (Evaluator.SweepRolling).
const SweepEvery = time.Minute

// sweep writes, every SweepEvery until ctx ends, the state that rolling
// windows dropped.
func (w *Watcher) sweep(ctx context.Context) {
	t := time.NewTicker(SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// An error leaves the state to the next sweep, or to the next
		// start's load: a store that fails to write is failed for every
		// write, and says so there.
		_ = w.usage.HoldCommits(func(store.StateReader) (store.Effects, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return store.Effects{State: w.ev.SweepRolling(w.now())}, nil
		})
	}
}

// RollingStatus returns the status of l, a limit of a rolling window, as
// of now: only the evaluator counts those (package doc of rolling.go).
func (w *Watcher) RollingStatus(_ context.Context, l *usage.Limit) (usage.LimitStatus, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ev.RollingStatus(l, w.now())
}

func (w *Watcher) rows(ctx context.Context) Rows {
	return func(q usage.Query) ([]usage.Row, error) { return w.usage.Query(ctx, q) }
}

// observe is the backend's commit watcher.
func (w *Watcher) observe(accepted []*usage.Event) store.Effects {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	found := w.ev.ObserveAll(now, accepted, nil)
	eff := store.Effects{State: w.ev.TakeState()}
	if len(found) > 0 {
		eff.Notifications = Notifications(found, now)
	}
	return eff
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

// Notifications returns the limit.threshold notifications of crossings cs,
// found at now, each with the crossing's ID.
func Notifications(cs []Crossing, now time.Time) []usage.Notification {
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
