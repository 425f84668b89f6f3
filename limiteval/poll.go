package limiteval

import (
	"context"
	"errors"
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
}

// PollerConfig configures NewPoller.
type PollerConfig struct {
	// Limits lists the limits of organization org, of every organization
	// for ""; required.
	Limits func(ctx context.Context, org string) ([]usage.Limit, error)
	// Rows answers a limit's query from the stored counts; required.
	Rows  func(ctx context.Context, q usage.Query) ([]usage.Row, error)
	Every time.Duration    // default DefaultPollEvery
	Now   func() time.Time // default time.Now
}

// DefaultPollEvery is how often a Poller counts.
const DefaultPollEvery = time.Second

// Validate reports every problem with the configuration.
func (c PollerConfig) Validate() error {
	var errs []error
	if c.Limits == nil {
		errs = append(errs, errors.New("limiteval: PollerConfig.Limits is required"))
	}
	if c.Rows == nil {
		errs = append(errs, errors.New("limiteval: PollerConfig.Rows is required"))
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Poller{cfg: cfg}, nil
}

// Subscribe returns every enforced limit of organization org (of all of
// them for "") with the values of their current windows, and a channel of
// what changes, counted every Every until cancel is called or ctx ends; the
// channel is then closed, and also when a count fails (the subscriber
// subscribes again).
func (p *Poller) Subscribe(ctx context.Context, org string) (usage.LimitUpdate, <-chan usage.LimitUpdate, func(), error) {
	var last polled
	snapshot, err := p.poll(ctx, org, &last)
	if err != nil {
		return usage.LimitUpdate{}, nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan usage.LimitUpdate, 1)
	go func() {
		defer close(ch)
		t := time.NewTicker(p.cfg.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			u, err := p.poll(ctx, org, &last)
			if err != nil {
				return
			}
			if u.Empty() {
				continue
			}
			select {
			case ch <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	return snapshot, ch, cancel, nil
}

// polled is what a subscriber was last sent: each limit's version, and
// each value.
type polled struct {
	versions map[[2]string]int64
	values   map[valueKey]usage.LimitValue
}

type valueKey struct{ org, id, client string }

// poll counts org's enforced limits and returns what differs from last,
// which it updates.
func (p *Poller) poll(ctx context.Context, org string, last *polled) (usage.LimitUpdate, error) {
	ls, err := p.cfg.Limits(ctx, org)
	if err != nil {
		return usage.LimitUpdate{}, err
	}
	now := p.cfg.Now()
	versions := map[[2]string]int64{}
	values := map[valueKey]usage.LimitValue{}
	var u usage.LimitUpdate
	for i := range ls {
		l := &ls[i]
		if !l.Enforced {
			continue
		}
		window, err := l.Window.Current(now)
		if err != nil {
			return usage.LimitUpdate{}, err
		}
		q, err := l.Query(window, window.Start.Location()).Normalize()
		if err != nil {
			return usage.LimitUpdate{}, err
		}
		rows, err := p.cfg.Rows(ctx, q)
		if err != nil {
			return usage.LimitUpdate{}, err
		}
		key := [2]string{l.OrganizationID, l.ID}
		versions[key] = l.Version
		if v, ok := last.versions[key]; !ok || v != l.Version {
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
		st := l.Status(window, rows)
		if l.Scope != usage.ScopeEachClient {
			put("", st.Value)
		}
		for _, c := range st.Clients {
			put(c.ClientID, c.Value)
		}
	}
	for key := range last.versions {
		if _, ok := versions[key]; !ok {
			u.Removed = append(u.Removed, usage.Limit{OrganizationID: key[0], ID: key[1]})
		}
	}
	last.versions, last.values = versions, values
	return u, nil
}
