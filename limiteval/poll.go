package limiteval

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/usaged/usaged/usage"
)

// Poller is the limits feed of a backend that cannot show its commits (the
// cluster store, the in-memory one): it counts the current window of every
// enforced limit exactly from the stored counts, through the query path of
// the status, every Every. Its values are as fresh as Every plus a query;
// the Watcher's, sent as commits change them, are fresher.
type Poller struct {
	cfg PollerConfig

	mu    sync.Mutex
	polls map[string]*poll // by organization, "" for all: its subscribers share one count
}

// poll is the counting of one organization's limits (all of them for ""),
// shared by its subscribers.
type poll struct {
	subs map[chan usage.LimitUpdate]struct{}
	last polled
	stop func()
}

// PollerConfig configures NewPoller.
type PollerConfig struct {
	// Limits lists the limits of organization org, of every organization
	// for ""; required.
	Limits func(ctx context.Context, org string) ([]usage.Limit, error)
	// Rows answers a limit's query from the stored counts; required.
	Rows func(ctx context.Context, q usage.Query) ([]usage.Row, error)
	// Rolling returns the status of l, a limit of a rolling window, now,
	// from whatever counts its minutes (the cluster's counters); nil
	// leaves rolling limits out of the feed: the stored counts, kept by
	// the hour, cannot count one.
	Rolling func(ctx context.Context, l *usage.Limit) (usage.LimitStatus, error)
	// MaxRows bounds the rows of one limit's count (the clients of a
	// limit on each client); default DefaultPollMaxRows.
	MaxRows int
	Every   time.Duration    // default DefaultPollEvery
	Now     func() time.Time // default time.Now
}

// Defaults of PollerConfig.
const (
	DefaultPollEvery   = time.Second // how often a Poller counts
	DefaultPollMaxRows = 100_000     // as the status route's queries
)

// Validate reports every problem with the configuration.
func (c PollerConfig) Validate() error {
	var errs []error
	if c.Limits == nil {
		errs = append(errs, errors.New("limiteval: PollerConfig.Limits is required"))
	}
	if c.Rows == nil {
		errs = append(errs, errors.New("limiteval: PollerConfig.Rows is required"))
	}
	if c.MaxRows < 0 {
		errs = append(errs, errors.New("limiteval: PollerConfig.MaxRows must not be negative"))
	}
	if c.Every < 0 {
		errs = append(errs, errors.New("limiteval: PollerConfig.Every must not be negative"))
	}
	return errors.Join(errs...)
}

// NewPoller returns a Poller.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultPollEvery
	}
	if cfg.MaxRows == 0 {
		cfg.MaxRows = DefaultPollMaxRows
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Poller{cfg: cfg, polls: map[string]*poll{}}, nil
}

// Subscribe returns every enforced limit of organization org (of all of
// them for "") with the values of their current windows, and a channel of
// what changes, counted every Every until cancel is called or ctx ends; the
// channel is then closed, and also when a count fails or the subscriber
// falls behind (it subscribes again). The subscribers of one organization
// share one count, so that many proxies cost the store no more queries than
// one.
func (p *Poller) Subscribe(ctx context.Context, org string) (usage.LimitUpdate, <-chan usage.LimitUpdate, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.polls[org]
	if pl == nil {
		pl = &poll{subs: map[chan usage.LimitUpdate]struct{}{}}
		if _, err := p.count(ctx, org, &pl.last); err != nil {
			return usage.LimitUpdate{}, nil, nil, err
		}
		run, stop := context.WithCancel(context.Background())
		pl.stop = stop
		p.polls[org] = pl
		go p.run(run, org, pl)
	}
	ch := make(chan usage.LimitUpdate, subscriberBuffer)
	pl.subs[ch] = struct{}{}
	cancel := func() { p.leave(org, pl, ch) }
	stop := context.AfterFunc(ctx, cancel)
	return pl.last.snapshot(), ch, func() { stop(); cancel() }, nil
}

// leave ends the subscription ch to pl, and pl's count with its last.
func (p *Poller) leave(org string, pl *poll, ch chan usage.LimitUpdate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := pl.subs[ch]; !ok {
		return
	}
	delete(pl.subs, ch)
	close(ch)
	if len(pl.subs) == 0 && p.polls[org] == pl {
		delete(p.polls, org)
		pl.stop()
	}
}

// run counts org's limits every Every and sends what changed to pl's
// subscribers until ctx ends; a count that fails ends every subscription.
func (p *Poller) run(ctx context.Context, org string, pl *poll) {
	t := time.NewTicker(p.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		last := pl.last // counted outside the lock, into a copy
		p.mu.Unlock()
		u, err := p.count(ctx, org, &last)
		p.mu.Lock()
		if ctx.Err() != nil {
			p.mu.Unlock()
			return
		}
		if err != nil {
			for ch := range pl.subs {
				delete(pl.subs, ch)
				close(ch)
			}
			delete(p.polls, org)
			p.mu.Unlock()
			return
		}
		pl.last = last
		for ch := range pl.subs {
			if u.Empty() {
				break
			}
			select {
			case ch <- u:
			default: // behind: it starts again from a snapshot
				delete(pl.subs, ch)
				close(ch)
			}
		}
		if len(pl.subs) == 0 {
			delete(p.polls, org)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// polled is what was last counted: each enforced limit, and each value.
type polled struct {
	limits map[[2]string]usage.Limit
	values map[valueKey]usage.LimitValue
}

// snapshot returns what last holds, as an update from nothing.
func (last *polled) snapshot() usage.LimitUpdate {
	var u usage.LimitUpdate
	for _, l := range last.limits {
		u.Limits = append(u.Limits, l)
	}
	for _, v := range last.values {
		u.Values = append(u.Values, v)
	}
	return u
}

type valueKey struct{ org, id, client string }

// count counts org's enforced limits and returns what differs from last,
// which it updates.
func (p *Poller) count(ctx context.Context, org string, last *polled) (usage.LimitUpdate, error) {
	ls, err := p.cfg.Limits(ctx, org)
	if err != nil {
		return usage.LimitUpdate{}, err
	}
	now := p.cfg.Now()
	limits := map[[2]string]usage.Limit{}
	values := map[valueKey]usage.LimitValue{}
	var u usage.LimitUpdate
	for i := range ls {
		l := &ls[i]
		rolling := l.Window.Type == usage.WindowRolling
		if !l.Enforced || rolling && p.cfg.Rolling == nil {
			// A rolling window cannot be counted from the stored counts; a
			// store that counts none refuses one, and one stored elsewhere
			// (a migrated store) is not enforced here.
			continue
		}
		var st usage.LimitStatus
		if rolling {
			st, err = p.cfg.Rolling(ctx, l)
		} else {
			st, err = l.CurrentStatus(now, p.cfg.MaxRows, func(q usage.Query) ([]usage.Row, error) { return p.cfg.Rows(ctx, q) })
		}
		if err != nil {
			return usage.LimitUpdate{}, err
		}
		window := st.Window
		key := [2]string{l.OrganizationID, l.ID}
		limits[key] = *l
		if old, ok := last.limits[key]; !ok || old.Version != l.Version {
			u.Limits = append(u.Limits, *l)
		}
		put := func(client string, x float64) {
			v := usage.LimitValue{OrganizationID: l.OrganizationID, LimitID: l.ID, Version: l.Version, Window: window, ClientID: client, Value: x}
			k := valueKey{l.OrganizationID, l.ID, client}
			values[k] = v
			if old, ok := last.values[k]; !ok || old.Version != v.Version || old.Value != v.Value || !old.Window.Start.Equal(v.Window.Start) {
				u.Values = append(u.Values, v)
			}
		}
		if l.Scope != usage.ScopeEachClient {
			put("", st.Value)
		}
		for _, c := range st.Clients {
			put(c.ClientID, c.Value)
		}
	}
	for key := range last.limits {
		if _, ok := limits[key]; !ok {
			u.Removed = append(u.Removed, usage.Limit{OrganizationID: key[0], ID: key[1]})
		}
	}
	last.limits, last.values = limits, values
	return u, nil
}
