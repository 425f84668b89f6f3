package clickhouse

// Steps 2, 4 and 5 of the protocol, and the recovery of committed batches
// whose owner died: the journal rows, the count blocks built from them, the
// published rows, the settling of the claims.
//
// Every block is deterministic from the batch's journal rows and id: rows
// sorted by a fixed key, one INSERT per partition (month). The owner builds
// them from the events it journaled, a recovery from the rows it reads back,
// and ClickHouse drops whichever of the two identical blocks comes second.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-zookeeper/zk"

	"github.com/usaged/usaged/usage"
)

// eventRow is a row of the events journal; times are Unix seconds.
type eventRow struct {
	org                      string
	hour                     int64
	client, id               string
	time                     int64
	nanos                    uint32
	clientName, user         string
	template, method         string
	status                   uint16
	platform                 string
	duration, reqBytes, resp int64
	pos                      uint32 // the event's place in its batch: the order of acceptance
}

const eventColumns = "batch_id, org_id, hour, client_id, event_id, time, nanos, client_name, user_id, template, method, status, platform, duration_ms, request_bytes, response_bytes, pos"

// activityRow is a row of the activity journal.
type activityRow struct {
	service  string
	time     int64
	nanos    uint32
	id, body string
}

const activityColumns = "batch_id, service, time, nanos, activity_id, body"

// journal is the journal rows of one batch, of events or of activity,
// sorted by the journal's order.
type journal struct {
	batch  string
	events []eventRow
	acts   []activityRow
}

func eventRows(batch string, accepted []*item) *journal {
	rows := make([]eventRow, len(accepted))
	for j, it := range accepted {
		ev := &it.call.events[it.i]
		t := ev.Time.UTC()
		rows[j] = eventRow{
			org: ev.OrganizationID, hour: it.hour, client: ev.ClientID, id: ev.ID,
			time: t.Unix(), nanos: uint32(t.Nanosecond()), clientName: ev.ClientName, user: ev.UserID,
			template: ev.TemplateURI, method: ev.HTTPMethod, status: uint16(ev.Status), platform: ev.Platform,
			duration: ev.DurationMs, reqBytes: ev.RequestBytes, resp: ev.ResponseBytes, pos: uint32(j),
		}
	}
	slices.SortFunc(rows, func(a, b eventRow) int {
		return cmp.Or(strings.Compare(a.org, b.org), cmp.Compare(a.hour, b.hour),
			strings.Compare(a.client, b.client), strings.Compare(a.id, b.id))
	})
	return &journal{batch: batch, events: rows}
}

func activityRows(batch string, accepted []*item) *journal {
	rows := make([]activityRow, len(accepted))
	for j, it := range accepted {
		a := it.call.acts[it.i]
		t := a.Time.UTC()
		rows[j] = activityRow{service: it.call.service.String(), time: t.Unix(), nanos: uint32(t.Nanosecond()), id: a.ID, body: encodeActivity(a)}
	}
	slices.SortFunc(rows, func(a, b activityRow) int {
		return cmp.Or(strings.Compare(a.service, b.service), cmp.Compare(a.time, b.time),
			cmp.Compare(a.nanos, b.nanos), strings.Compare(a.id, b.id))
	})
	return &journal{batch: batch, acts: rows}
}

// hours returns the first and last hour of the journal's rows (Unix s).
func (j *journal) hours() (first, last int64) {
	first, last = int64(1)<<62, 0
	for _, r := range j.events {
		first, last = min(first, r.hour), max(last, r.hour)
	}
	for _, r := range j.acts {
		h := r.time - r.time%3600
		first, last = min(first, h), max(last, h)
	}
	return first, last
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

// month returns the partition of a time (Unix s): its year and month.
func month(sec int64) int {
	t := unixTime(sec)
	return t.Year()*100 + int(t.Month())
}

// writeJournal is step 2.
func (s *Store) writeJournal(ctx context.Context, j *journal) error {
	if j.events != nil {
		return s.insertByMonth(ctx, "events", eventColumns, len(j.events),
			func(i int) int64 { return j.events[i].hour },
			func(i int) []any {
				r := &j.events[i]
				return []any{j.batch, r.org, unixTime(r.hour), r.client, r.id, unixTime(r.time), r.nanos, r.clientName,
					r.user, r.template, r.method, r.status, r.platform, r.duration, r.reqBytes, r.resp, r.pos}
			})
	}
	return s.insertByMonth(ctx, "activity", activityColumns, len(j.acts),
		func(i int) int64 { return j.acts[i].time },
		func(i int) []any {
			r := &j.acts[i]
			return []any{j.batch, r.service, unixTime(r.time), r.nanos, r.id, r.body}
		})
}

// countKey is a group of event_counts.
type countKey struct {
	org                                      string
	hour                                     int64
	client, user, template, method, platform string
}

// clientGroup is a group of the client rollups: an organization, the UTC
// hour or day (Unix s) and a client.
type clientGroup struct {
	org    string
	at     int64
	client string
}

func countValues(c *usage.Counts) []any {
	return []any{uint64(c.Requests), uint64(c.Status200), uint64(c.Status300), uint64(c.Status400), uint64(c.Status500), uint64(c.Status429)}
}

const countColumns = "requests, status_2xx, status_3xx, status_4xx, status_5xx, status_429"

// sortedKeys returns the keys of m in the order of compare.
func sortedKeys[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}

// writeCounts is step 4's first half for events: the count blocks and the
// latest client names, built from the journal rows; seq orders the names
// of committed batches by their records' zxid.
func (s *Store) writeCounts(ctx context.Context, j *journal, czxid int64) error {
	counts := map[countKey]*usage.Counts{}
	hours := map[clientGroup]*usage.Counts{}
	names := map[[2]string]int{} // (organization, client) → the row of the latest event
	for i := range j.events {
		r := &j.events[i]
		c := usage.CountsFor(int(r.status))
		k := countKey{r.org, r.hour, r.client, r.user, r.template, r.method, r.platform}
		if counts[k] == nil {
			counts[k] = &usage.Counts{}
		}
		counts[k].Add(c)
		h := clientGroup{r.org, r.hour, r.client}
		if hours[h] == nil {
			hours[h] = &usage.Counts{}
		}
		hours[h].Add(c)
		nk := [2]string{r.org, r.client}
		if l, ok := names[nk]; !ok || r.pos > j.events[l].pos {
			names[nk] = i
		}
	}
	ck := sortedKeys(counts, func(a, b countKey) int {
		return cmp.Or(strings.Compare(a.org, b.org), cmp.Compare(a.hour, b.hour), strings.Compare(a.client, b.client),
			strings.Compare(a.user, b.user), strings.Compare(a.template, b.template),
			strings.Compare(a.method, b.method), strings.Compare(a.platform, b.platform))
	})
	err := s.insertByMonth(ctx, "event_counts", "org_id, hour, client_id, user_id, template, method, platform, batch_id, "+countColumns,
		len(ck), func(i int) int64 { return ck[i].hour },
		func(i int) []any {
			k := ck[i]
			return append([]any{k.org, unixTime(k.hour), k.client, k.user, k.template, k.method, k.platform, j.batch}, countValues(counts[k])...)
		})
	if err != nil {
		return err
	}
	if err := s.writeClientRollups(ctx, j.batch, hours); err != nil {
		return err
	}
	nk := sortedKeys(names, func(a, b [2]string) int { return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1])) })
	rows := make([][]any, len(nk))
	for i, k := range nk {
		l := names[k]
		rows[i] = []any{k[0], k[1], j.events[l].clientName, uint64(czxid)<<20 | uint64(j.events[l].pos), j.batch}
	}
	return s.insert(ctx, "client_names", "org_id, client_id, client_name, seq, batch_id", rows)
}

// writeClientRollups writes a batch's blocks of client_hour_counts and
// client_day_counts from its counts per organization, hour and client.
func (s *Store) writeClientRollups(ctx context.Context, batch string, hours map[clientGroup]*usage.Counts) error {
	days := map[clientGroup]*usage.Counts{}
	for k, c := range hours {
		d := clientGroup{k.org, k.at - k.at%86400, k.client}
		if days[d] == nil {
			days[d] = &usage.Counts{}
		}
		days[d].Add(*c)
	}
	for _, rollup := range []struct {
		table, column string
		groups        map[clientGroup]*usage.Counts
	}{{"client_hour_counts", "hour", hours}, {"client_day_counts", "day", days}} {
		keys := sortedKeys(rollup.groups, func(a, b clientGroup) int {
			return cmp.Or(strings.Compare(a.org, b.org), cmp.Compare(a.at, b.at), strings.Compare(a.client, b.client))
		})
		err := s.insertByMonth(ctx, rollup.table, "org_id, "+rollup.column+", client_id, batch_id, "+countColumns,
			len(keys), func(i int) int64 { return keys[i].at },
			func(i int) []any {
				k := keys[i]
				return append([]any{k.org, unixTime(k.at), k.client, batch}, countValues(rollup.groups[k])...)
			})
		if err != nil {
			return err
		}
	}
	return nil
}

// writePublished is step 4's second half: a row per scope and hour.
func (s *Store) writePublished(ctx context.Context, j *journal) error {
	type scopeHour struct {
		scope string
		hour  int64
	}
	seen := map[scopeHour]bool{}
	for _, r := range j.events {
		seen[scopeHour{"e:" + r.org, r.hour}] = true
	}
	for _, r := range j.acts {
		seen[scopeHour{"a:" + r.service, r.time - r.time%3600}] = true
	}
	keys := sortedKeys(seen, func(a, b scopeHour) int {
		return cmp.Or(strings.Compare(a.scope, b.scope), cmp.Compare(a.hour, b.hour))
	})
	return s.insertByMonth(ctx, "published", "scope, hour, batch_id", len(keys),
		func(i int) int64 { return keys[i].hour },
		func(i int) []any { return []any{keys[i].scope, unixTime(keys[i].hour), j.batch} })
}

// publish runs step 4 for the committed batch of j, whose record is r: by
// its owner or by a recovery.
func (s *Store) publish(ctx context.Context, r record, j *journal) error {
	if j.events != nil {
		if err := s.writeCounts(ctx, j, r.czxid); err != nil {
			return err
		}
	}
	if s.failpoint(afterCounts) {
		return errStopped
	}
	if err := s.writePublished(ctx, j); err != nil {
		return err
	}
	if s.failpoint(afterPublished) {
		return errStopped
	}
	return nil
}

// publishWindow bounds how long after its commit began a batch may still
// insert its count blocks, and how long a recovery may: 6 leases, at most
// a minute. ClickHouse recognises a block inserted again only among the
// last 100,000 of its table (replicated_deduplication_window), and quorum
// inserts into a table are serialized, each taking milliseconds: 100,000
// take far longer than a minute. A node paused while it publishes (a
// zombie: a long collection, SIGSTOP, a frozen VM) may have had its batch
// recovered meanwhile; when it wakes past the window its next insert fails
// at once and one under way is cancelled, unless ClickHouse had it whole
// before the pause, so it cannot insert blocks that ClickHouse has
// forgotten. Its calls fail and are retried, and find the recovered events
// Duplicate.
func (s *Store) publishWindow() time.Duration { return min(6*s.cfg.Lease, time.Minute) }

// publishWithin is publish, stopped at deadline.
func (s *Store) publishWithin(ctx context.Context, deadline time.Time, r record, j *journal) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := s.publish(ctx, r, j)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		s.stats.pastWindow.Add(1)
		s.cfg.logger().Warn("a batch outlived its window to publish (was the node paused?); a recovery finishes it",
			"batch", j.batch, "window", s.publishWindow())
	}
	return err
}

// settle runs step 5 for the published batch whose record is r: its mark
// makes its claims committed, and its record is deleted. Until it has, the
// record says committed, so a key still pending for the batch is settled
// through it as a Duplicate; if it fails, the sweeper's recovery settles
// the batch.
func (s *Store) settle(ctx context.Context, batch string, r record) error {
	if err := s.mark(ctx, batch, r.expiry); err != nil {
		return err
	}
	if err := s.keeper.Delete(s.recordPath(batch), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return unavailable(err, "keeper %v: delete the record of batch %s", s.cfg.Keeper, batch)
	}
	if s.failpoint(afterSettle) {
		return errStopped
	}
	return nil
}

// insertByMonth inserts n rows, row(i) for i in order, one INSERT per
// month of their times (Unix s): the partitions of the tables.
func (s *Store) insertByMonth(ctx context.Context, table, columns string, n int, at func(int) int64, row func(int) []any) error {
	for lo := 0; lo < n; {
		m := month(at(lo))
		var rows [][]any
		hi := lo
		for ; hi < n && month(at(hi)) == m; hi++ {
			rows = append(rows, row(hi))
		}
		if err := s.insert(ctx, table, columns, rows); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// The codes of ClickHouse errors after which an insert is retried: quorum
// inserts into a table are serialized (a second one fails at once), and
// one whose quorum is unknown is safe to repeat, being deduplicated.
const (
	codeQuorumForPreviousWrite = 286 // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE: "Another quorum insert has been already started"
	codeUnknownStatusOfInsert  = 319 // UNKNOWN_STATUS_OF_INSERT
)

// insert writes rows into table as one block, with insert_quorum, on the
// first replica that takes it. Rows must be in one partition, or they make
// one block per partition.
func (s *Store) insert(ctx context.Context, table, columns string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if s.cfg.Quorum > 1 {
		ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"insert_quorum": s.cfg.Quorum, "insert_quorum_timeout": 30000}))
	}
	query := "INSERT INTO " + s.cfg.Database + "." + table + " (" + columns + ")"
	replica, down := 0, 0
	for backoff := time.Millisecond; ; {
		err := insertOn(ctx, s.replicas[replica], query, rows)
		if err == nil {
			return nil
		}
		var ex *ch.Exception
		switch {
		case ctx.Err() != nil:
			return unavailable(err, "clickhouse: insert into %s", table)
		case errors.As(err, &ex) && (ex.Code == codeQuorumForPreviousWrite || ex.Code == codeUnknownStatusOfInsert):
			time.Sleep(backoff + rand.N(backoff))
			backoff = min(2*backoff, 100*time.Millisecond)
		case errors.As(err, &ex) || down == 2*len(s.replicas):
			return unavailable(err, "clickhouse replica %s: insert into %s", s.cfg.Replicas[replica], table)
		default: // the replica did not answer: the next one
			replica, down = (replica+1)%len(s.replicas), down+1
		}
	}
}

func insertOn(ctx context.Context, conn driver.Conn, query string, rows [][]any) error {
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := b.Append(r...); err != nil {
			_ = b.Abort()
			return err
		}
	}
	return b.Send()
}

// readJournal reads back the journal rows of a committed batch.
func (s *Store) readJournal(ctx context.Context, batch string, r record) (*journal, error) {
	what := "the journal of batch " + batch
	if r.kind == 'e' {
		j := &journal{batch: batch}
		err := s.read(ctx, what, func(ctx context.Context, conn driver.Conn) error {
			rows, err := conn.Query(ctx, "SELECT org_id, toUInt32(hour), client_id, event_id, toUInt32(time), nanos, client_name, user_id, template, method, status, platform, duration_ms, request_bytes, response_bytes, pos FROM "+
				s.cfg.Database+".events WHERE batch_id = ? AND hour BETWEEN toDateTime(?) AND toDateTime(?) ORDER BY org_id, hour, client_id, event_id",
				batch, r.minHour, r.maxHour)
			if err != nil {
				return err
			}
			defer rows.Close()
			j.events = []eventRow{}
			for rows.Next() {
				var e eventRow
				var hour, t uint32
				if err := rows.Scan(&e.org, &hour, &e.client, &e.id, &t, &e.nanos, &e.clientName, &e.user, &e.template, &e.method,
					&e.status, &e.platform, &e.duration, &e.reqBytes, &e.resp, &e.pos); err != nil {
					return err
				}
				e.hour, e.time = int64(hour), int64(t)
				j.events = append(j.events, e)
			}
			return rows.Err()
		})
		return j, err
	}
	j := &journal{batch: batch}
	err := s.read(ctx, what, func(ctx context.Context, conn driver.Conn) error {
		rows, err := conn.Query(ctx, "SELECT service, toUInt32(time), nanos, activity_id, body FROM "+s.cfg.Database+
			".activity WHERE batch_id = ? AND time >= toDateTime(?) AND time < toDateTime(?) ORDER BY service, time, nanos, activity_id",
			batch, r.minHour, r.maxHour+3600)
		if err != nil {
			return err
		}
		defer rows.Close()
		j.acts = []activityRow{}
		for rows.Next() {
			var a activityRow
			var t uint32
			if err := rows.Scan(&a.service, &t, &a.nanos, &a.id, &a.body); err != nil {
				return err
			}
			a.time = int64(t)
			j.acts = append(j.acts, a)
		}
		return rows.Err()
	})
	return j, err
}

// recover finishes the committed batch whose owner did not (it died, or is
// too slow): steps 4 and 5 from the journal rows. Recoveries of one batch
// are serialized by a lock; one that finds the lock taken leaves the batch
// to its holder.
func (s *Store) recover(ctx context.Context, batch string) error {
	publishBy := time.Now().Add(s.publishWindow())
	lock := s.recordPath(batch) + ".lock"
	if _, err := s.keeper.Create(lock, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return unavailable(err, "keeper %v: lock batch %s", s.cfg.Keeper, batch)
	}
	defer s.keeper.Delete(lock, -1)
	r, ok, err := s.readRecord(batch)
	if err != nil || !ok || !r.committed {
		return err
	}
	j, err := s.readJournal(ctx, batch, r)
	if err != nil {
		return err
	}
	if len(j.events)+len(j.acts) == 0 {
		// A committed batch journaled at least one row, with quorum:
		// none read is a replica behind, not an empty batch. Publishing
		// nothing would settle the keys without their counts.
		return unavailable(fmt.Errorf("no journal rows read for committed batch %s", batch), "clickhouse: recovery")
	}
	if err := s.countLimits(ctx, j, r); err != nil {
		return err
	}
	if s.failpoint(afterLimits) {
		return errStopped
	}
	if err := s.publishWithin(ctx, publishBy, r, j); err != nil {
		return err
	}
	if err := s.settle(ctx, batch, r); err != nil {
		return err
	}
	s.stats.recovered.Add(1)
	s.cfg.logger().Info("finished a committed batch whose owner did not (it died or was too slow)", "batch", batch)
	return nil
}

// Sweeping: how often, and how long aborted records are kept (longer than
// any dedupe window, 35 days).
const (
	sweepEvery  = time.Second
	keepAborted = 36 * 24 * time.Hour
)

// sweeper recovers committed batches older than the lease and deletes
// old aborted records, every sweepEvery and when kicked, until Close.
func (s *Store) sweeper() {
	defer s.wg.Done()
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.life.Done():
			return
		case <-tick.C:
		case <-s.kick:
		}
		s.sweep()
	}
}

// kickSweeper makes the sweeper run now.
func (s *Store) kickSweeper() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sweep goes once over the batch records. Errors are left for the next
// sweep.
func (s *Store) sweep() {
	ctx, cancel := context.WithTimeout(s.life, batchTimeout)
	defer cancel()
	children, _, err := s.keeper.Children(s.root + "/batches")
	if err != nil {
		return
	}
	now := time.Now().UnixMilli()
	for _, id := range children {
		if strings.HasSuffix(id, ".lock") || ctx.Err() != nil {
			continue
		}
		data, st, err := s.keeper.Get(s.recordPath(id))
		if err != nil {
			continue
		}
		r, err := parseRecord(data, st)
		switch {
		case err != nil:
		case r.committed && now-r.ctime > s.cfg.Lease.Milliseconds():
			_ = s.recover(ctx, id)
		case !r.committed && now-r.ctime > keepAborted.Milliseconds():
			_ = s.keeper.Delete(s.recordPath(id), st.Version)
		}
	}
}
