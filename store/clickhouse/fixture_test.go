package clickhouse

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/usaged/usaged/usage"
)

// The read tests write the tables as a committed batch leaves them, without
// the write protocol: the functions below insert the rows directly.

// EventBatch is a batch of accepted events as the tests write it: its id,
// its place in the cluster's order (the seq of its client names is Seq
// shifted left by 20 bits plus the event's index) and whether it committed
// and published.
type EventBatch struct {
	ID        string
	Seq       uint64
	Events    []usage.Event
	Published bool
}

// WriteEvents writes the journal rows of batches and, for those that
// published, what a batch writes once committed: its count blocks, its
// client names and its published rows. It writes each table once, for
// speed: a replicated insert costs a round of the keeper.
func (s *Store) WriteEvents(ctx context.Context, batches ...EventBatch) error {
	type group struct {
		org                                      string
		hour                                     time.Time
		client, user, template, method, platform string
		batch                                    string
	}
	type clientAt struct { // a group of the client rollups
		org    string
		at     time.Time
		client string
		batch  string
	}
	var (
		journal, names [][]any
		groups         = map[group]*usage.Counts{}
		hourly, days   = map[clientAt]*usage.Counts{}, map[clientAt]*usage.Counts{}
		hours          = map[[3]any]bool{}
	)
	add := func(c *usage.Counts, status int) *usage.Counts {
		if c == nil {
			c = &usage.Counts{}
		}
		c.Add(usage.CountsFor(status))
		return c
	}
	for _, b := range batches {
		last := map[[2]string]int{}
		for i, ev := range b.Events {
			t := ev.Time.UTC()
			h := t.Truncate(time.Hour)
			journal = append(journal, []any{b.ID, ev.OrganizationID, h, ev.ClientID, ev.ID,
				t.Truncate(time.Second), uint32(t.Nanosecond()), ev.ClientName, ev.UserID, ev.TemplateURI, ev.HTTPMethod,
				uint16(ev.Status), ev.Platform, ev.DurationMs, ev.RequestBytes, ev.ResponseBytes})
			if !b.Published {
				continue
			}
			g := group{ev.OrganizationID, h, ev.ClientID, ev.UserID, ev.TemplateURI, ev.HTTPMethod, ev.Platform, b.ID}
			groups[g] = add(groups[g], ev.Status)
			ch := clientAt{ev.OrganizationID, h, ev.ClientID, b.ID}
			hourly[ch] = add(hourly[ch], ev.Status)
			d := clientAt{ev.OrganizationID, usage.GranularityDay.Truncate(h), ev.ClientID, b.ID}
			days[d] = add(days[d], ev.Status)
			last[[2]string{ev.OrganizationID, ev.ClientID}] = i
			hours[[3]any{ev.OrganizationID, h, b.ID}] = true
		}
		for k, i := range last {
			names = append(names, []any{k[0], k[1], b.Events[i].ClientName, b.Seq<<20 | uint64(i), b.ID})
		}
	}
	counts := func(c *usage.Counts) []any {
		return []any{uint64(c.Requests), uint64(c.Status200), uint64(c.Status300), uint64(c.Status400), uint64(c.Status500), uint64(c.Status429)}
	}
	var countRows, hourRows, dayRows, published [][]any
	for g, c := range groups {
		countRows = append(countRows, append([]any{g.org, g.hour, g.client, g.user, g.template, g.method, g.platform, g.batch}, counts(c)...))
	}
	for h, c := range hourly {
		hourRows = append(hourRows, append([]any{h.org, h.at, h.client, h.batch}, counts(c)...))
	}
	for d, c := range days {
		dayRows = append(dayRows, append([]any{d.org, d.at, d.client, d.batch}, counts(c)...))
	}
	for k := range hours {
		published = append(published, []any{"e:" + k[0].(string), k[1], k[2]})
	}
	for _, w := range []struct {
		into string
		rows [][]any
	}{
		{"events (batch_id, org_id, hour, client_id, event_id, time, nanos, client_name, user_id," +
			" template, method, status, platform, duration_ms, request_bytes, response_bytes)", journal},
		{"event_counts (org_id, hour, client_id, user_id, template, method, platform, batch_id," +
			" requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429)", countRows},
		{"client_hour_counts (org_id, hour, client_id, batch_id," +
			" requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429)", hourRows},
		{"client_day_counts (org_id, day, client_id, batch_id," +
			" requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429)", dayRows},
		{"client_names (org_id, client_id, client_name, seq, batch_id)", names},
		{"published (scope, hour, batch_id)", published},
	} {
		if err := s.insertRows(ctx, w.into, w.rows); err != nil {
			return err
		}
	}
	return nil
}

// ActivityBatch is a batch of accepted activity of a service as the tests
// write it.
type ActivityBatch struct {
	ID        string
	Service   usage.GUID
	Events    []usage.Activity
	Published bool
}

// WriteActivity writes the journal rows of batches and, for those that
// published, their published rows.
func (s *Store) WriteActivity(ctx context.Context, batches ...ActivityBatch) error {
	var journal, published [][]any
	hours := map[[2]any]bool{}
	for _, b := range batches {
		for _, a := range b.Events {
			t := a.Time.UTC()
			journal = append(journal, []any{b.ID, b.Service.String(), t.Truncate(time.Second), uint32(t.Nanosecond()), a.ID, encodeActivity(a)})
			if b.Published && !hours[[2]any{b.ID, t.Truncate(time.Hour)}] {
				hours[[2]any{b.ID, t.Truncate(time.Hour)}] = true
				published = append(published, []any{"a:" + b.Service.String(), t.Truncate(time.Hour), b.ID})
			}
		}
	}
	if err := s.insertRows(ctx, "activity (batch_id, service, time, nanos, activity_id, body)", journal); err != nil {
		return err
	}
	return s.insertRows(ctx, "published (scope, hour, batch_id)", published)
}

// insertRows inserts rows into the table and columns of into, in one
// block, sorted, on the first replica (see SyncReplicas).
func (s *Store) insertRows(ctx context.Context, into string, rows [][]any) error {
	slices.SortFunc(rows, func(a, b []any) int {
		for i := range a {
			if c := cmp.Compare(sortKey(a[i]), sortKey(b[i])); c != 0 {
				return c
			}
		}
		return 0
	})
	b, err := s.replicas[0].PrepareBatch(ctx, "INSERT INTO "+s.cfg.Database+"."+into)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := b.Append(r...); err != nil {
			return err
		}
	}
	return b.Send()
}

func sortKey(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return ""
}

// SyncReplicas waits until every replica has the rows written to the
// first, faster than a quorum on every insert.
func (s *Store) SyncReplicas(ctx context.Context) error {
	for _, r := range s.replicas[1:] {
		for _, table := range []string{"events", "event_counts", "client_hour_counts", "client_day_counts", "client_names", "activity", "imported_activity", "published"} {
			if err := r.Exec(ctx, "SYSTEM SYNC REPLICA "+s.cfg.Database+"."+table); err != nil {
				return err
			}
		}
	}
	return nil
}

// Exec runs a statement on the first replica, {db} standing for the
// store's database.
func (s *Store) Exec(ctx context.Context, stmt string) error {
	return s.replicas[0].Exec(ctx, s.expand(stmt))
}

// QueryWithoutRollup answers q from event_counts alone, as Query does
// when q does not fit the client rollups.
func (s *Store) QueryWithoutRollup(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	return s.queryCounts(ctx, q, false)
}

// BehindUnreachable returns a store that reads through s's replicas, after
// a first one that nobody answers at addr, with sequential consistency
// (a quorum smaller than its replicas). Close it with the returned func,
// which leaves s open.
func (s *Store) BehindUnreachable(addr string) (*Store, func() error, error) {
	dead, err := ch.Open(&ch.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		return nil, nil, err
	}
	cfg := s.cfg
	cfg.Replicas = append([]string{addr}, cfg.Replicas...)
	return &Store{cfg: cfg, replicas: append([]driver.Conn{dead}, s.replicas...)}, dead.Close, nil
}

// PlanTables returns the tables that Query reads for q, in its plan's order.
func PlanTables(q usage.Query) []string {
	var tables []string
	for _, c := range (&Store{cfg: Config{Database: "db"}}).plan(q, nil, true) {
		from := c.text[strings.Index(c.text, " FROM db.")+len(" FROM db."):]
		tables = append(tables, from[:strings.Index(from, " ")])
	}
	return tables
}

// PlanSQL returns the SELECTs that Query (QueryWithoutRollup unless
// rollups) sends for q to a store of database db, the client name filter
// resolved to clients, with their arguments.
func PlanSQL(db string, q usage.Query, clients []string, rollups bool) (texts []string, args [][]any) {
	for _, c := range (&Store{cfg: Config{Database: db}}).plan(q, clients, rollups) {
		texts, args = append(texts, c.text), append(args, c.args)
	}
	return texts, args
}
