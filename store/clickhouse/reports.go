package clickhouse

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var _ store.Reports = (*Store)(nil)

// The reports fold the activity journal of a service, as the embedded
// backends fold what they keep, with the counting rules of package usage:
// only the rows of published batches, in (time, nanos, id) order, which is
// the (Time, ID) order that accounts fold in. A service moved from an
// embedded store starts from what the import wrote (imported_activity):
// its counters and its users' tallies per UTC day, which count in a range
// that holds the day's start (the reports' ranges are whole days), and its
// gauge reports and user events, merged into the journal's fold in (Time,
// ID) order.

// secondsAfter returns the first whole second (Unix s) at or after t: rows
// keep whole seconds, so they bound a read up to t, whose callers compare
// the exact times.
func secondsAfter(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return unixSeconds(t) + 1
	}
	return unixSeconds(t)
}

// imported is what an import moved of a service's activity before a time.
type imported struct {
	days  []importedDay[usage.ServiceTally] // ascending days
	users []importedDay[usage.UserTally]
	// acts are the gauge reports and user events, in (Time, ID) order.
	acts []usage.Activity
}

type importedDay[T any] struct {
	day time.Time
	v   T
}

// readImported reads the records of kinds (stateServiceDay…) that an
// import moved of service's activity, of published batches, before to.
func (s *Store) readImported(ctx context.Context, r driver.Conn, service usage.GUID, to time.Time, kinds ...uint8) (imported, error) {
	var im imported
	end := secondsAfter(to)
	in := make([]string, len(kinds))
	for i, k := range kinds {
		in[i] = strconv.Itoa(int(k))
	}
	db := s.cfg.Database
	res, err := r.Query(ctx, "SELECT kind, user_guid, body, toUInt32(time) FROM "+db+".imported_activity"+
		" WHERE service = ? AND kind IN ("+strings.Join(in, ", ")+") AND time < toDateTime(?)"+
		" AND batch_id IN (SELECT batch_id FROM "+db+".published WHERE scope = ? AND hour < toDateTime(?))"+
		" ORDER BY time, nanos, activity_id, user_guid",
		service.String(), end, "a:"+service.String(), end)
	if err != nil {
		return im, err
	}
	defer res.Close()
	var (
		kind       uint8
		user, body string
		sec        uint32
	)
	for res.Next() {
		if err := res.Scan(&kind, &user, &body, &sec); err != nil {
			return im, err
		}
		day := time.Unix(int64(sec), 0).UTC()
		switch kind {
		case stateServiceDay:
			t, err := decodeServiceTally(body)
			if err != nil {
				return im, fmt.Errorf("imported day of service %s: %w", service, err)
			}
			im.days = append(im.days, importedDay[usage.ServiceTally]{day, t})
		case stateUserDay:
			g, err := usage.ParseGUID(user)
			if err != nil {
				return im, fmt.Errorf("imported day of service %s: %w", service, err)
			}
			t, err := decodeUserTally(g, body)
			if err != nil {
				return im, fmt.Errorf("imported day of user %s of service %s: %w", user, service, err)
			}
			im.users = append(im.users, importedDay[usage.UserTally]{day, t})
		default:
			a, err := decodeActivity(body)
			if err != nil {
				return im, fmt.Errorf("imported activity of service %s: %w", service, err)
			}
			if a.Time.Before(to) {
				im.acts = append(im.acts, a)
			}
		}
	}
	return im, res.Err()
}

// scanMerged calls fn with every activity of service before to, of the
// journal (as scanActivity) and of acts, imported, in (Time, ID) order, an
// imported one first on a tie.
func (s *Store) scanMerged(ctx context.Context, r driver.Conn, service usage.GUID, to time.Time, acts []usage.Activity, fn func(a *usage.Activity, imported bool)) error {
	i := 0
	err := s.scanActivity(ctx, r, service, to, func(a *usage.Activity) {
		for ; i < len(acts) && (acts[i].Time.Before(a.Time) || acts[i].Time.Equal(a.Time) && acts[i].ID <= a.ID); i++ {
			fn(&acts[i], true)
		}
		fn(a, false)
	})
	if err != nil {
		return err
	}
	for ; i < len(acts); i++ {
		fn(&acts[i], true)
	}
	return nil
}

// scanActivity calls fn with every activity of service before to, of a
// published batch, in (Time, ID) order, reading from r.
func (s *Store) scanActivity(ctx context.Context, r driver.Conn, service usage.GUID, to time.Time, fn func(a *usage.Activity)) error {
	// Whole seconds bound the rows; fn's callers compare the exact times.
	end := secondsAfter(to)
	db := s.cfg.Database
	res, err := r.Query(ctx, "SELECT body FROM "+db+".activity WHERE service = ? AND time < toDateTime(?)"+
		" AND batch_id IN (SELECT batch_id FROM "+db+".published WHERE scope = ? AND hour < toDateTime(?))"+
		" ORDER BY time, nanos, activity_id",
		service.String(), end, "a:"+service.String(), end)
	if err != nil {
		return err
	}
	defer res.Close()
	var body string
	for res.Next() {
		if err := res.Scan(&body); err != nil {
			return err
		}
		a, err := decodeActivity(body)
		if err != nil {
			return fmt.Errorf("activity of service %s: %w", service, err)
		}
		fn(&a)
	}
	return res.Err()
}

// series folds the activity of service before the last of bounds into
// the totals of each span between two consecutive bounds: the counters of
// the span's events, the gauges as of its end.
func (s *Store) series(ctx context.Context, service usage.GUID, bounds []time.Time) ([]usage.ServiceTotals, error) {
	var out []usage.ServiceTotals
	to := bounds[len(bounds)-1]
	err := s.read(ctx, "service totals", func(ctx context.Context, r driver.Conn) error {
		out = make([]usage.ServiceTotals, len(bounds)-1)
		im, err := s.readImported(ctx, r, service, to, stateServiceDay, stateGauge)
		if err != nil {
			return err
		}
		for _, d := range im.days {
			// The span that holds the day's start, if any: the last bound
			// not after it.
			j, found := slices.BinarySearchFunc(bounds, d.day, time.Time.Compare)
			if !found {
				j--
			}
			if j >= 0 && j < len(out) {
				out[j].AddTally(d.v)
			}
		}
		var (
			gauges  = map[usage.ActivityKind]usage.Activity{}
			tallies []usage.UserTally
			i       int // the span being folded
		)
		// settle applies the gauges that stand at the end of span i.
		settle := func() {
			for _, g := range gauges {
				out[i].ApplyGauge(&g)
			}
			i++
		}
		// An imported gauge report folds as one of the journal; no other
		// kind is imported here.
		err = s.scanMerged(ctx, r, service, to, im.acts, func(a *usage.Activity, _ bool) {
			if !a.Time.Before(to) {
				return
			}
			for i < len(out) && !a.Time.Before(bounds[i+1]) {
				settle()
			}
			if g, ok := gauges[a.Kind]; a.Gauge() && (!ok || a.Supersedes(&g)) {
				gauges[a.Kind] = *a
			}
			if i < len(out) && !a.Time.Before(bounds[0]) {
				var st usage.ServiceTally
				tallies, st = a.Tally(tallies[:0])
				out[i].AddTally(st)
			}
		})
		for i < len(out) {
			settle()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ServiceTotals implements store.Reports.
func (s *Store) ServiceTotals(ctx context.Context, service usage.GUID, from, to time.Time) (usage.ServiceTotals, error) {
	out, err := s.series(ctx, service, []time.Time{from, to})
	if err != nil {
		return usage.ServiceTotals{}, err
	}
	return out[0], nil
}

// ServiceSeries implements store.Reports, in one read of the journal.
func (s *Store) ServiceSeries(ctx context.Context, service usage.GUID, from, to time.Time, step usage.PeriodType) ([]usage.ServiceTotals, error) {
	periods, err := usage.Periods(step, from, to)
	if err != nil {
		return nil, err
	}
	if len(periods) == 0 {
		return []usage.ServiceTotals{}, nil
	}
	bounds := make([]time.Time, 0, len(periods)+1)
	for _, p := range periods {
		bounds = append(bounds, p.Start)
	}
	return s.series(ctx, service, append(bounds, to))
}

// ServiceUsers implements store.Reports.
func (s *Store) ServiceUsers(ctx context.Context, service usage.GUID, from, to time.Time, only usage.GUID) ([]usage.UserUsage, error) {
	var (
		users map[usage.GUID]*usage.UserUsage
		named map[usage.GUID]bool
	)
	user := func(g usage.GUID) *usage.UserUsage {
		u := users[g]
		if u == nil {
			u = &usage.UserUsage{User: g, Status: usage.UserActive}
			users[g] = u
		}
		return u
	}
	err := s.read(ctx, "service users", func(ctx context.Context, r driver.Conn) error {
		users, named = map[usage.GUID]*usage.UserUsage{}, map[usage.GUID]bool{}
		im, err := s.readImported(ctx, r, service, to, stateUserDay, stateUserEvent)
		if err != nil {
			return err
		}
		for _, d := range im.users {
			user(d.v.User).AddTally(&d.v, !d.day.Before(from))
			named[d.v.User] = named[d.v.User] || d.v.Named
		}
		var tallies []usage.UserTally
		return s.scanMerged(ctx, r, service, to, im.acts, func(a *usage.Activity, imported bool) {
			if !a.Time.Before(to) {
				return
			}
			if imported { // a user event, counted in its users' days
				user(a.User).ApplyAccount(a)
				return
			}
			tallies, _ = a.Tally(tallies[:0])
			for j := range tallies {
				t := &tallies[j]
				user(t.User).AddTally(t, !a.Time.Before(from))
				named[t.User] = named[t.User] || t.Named
			}
			if a.Kind == usage.ActivityUser {
				user(a.User).ApplyAccount(a)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	var out []usage.UserUsage
	for g, ok := range named {
		if !ok || !only.IsZero() && g != only {
			continue
		}
		u := *users[g]
		if inviter := users[u.InvitedBy]; !u.InvitedBy.IsZero() && inviter != nil {
			u.InvitedByEmail = inviter.Email
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b usage.UserUsage) int { return bytes.Compare(a.User[:], b.User[:]) })
	return out, nil
}
