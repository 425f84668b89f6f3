package clickhouse

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var _ store.EventLister = (*Store)(nil)

// eventKey is the place of a journal row in a listing: the order is by
// time, client and event ID, then by batch, which tells apart two rows of
// one key accepted twice (the second time after the first left the dedupe
// window).
type eventKey struct {
	sec               int64
	nanos             uint32
	client, id, batch string
}

// cursor encodes k, opaque to callers: its fields as varints and
// length-prefixed strings, in base64.
func (k eventKey) cursor() string {
	b := binary.AppendUvarint(nil, uint64(k.sec))
	b = binary.AppendUvarint(b, uint64(k.nanos))
	for _, s := range []string{k.client, k.id, k.batch} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseCursor decodes a cursor made by eventKey.cursor.
func parseCursor(s string) (eventKey, error) {
	var k eventKey
	bad := usage.Errorf(usage.KindInvalid, "cursor", "cursor %q is not one this listing returned: start again without it", s)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return k, bad
	}
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	sec, ok1 := next()
	nanos, ok2 := next()
	if !ok1 || !ok2 || sec > 1<<32-1 || nanos >= 1e9 {
		return k, bad
	}
	k.sec, k.nanos = int64(sec), uint32(nanos)
	for _, dst := range []*string{&k.client, &k.id, &k.batch} {
		n, ok := next()
		if !ok || n > uint64(len(b)) {
			return k, bad
		}
		*dst, b = string(b[:n]), b[n:]
	}
	if len(b) != 0 {
		return k, bad
	}
	return k, nil
}

// ListEvents implements store.EventLister, from the events journal: only
// the rows of published batches, whose counts are in place, so that each
// listed event is one that Query counts.
func (s *Store) ListEvents(ctx context.Context, p store.EventPage) ([]usage.Event, string, error) {
	if p.Limit < 1 {
		return nil, "", usage.Errorf(usage.KindInvalid, "limit", "a page holds 1 event or more, got %d", p.Limit)
	}
	var after *eventKey
	if p.After != "" {
		k, err := parseCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		after = &k
	}
	text, args := s.buildEventsSQL(p, after)
	var (
		events []usage.Event
		keys   []eventKey
	)
	err := s.read(ctx, "events", func(ctx context.Context, r driver.Conn) error {
		events, keys = events[:0], keys[:0]
		res, err := r.Query(ctx, text, args...)
		if err != nil {
			return err
		}
		defer res.Close()
		for res.Next() {
			var (
				k      eventKey
				sec    uint32
				status uint16
				ev     = usage.Event{OrganizationID: p.OrganizationID}
			)
			if err := res.Scan(&sec, &k.nanos, &k.client, &k.id, &k.batch, &ev.ClientName, &ev.UserID, &ev.TemplateURI,
				&ev.HTTPMethod, &status, &ev.Platform, &ev.DurationMs, &ev.RequestBytes, &ev.ResponseBytes); err != nil {
				return err
			}
			k.sec = int64(sec)
			ev.ID, ev.ClientID, ev.Status = k.id, k.client, int(status)
			ev.Time = time.Unix(k.sec, int64(k.nanos)).UTC()
			events, keys = append(events, ev), append(keys, k)
		}
		return res.Err()
	})
	if err != nil {
		return nil, "", err
	}
	// The query reads one row past the page, to tell whether a next page
	// has any.
	if len(events) <= p.Limit {
		return events, "", nil
	}
	return events[:p.Limit], keys[p.Limit-1].cursor(), nil
}

// buildEventsSQL writes the SQL of p's page, after the key after when it
// is not nil, and its arguments. The interval is exact to the nanosecond;
// whole hours around it bound what the journal and published read.
func (s *Store) buildEventsSQL(p store.EventPage, after *eventKey) (string, []any) {
	db := s.cfg.Database
	start, end := p.Interval.Start, p.Interval.End
	if after != nil {
		start = usage.Later(start, time.Unix(after.sec, int64(after.nanos)))
	}
	firstHour := unixSeconds(start.Truncate(time.Hour))
	endHour := unixSeconds(end.Truncate(time.Hour).Add(time.Hour))
	fromSec, fromNanos := instant(p.Interval.Start)
	toSec, toNanos := instant(end)
	where := []string{
		"org_id = ?", "hour >= toDateTime(?)", "hour < toDateTime(?)",
		"batch_id IN (SELECT batch_id FROM " + db + ".published WHERE scope = ? AND hour >= toDateTime(?) AND hour < toDateTime(?))",
		"(time > toDateTime(?) OR time = toDateTime(?) AND nanos >= ?)",
		"(time < toDateTime(?) OR time = toDateTime(?) AND nanos < ?)",
	}
	args := []any{
		p.OrganizationID, firstHour, endHour,
		"e:" + p.OrganizationID, firstHour, endHour,
		fromSec, fromSec, fromNanos,
		toSec, toSec, toNanos,
	}
	in := func(column string, values []string) {
		if len(values) > 0 {
			where = append(where, column+" IN ?")
			args = append(args, ch.GroupSet{Value: anys(values)})
		}
	}
	in("client_id", p.ClientIDs)
	in("user_id", p.UserIDs)
	in("template", p.TemplateURIs)
	in("method", p.HTTPMethods)
	if after != nil {
		where = append(where, "(toUInt32(time), nanos, client_id, event_id, batch_id) > (?, ?, ?, ?, ?)")
		args = append(args, after.sec, after.nanos, after.client, after.id, after.batch)
	}
	return "SELECT toUInt32(time), nanos, client_id, event_id, batch_id, client_name, user_id, template, method, status," +
		" platform, duration_ms, request_bytes, response_bytes FROM " + db + ".events WHERE " + strings.Join(where, " AND ") +
		" ORDER BY time, nanos, client_id, event_id, batch_id LIMIT " + strconv.Itoa(p.Limit+1), args
}

// instant returns t in Unix seconds and nanoseconds, within the range of a
// DateTime.
func instant(t time.Time) (int64, int) {
	sec := unixSeconds(t)
	if sec != t.Unix() {
		return sec, 0
	}
	return sec, t.Nanosecond()
}
