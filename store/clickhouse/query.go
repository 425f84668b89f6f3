package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
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

// countsSQL is one SELECT of a plan over one of the counts tables: its
// text, its arguments, and the dimensions its rows carry after the bucket,
// in order.
type countsSQL struct {
	text string
	args []any
	dims []usage.Dimension
	// ungrouped: the rows are the table's own, in the order of the groups,
	// and those of one group (the parts ClickHouse has not merged yet) are
	// summed as they come. See countsSelect.
	ungrouped bool
}

// clientShape reports whether q groups and filters by client alone (or by
// nothing), which the client rollups can answer. Filters by client name
// are resolved to client IDs before.
func clientShape(q usage.Query) bool {
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

// plan returns the SELECTs that answer q, restricted to clients when
// clients is not nil: from event_counts alone unless rollups and q has the
// client rollups' shape. Then, at a day or coarser, the whole UTC days
// within q's interval are read from client_day_counts (90 days of an
// organization are a few hundred rows per client), and the hours outside
// them (the 90 days ending now start and end mid-day) from
// client_hour_counts, which also answers every hourly query. The SELECTs
// run at once; their rows are merged, those of the same bucket and
// dimensions summed.
func (s *Store) plan(q usage.Query, clients []string, rollups bool) []countsSQL {
	if !rollups || !clientShape(q) {
		return []countsSQL{s.countsSelect(q, clients, "event_counts", []usage.Interval{q.Interval})}
	}
	from, to := q.Interval.Start, q.Interval.Start
	if q.Granularity != usage.GranularityHour && q.UTC() { // the daily rollup's days are UTC ones
		from = usage.GranularityDay.Truncate(q.Interval.Start)
		if from.Before(q.Interval.Start) {
			from = from.AddDate(0, 0, 1)
		}
		to = usage.GranularityDay.Truncate(q.Interval.End)
	}
	if !from.Before(to) {
		return []countsSQL{s.countsSelect(q, clients, "client_hour_counts", []usage.Interval{q.Interval})}
	}
	plan := []countsSQL{s.countsSelect(q, clients, "client_day_counts", []usage.Interval{{Start: from, End: to}})}
	var edges []usage.Interval
	if q.Interval.Start.Before(from) {
		edges = append(edges, usage.Interval{Start: q.Interval.Start, End: from})
	}
	if to.Before(q.Interval.End) {
		edges = append(edges, usage.Interval{Start: to, End: q.Interval.End})
	}
	if len(edges) > 0 {
		plan = append(plan, s.countsSelect(q, clients, "client_hour_counts", edges))
	}
	return plan
}

// dayBucket is the SQL of the start of the bucket of granularity g that
// holds the Date day, in Unix seconds (0 for GranularityNone), the day
// starting at midnight in time zone tz (a string literal).
func dayBucket(g usage.Granularity, day, tz string) string {
	switch g {
	case usage.GranularityDay:
		return "toUInt32(toDateTime(" + day + ", " + tz + "))"
	case usage.GranularityWeek:
		return "toUInt32(toDateTime(toMonday(" + day + "), " + tz + "))"
	case usage.GranularityMonth:
		return "toUInt32(toDateTime(toStartOfMonth(" + day + "), " + tz + "))"
	}
	return "toUInt32(0)"
}

// zoneLiteral is the SQL string literal of q's time zone.
func zoneLiteral(q *usage.Query) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(q.Zone().String()) + "'"
}

// countsSelect is the SELECT of q's groups from table, over the times
// within spans (q's interval, or parts of it), restricted to clients when
// clients is not nil. Rows are at most q.MaxRows+1, so that one too many
// tells that the answer is too large.
func (s *Store) countsSelect(q usage.Query, clients []string, table string, spans []usage.Interval) countsSQL {
	var (
		c       countsSQL
		where   []string
		group   = []string{"bucket"}
		columns = []string{""}
		or      []string
	)
	in := func(column string, values []string) {
		if len(values) > 0 {
			where = append(where, column+" IN ?")
			c.args = append(c.args, ch.GroupSet{Value: anys(values)})
		}
	}
	where = append(where, "org_id = ?")
	c.args = append(c.args, q.OrganizationID)
	if table == "client_day_counts" {
		columns[0] = dayBucket(q.Granularity, "day", "'UTC'") + " AS bucket"
		for _, sp := range spans {
			or = append(or, "day >= toDate(?) AND day < toDate(?)")
			c.args = append(c.args, dateOf(sp.Start), dateOf(sp.End))
		}
	} else {
		if q.Granularity == usage.GranularityHour {
			columns[0] = "toUInt32(hour) AS bucket"
		} else {
			tz := zoneLiteral(&q)
			columns[0] = dayBucket(q.Granularity, "toDate(hour, "+tz+")", tz) + " AS bucket"
		}
		for _, sp := range spans {
			or = append(or, "hour >= toDateTime(?) AND hour < toDateTime(?)")
			c.args = append(c.args, unixSeconds(sp.Start), unixSeconds(sp.End))
		}
	}
	if len(or) == 1 {
		where = append(where, or[0])
	} else {
		where = append(where, "(("+strings.Join(or, ") OR (")+"))")
	}
	if table == "event_counts" {
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
			c.dims = append(c.dims, d)
		}
	}
	// The rows come in the order of usage.CompareRows (ClickHouse compares
	// strings byte by byte, as Go does), so that the parts of a plan merge
	// in one pass and nothing is sorted here.
	for _, d := range usage.Dimensions {
		if col, ok := dimColumns[d]; ok && slices.Contains(q.GroupBy, d) {
			group = append(group, col)
		}
	}
	// A client rollup read at its own resolution by client has a row per
	// group already, but for the parts not merged yet: those few are summed
	// here rather than by a GROUP BY, which took ClickHouse twice as long as
	// reading the rows (18 ms against 10 for the organization query's
	// 17,800). Their number is not the groups', so there is no LIMIT: the
	// groups are counted as they come.
	c.ungrouped = slices.Contains(q.GroupBy, usage.DimClientID) &&
		(table == "client_day_counts" && q.Granularity == usage.GranularityDay ||
			table == "client_hour_counts" && q.Granularity == usage.GranularityHour)
	if c.ungrouped {
		columns = append(columns, "requests", "status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_429")
		c.text = fmt.Sprintf("SELECT %s FROM %s.%s WHERE %s ORDER BY %s",
			strings.Join(columns, ", "), s.cfg.Database, table, strings.Join(where, " AND "), strings.Join(group, ", "))
		return c
	}
	columns = append(columns, "sum(requests)", "sum(status_2xx)", "sum(status_3xx)", "sum(status_4xx)", "sum(status_5xx)", "sum(status_429)")
	c.text = fmt.Sprintf("SELECT %s FROM %s.%s WHERE %s GROUP BY %s ORDER BY %s LIMIT %d",
		strings.Join(columns, ", "), s.cfg.Database, table, strings.Join(where, " AND "), strings.Join(group, ", "), strings.Join(group, ", "), q.MaxRows+1)
	return c
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
// from the latest recorded (ClientNames). It keeps no latency and traffic
// measures yet, and refuses a query asking for one (refuseMeasures).
func (s *Store) Query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	return s.queryCounts(ctx, q, true)
}

// refuseMeasures returns the error of a query asking for a measure, which
// the counts tables do not hold, or nil.
func refuseMeasures(q *usage.Query) error {
	if !q.WantsMeasures() {
		return nil
	}
	return usage.Errorf(usage.KindInvalid, "metrics",
		"the cluster store does not keep latency and traffic measures yet: ask for counts only (%s), or use the embedded store", metricNames(usage.Metrics))
}

func metricNames(ms []usage.Metric) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.String()
	}
	return strings.Join(names, ", ")
}

// queryCounts answers q by its plan (see plan), from the client rollups
// when allowed (rollups) and q fits them. The SELECTs and the client names
// are read at once, unless the names are a filter.
func (s *Store) queryCounts(ctx context.Context, q usage.Query, rollups bool) ([]usage.Row, error) {
	if err := refuseMeasures(&q); err != nil {
		return nil, err
	}
	f := q.Filter
	byClient := slices.Contains(q.GroupBy, usage.DimClientID)
	var (
		names    map[string]string
		namesErr error
		wg       sync.WaitGroup
	)
	clients := f.ClientIDs
	switch {
	case len(f.ClientNames) == 0 && byClient:
		wg.Go(func() { names, namesErr = s.ClientNames(ctx, q.OrganizationID) })
	case len(f.ClientNames) > 0:
		// The filter is by the latest name of a client: the clients whose
		// name it lists, among those it lists by ID if it does.
		var err error
		if names, err = s.ClientNames(ctx, q.OrganizationID); err != nil {
			return nil, err
		}
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
	plan := s.plan(q, clients, rollups)
	parts := make([]rowBuffer, len(plan))
	errs := make([]error, len(plan))
	for i := range plan {
		wg.Go(func() { parts[i], errs[i] = s.selectCounts(ctx, q, plan[i]) })
	}
	wg.Wait()
	if err := errors.Join(append(errs, namesErr)...); err != nil {
		return nil, err
	}
	rows := parts[0]
	for i := 1; i < len(parts); i++ {
		merged := mergeRows(&rows, &parts[i])
		rows = rowBuffer{n: len(merged)}
		if len(merged) > 0 {
			rows.chunks = [][]usage.Row{merged}
		}
	}
	if rows.n > q.MaxRows {
		return nil, usage.TooManyRows(q.MaxRows)
	}
	out := rows.all()
	byOrg := slices.Contains(q.GroupBy, usage.DimOrganizationID)
	for i := range out {
		r := &out[i]
		if byClient {
			r.ClientName = names[r.ClientID]
		}
		if byOrg {
			r.OrganizationID = q.OrganizationID
		}
	}
	return out, nil
}

// mergeRows merges the rows of a and b, each in the order of
// usage.CompareRows, into one slice in that order, the rows of the same
// bucket and dimensions summed into one.
func mergeRows(a, b *rowBuffer) []usage.Row {
	out := make([]usage.Row, 0, a.n+b.n)
	ra, rb := a.cursor(), b.cursor()
	for ra.row() != nil && rb.row() != nil {
		switch c := usage.CompareRows(ra.row(), rb.row()); {
		case c < 0:
			out = append(out, *ra.row())
			ra.next()
		case c > 0:
			out = append(out, *rb.row())
			rb.next()
		default:
			r := *ra.row()
			r.Add(rb.row().Counts)
			out = append(out, r)
			ra.next()
			rb.next()
		}
	}
	for _, rest := range []*rowCursor{&ra, &rb} {
		for ; rest.row() != nil; rest.next() {
			out = append(out, *rest.row())
		}
	}
	return out
}

// selectCounts runs one SELECT of q's plan: its rows, with the bucket and
// the dimensions of c, at most q.MaxRows+1 of them.
func (s *Store) selectCounts(ctx context.Context, q usage.Query, c countsSQL) (rowBuffer, error) {
	var rows rowBuffer
	err := s.read(ctx, "query", func(ctx context.Context, r driver.Conn) error {
		rows = rowBuffer{}
		// Cancelled before Close, which would otherwise read an ungrouped
		// answer to its end after the groups passed q.MaxRows.
		ctx, cancel := context.WithCancel(ctx)
		res, err := r.Query(ctx, c.text, c.args...)
		if err != nil {
			cancel()
			return err
		}
		defer res.Close()
		defer cancel()
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
			row := usage.Row{Counts: usage.Counts{
				Requests: int64(sums[0]), Status200: int64(sums[1]), Status300: int64(sums[2]),
				Status400: int64(sums[3]), Status500: int64(sums[4]), Status429: int64(sums[5]),
			}}
			if q.Granularity != usage.GranularityNone {
				row.Date = time.Unix(int64(bucket), 0).UTC()
				if !q.UTC() && q.Granularity != usage.GranularityHour {
					// Where the clocks skip a midnight (America/Santiago) the
					// day starts at 01:00 (usage.Granularity.TruncateIn), and
					// toDateTime may answer with another instant of that hour:
					// the bucket is the one two hours on is in.
					row.Date = q.Bucket(row.Date.Add(2 * time.Hour))
				}
			}
			for i, d := range c.dims {
				switch d {
				case usage.DimClientID:
					row.ClientID = dims[i]
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
			if last := rows.last(); c.ungrouped && last != nil && usage.CompareRows(last, &row) == 0 {
				last.Counts.Add(row.Counts)
				continue
			}
			if rows.n == q.MaxRows {
				return usage.TooManyRows(q.MaxRows)
			}
			rows.add(row)
		}
		return res.Err()
	})
	if err != nil {
		return rowBuffer{}, err
	}
	return rows, nil
}

// rowBuffer gathers rows whose number is not known in advance in chunks,
// then copies them into one slice of the right size: appending tens of
// thousands of rows to one slice spent more time growing and clearing it
// than ClickHouse spent on the query.
type rowBuffer struct {
	chunks [][]usage.Row
	n      int
}

func (b *rowBuffer) add(r usage.Row) {
	if len(b.chunks) == 0 || len(b.chunks[len(b.chunks)-1]) == cap(b.chunks[len(b.chunks)-1]) {
		b.chunks = append(b.chunks, make([]usage.Row, 0, min(64<<len(b.chunks), 8192)))
	}
	last := &b.chunks[len(b.chunks)-1]
	*last = append(*last, r)
	b.n++
}

// last returns the last row added, nil if none.
func (b *rowBuffer) last() *usage.Row {
	if b.n == 0 {
		return nil
	}
	c := b.chunks[len(b.chunks)-1]
	return &c[len(c)-1]
}

// rowCursor walks the rows of a rowBuffer in order.
type rowCursor struct {
	b    *rowBuffer
	c, i int // the chunk and the row in it
}

func (b *rowBuffer) cursor() rowCursor { return rowCursor{b: b} }

// row returns the current row, nil past the last.
func (k *rowCursor) row() *usage.Row {
	if k.c == len(k.b.chunks) {
		return nil
	}
	return &k.b.chunks[k.c][k.i]
}

func (k *rowCursor) next() {
	if k.i++; k.i == len(k.b.chunks[k.c]) {
		k.c, k.i = k.c+1, 0
	}
}

// all returns the rows in one slice.
func (b *rowBuffer) all() []usage.Row {
	if len(b.chunks) == 1 {
		return b.chunks[0]
	}
	out := make([]usage.Row, 0, b.n)
	for _, c := range b.chunks {
		out = append(out, c...)
	}
	return out
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
