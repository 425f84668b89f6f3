package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var _ store.EventQuerier = (*Store)(nil)

// codeNotInQuorum is ClickHouse's REPLICA_IS_NOT_IN_QUORUM: a replica asked
// for sequential consistency lacks a part written with quorum, which
// another replica has.
const codeNotInQuorum = 289

// read runs fn on the first replica that answers, and on the next when one
// cannot be reached or lags behind the quorum. fn may run more than once:
// it starts its answer anew each time. With fewer replicas in the quorum
// than in the shard, reads ask for sequential consistency, so that a read
// sees every write acknowledged before it began, wherever it lands.
func (s *Store) read(ctx context.Context, what string, fn func(ctx context.Context, r driver.Conn) error) error {
	if s.cfg.Quorum < len(s.replicas) {
		ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"select_sequential_consistency": 1}))
	}
	var err error
	for i, r := range s.replicas {
		err = fn(ctx, r)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *usage.Error
		if errors.As(err, &ue) {
			return err
		}
		if !replicaFault(err) {
			return fmt.Errorf("clickhouse replica %s: %s: %w", s.cfg.Replicas[i], what, err)
		}
	}
	return unavailable(err, "clickhouse: no replica of %v answered %s", s.cfg.Replicas, what)
}

// replicaFault reports whether err is the failure of one replica, which
// another may not share: anything but an exception of the server, and the
// exception of a replica outside the quorum.
func replicaFault(err error) bool {
	var ex *ch.Exception
	return !errors.As(err, &ex) || ex.Code == codeNotInQuorum
}

// unixSeconds returns t in Unix seconds, within the range of a DateTime.
func unixSeconds(t time.Time) int64 {
	return min(max(t.Unix(), 0), math.MaxUint32)
}

// dateOf returns the UTC date of t as a Date literal, within the range of
// a Date on every ClickHouse release (1970 to 2105).
func dateOf(t time.Time) string {
	first, last := time.Unix(0, 0).UTC(), time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
	if t.Before(first) {
		t = first
	}
	if t.After(last) {
		t = last
	}
	return t.UTC().Format(time.DateOnly)
}

// dimColumns are the columns of event_counts that the dimensions group by;
// the organization is the query's own, not a column.
var dimColumns = map[usage.Dimension]string{
	usage.DimClientID:    "client_id",
	usage.DimUserID:      "user_id",
	usage.DimTemplateURI: "template",
	usage.DimHTTPMethod:  "method",
	usage.DimPlatform:    "platform",
}

// countsSQL is a Query as SQL over one of the counts tables: its text, its
// arguments, and the dimensions its rows carry after the bucket, in order.
type countsSQL struct {
	text string
	args []any
	dims []usage.Dimension
}

// dayRollup reports whether q can be answered from client_day_counts: it
// groups and filters by client alone (or by nothing), in buckets of a day
// or coarser over whole UTC days. Filters by client name are resolved to
// client IDs before.
func dayRollup(q usage.Query) bool {
	return wholeDay(q.Interval.Start) && wholeDay(q.Interval.End) && rollupShape(q)
}

// rollupShape reports whether q groups and filters as client_day_counts
// can answer, at a day or coarser, whatever its interval.
func rollupShape(q usage.Query) bool {
	if q.Granularity == usage.GranularityHour {
		return false
	}
	f := q.Filter
	if len(f.UserIDs) > 0 || len(f.TemplateURIs) > 0 || len(f.HTTPMethods) > 0 || len(f.Platforms) > 0 {
		return false
	}
	for _, d := range q.GroupBy {
		if d != usage.DimClientID && d != usage.DimOrganizationID {
			return false
		}
	}
	return true
}

func wholeDay(t time.Time) bool { return usage.GranularityDay.Truncate(t).Equal(t) }

// dayBucket is the SQL of the start of the bucket of granularity g that
// holds the Date day, in Unix seconds (0 for GranularityNone).
func dayBucket(g usage.Granularity, day string) string {
	switch g {
	case usage.GranularityDay:
		return "toUInt32(toDateTime(" + day + ", 'UTC'))"
	case usage.GranularityWeek:
		return "toUInt32(toDateTime(toMonday(" + day + "), 'UTC'))"
	case usage.GranularityMonth:
		return "toUInt32(toDateTime(toStartOfMonth(" + day + "), 'UTC'))"
	}
	return "toUInt32(0)"
}

// buildCountsSQL writes q as SQL: over client_day_counts when rollup (see
// dayRollup), else over event_counts, restricted to the given clients when
// clients is not nil. Rows are at most q.MaxRows+1, so that one too many
// tells that the answer is too large.
func (s *Store) buildCountsSQL(q usage.Query, clients []string, rollup bool) countsSQL {
	return s.countsSelect(q, clients, rollup, []usage.Interval{q.Interval})
}

// countsSelect is buildCountsSQL reading, from event_counts, only the
// hours within spans (q's interval, or parts of it).
func (s *Store) countsSelect(q usage.Query, clients []string, rollup bool, spans []usage.Interval) countsSQL {
	var (
		c       countsSQL
		where   []string
		group   = []string{"bucket"}
		columns = []string{""}
	)
	in := func(column string, values []string) {
		if len(values) > 0 {
			where = append(where, column+" IN ?")
			c.args = append(c.args, ch.GroupSet{Value: anys(values)})
		}
	}
	where = append(where, "org_id = ?")
	c.args = append(c.args, q.OrganizationID)
	table := "event_counts"
	if rollup {
		table = "client_day_counts"
		columns[0] = dayBucket(q.Granularity, "day") + " AS bucket"
		where = append(where, "day >= toDate(?)", "day < toDate(?)")
		c.args = append(c.args, dateOf(q.Interval.Start), dateOf(q.Interval.End))
	} else {
		if q.Granularity == usage.GranularityHour {
			columns[0] = "toUInt32(hour) AS bucket"
		} else {
			columns[0] = dayBucket(q.Granularity, "toDate(hour, 'UTC')") + " AS bucket"
		}
		var or []string
		for _, sp := range spans {
			or = append(or, "hour >= toDateTime(?) AND hour < toDateTime(?)")
			c.args = append(c.args, unixSeconds(sp.Start), unixSeconds(sp.End))
		}
		if len(or) == 1 {
			where = append(where, or[0])
		} else {
			where = append(where, "(("+strings.Join(or, ") OR (")+"))")
		}
		in("user_id", q.Filter.UserIDs)
		in("template", q.Filter.TemplateURIs)
		in("method", q.Filter.HTTPMethods)
		in("platform", q.Filter.Platforms)
	}
	if clients != nil {
		in("client_id", clients)
	}
	for _, d := range q.GroupBy {
		if col, ok := dimColumns[d]; ok {
			columns = append(columns, col)
			group = append(group, col)
			c.dims = append(c.dims, d)
		}
	}
	columns = append(columns, "sum(requests)", "sum(status_2xx)", "sum(status_3xx)", "sum(status_4xx)", "sum(status_5xx)", "sum(status_429)")
	c.text = fmt.Sprintf("SELECT %s FROM %s.%s WHERE %s GROUP BY %s LIMIT %d",
		strings.Join(columns, ", "), s.cfg.Database, table, strings.Join(where, " AND "), strings.Join(group, ", "), q.MaxRows+1)
	return c
}

// splitDays returns the whole UTC days within q's interval, [from, to),
// when q has the rollup's shape but not its interval (the 90 days ending
// now start and end mid-day) and holds at least one whole day: those are
// read from client_day_counts and only the partial days at the edges from
// event_counts.
func splitDays(q usage.Query) (from, to time.Time, ok bool) {
	if dayRollup(q) || !rollupShape(q) {
		return time.Time{}, time.Time{}, false
	}
	from = usage.GranularityDay.Truncate(q.Interval.Start)
	if from.Before(q.Interval.Start) {
		from = from.AddDate(0, 0, 1)
	}
	to = usage.GranularityDay.Truncate(q.Interval.End)
	return from, to, from.Before(to)
}

// buildSplitSQL writes q, whose interval splitDays divides at from and
// to, as the sum of the whole days from client_day_counts and the edge
// hours from event_counts.
func (s *Store) buildSplitSQL(q usage.Query, clients []string, from, to time.Time) countsSQL {
	days := q
	days.Interval = usage.Interval{Start: from, End: to}
	d := s.buildCountsSQL(days, clients, true)
	h := s.countsSelect(q, clients, false, []usage.Interval{{Start: q.Interval.Start, End: from}, {Start: to, End: q.Interval.End}})
	inner := func(text string) string { return text[:strings.LastIndex(text, " LIMIT ")] }
	sums := "sum(requests), sum(status_2xx), sum(status_3xx), sum(status_4xx), sum(status_5xx), sum(status_429)"
	cols := []string{"bucket"}
	for _, dim := range d.dims {
		cols = append(cols, dimColumns[dim])
	}
	rename := func(text string) string {
		return strings.Replace(text, sums, "sum(requests) AS requests, sum(status_2xx) AS status_2xx, sum(status_3xx) AS status_3xx, sum(status_4xx) AS status_4xx, sum(status_5xx) AS status_5xx, sum(status_429) AS status_429", 1)
	}
	return countsSQL{
		text: fmt.Sprintf("SELECT %s, %s FROM (%s UNION ALL %s) GROUP BY %s LIMIT %d",
			strings.Join(cols, ", "), sums, rename(inner(d.text)), rename(inner(h.text)), strings.Join(cols, ", "), q.MaxRows+1),
		args: append(d.args, h.args...),
		dims: d.dims,
	}
}

func anys(values []string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

// Query implements store.EventQuerier. It sums the counts tables, whose
// rows the engine sums only in the background, and takes the client names
// from the latest recorded (ClientNames).
func (s *Store) Query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	return s.queryCounts(ctx, q, true)
}

// queryCounts answers q, from client_day_counts when allowed (rollup) and q fits
// it, else from event_counts.
func (s *Store) queryCounts(ctx context.Context, q usage.Query, rollup bool) ([]usage.Row, error) {
	f := q.Filter
	byClient := slices.Contains(q.GroupBy, usage.DimClientID)
	var names map[string]string
	if byClient || len(f.ClientNames) > 0 {
		var err error
		if names, err = s.ClientNames(ctx, q.OrganizationID); err != nil {
			return nil, err
		}
	}
	clients := f.ClientIDs
	if len(f.ClientNames) > 0 {
		// The filter is by the latest name of a client: the clients whose
		// name it lists, among those it lists by ID if it does.
		clients = []string{}
		for id, name := range names {
			if slices.Contains(f.ClientNames, name) && (len(f.ClientIDs) == 0 || slices.Contains(f.ClientIDs, id)) {
				clients = append(clients, id)
			}
		}
		if len(clients) == 0 {
			return []usage.Row{}, nil
		}
		slices.Sort(clients)
	}
	c := s.buildCountsSQL(q, clients, rollup && dayRollup(q))
	if from, to, ok := splitDays(q); rollup && ok {
		c = s.buildSplitSQL(q, clients, from, to)
	}
	var rows []usage.Row
	err := s.read(ctx, "query", func(ctx context.Context, r driver.Conn) error {
		rows = rows[:0]
		res, err := r.Query(ctx, c.text, c.args...)
		if err != nil {
			return err
		}
		defer res.Close()
		var (
			bucket uint32
			dims   = make([]string, len(c.dims))
			sums   [6]uint64
			dest   = []any{&bucket}
		)
		for i := range dims {
			dest = append(dest, &dims[i])
		}
		for i := range sums {
			dest = append(dest, &sums[i])
		}
		for res.Next() {
			if err := res.Scan(dest...); err != nil {
				return err
			}
			if sums[0] == 0 {
				continue // the one row an aggregate without groups has over nothing
			}
			if len(rows) == q.MaxRows {
				return usage.TooManyRows(q.MaxRows)
			}
			row := usage.Row{Counts: usage.Counts{
				Requests: int64(sums[0]), Status200: int64(sums[1]), Status300: int64(sums[2]),
				Status400: int64(sums[3]), Status500: int64(sums[4]), Status429: int64(sums[5]),
			}}
			if q.Granularity != usage.GranularityNone {
				row.Date = time.Unix(int64(bucket), 0).UTC()
			}
			for i, d := range c.dims {
				switch d {
				case usage.DimClientID:
					row.ClientID, row.ClientName = dims[i], names[dims[i]]
				case usage.DimUserID:
					row.UserID = dims[i]
				case usage.DimTemplateURI:
					row.TemplateURI = dims[i]
				case usage.DimHTTPMethod:
					row.HTTPMethod = dims[i]
				case usage.DimPlatform:
					row.Platform = dims[i]
				}
			}
			if slices.Contains(q.GroupBy, usage.DimOrganizationID) {
				row.OrganizationID = q.OrganizationID
			}
			rows = append(rows, row)
		}
		return res.Err()
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b usage.Row) int { return usage.CompareRows(&a, &b) })
	return rows, nil
}

// ClientNames implements store.EventQuerier: the name of a client is the
// one of its accepted event with the greatest seq, the order in which the
// cluster accepted them.
func (s *Store) ClientNames(ctx context.Context, orgID string) (map[string]string, error) {
	var names map[string]string
	err := s.read(ctx, "client names", func(ctx context.Context, r driver.Conn) error {
		names = map[string]string{}
		res, err := r.Query(ctx, "SELECT client_id, argMax(client_name, seq) FROM "+s.cfg.Database+
			".client_names WHERE org_id = ? GROUP BY client_id", orgID)
		if err != nil {
			return err
		}
		defer res.Close()
		for res.Next() {
			var id, name string
			if err := res.Scan(&id, &name); err != nil {
				return err
			}
			names[id] = name
		}
		return res.Err()
	})
	if err != nil {
		return nil, err
	}
	return names, nil
}
