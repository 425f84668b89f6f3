package storetest

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// RunEventLister runs the suite of store.EventLister on the stores b opens,
// and nothing when they do not implement it: every page of a listing
// concatenated is the accepted events, in order, each once, with every
// field and its time to the nanosecond, checked against events counted by
// hand. RunUsage runs it.
func RunEventLister(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	_, ok := s.(store.EventLister)
	s.Close()
	if !ok {
		return
	}
	t.Run("EventsMatchOracle", func(t *testing.T) { testEventsOracle(t, b) })
	t.Run("EventsFiltered", func(t *testing.T) { testEventsFiltered(t, b) })
	t.Run("EventsIntervalBounds", func(t *testing.T) { testEventsBounds(t, b) })
	t.Run("EventsDuplicatesNotListed", func(t *testing.T) { testEventsDuplicates(t, b) })
	t.Run("EventsMalformedCursor", func(t *testing.T) { testEventsCursor(t, b) })
}

// lister opens a store of b as the store.EventLister it is.
func lister(t *testing.T, b UsageBackend) (store.Usage, store.EventLister) {
	t.Helper()
	s := b.Open(t)
	return s, s.(store.EventLister)
}

// measuredEvent is g's next event with measurements of its own, so that
// every field of an event is checked.
func measuredEvent(g *Gen) usage.Event {
	ev := g.Event()
	ev.DurationMs = g.R.Int64N(5000)
	ev.RequestBytes = g.R.Int64N(1 << 20)
	ev.ResponseBytes = g.R.Int64N(1 << 30)
	return ev
}

// interval holds every event of the generator.
func (g *Gen) interval() usage.Interval {
	return usage.Interval{Start: base, End: base.AddDate(0, 0, g.Days)}
}

// Events returns the accepted events of p's organization that p selects, in
// listing order (time, client, event ID), by brute force. p.After and
// p.Limit are not read.
func (o *Oracle) Events(p store.EventPage) []usage.Event {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	var out []usage.Event
	for _, ev := range o.Accepted {
		if ev.OrganizationID == p.OrganizationID && !ev.Time.Before(p.Interval.Start) && ev.Time.Before(p.Interval.End) &&
			in(p.ClientIDs, ev.ClientID) && in(p.UserIDs, ev.UserID) && in(p.TemplateURIs, ev.TemplateURI) && in(p.HTTPMethods, ev.HTTPMethod) {
			out = append(out, ev)
		}
	}
	slices.SortStableFunc(out, func(a, b usage.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.ID, b.ID))
	})
	return out
}

// listAll lists every page of p, p.Limit events at most each, checking
// that no page is larger, that only the last has no cursor and that no
// cursor comes twice.
func listAll(t *testing.T, l store.EventLister, p store.EventPage) []usage.Event {
	t.Helper()
	var all []usage.Event
	seen := map[string]bool{}
	for {
		page, next, err := l.ListEvents(ctx(t), p)
		if err != nil {
			t.Fatalf("ListEvents(%+v): %v", p, err)
		}
		if len(page) > p.Limit {
			t.Fatalf("ListEvents(%+v): %d events, more than the limit", p, len(page))
		}
		if next != "" && len(page) == 0 {
			t.Fatalf("ListEvents(%+v): an empty page with a cursor %q", p, next)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		if seen[next] {
			t.Fatalf("ListEvents(%+v): cursor %q came again: the listing does not end", p, next)
		}
		seen[next] = true
		p.After = next
	}
}

// sameEvent reports how got differs from want, or "" when it does not:
// every field, the time to the nanosecond.
func sameEvent(got, want usage.Event) string {
	if !got.Time.Equal(want.Time) {
		return "time " + got.Time.Format(time.RFC3339Nano) + ", want " + want.Time.Format(time.RFC3339Nano)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if got != want {
		return firstDiff(got, want)
	}
	return ""
}

// checkEvents compares a listing with the oracle's events.
func checkEvents(t *testing.T, what string, got, want []usage.Event) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if d := sameEvent(got[i], want[i]); d != "" {
			t.Fatalf("%s: event %d of %d (%s): %s", what, i, len(want), want[i].ID, d)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
}

func testEventsOracle(t *testing.T, b UsageBackend) {
	s, l := lister(t, b)
	defer s.Close()
	g := NewGen(5)
	o := NewOracle()
	events := make([]usage.Event, 3000)
	for i := range events {
		events[i] = measuredEvent(g)
	}
	appendAll(t, s, o, g, events)
	for _, org := range append(slices.Clone(g.Orgs), "nobody") {
		p := store.EventPage{OrganizationID: org, Interval: g.interval()}
		want := o.Events(p)
		for _, limit := range []int{1, 7, 100, len(want) + 1, len(want) + 50} {
			p.Limit = limit
			checkEvents(t, org+", pages of "+strconv.Itoa(limit), listAll(t, l, p), want)
		}
		// A page larger than the listing is the whole of it, with no cursor.
		p.Limit = len(want) + 1
		page, next, err := l.ListEvents(ctx(t), p)
		if err != nil || next != "" {
			t.Fatalf("ListEvents(%s, limit %d) = cursor %q, %v; want the last page", org, p.Limit, next, err)
		}
		checkEvents(t, org+", one page", page, want)
	}
}

func testEventsFiltered(t *testing.T, b UsageBackend) {
	s, l := lister(t, b)
	defer s.Close()
	g := NewGen(6)
	o := NewOracle()
	events := make([]usage.Event, 2000)
	for i := range events {
		events[i] = measuredEvent(g)
	}
	appendAll(t, s, o, g, events)
	for range 150 {
		q := g.RandomQuery(t) // its organization, filters and hours; a random time within
		p := store.EventPage{
			OrganizationID: q.OrganizationID,
			Interval: usage.Interval{
				Start: q.Interval.Start.Add(time.Duration(g.R.Int64N(int64(time.Hour)))),
				End:   q.Interval.End.Add(-time.Duration(g.R.Int64N(int64(time.Hour)))),
			},
			ClientIDs:    q.Filter.ClientIDs,
			UserIDs:      q.Filter.UserIDs,
			TemplateURIs: q.Filter.TemplateURIs,
			HTTPMethods:  q.Filter.HTTPMethods,
			Limit:        1 + g.R.IntN(40),
		}
		if !p.Interval.Start.Before(p.Interval.End) {
			continue
		}
		checkEvents(t, "filtered "+showPage(p), listAll(t, l, p), o.Events(p))
	}
}

// showPage names a page's selection for failure messages.
func showPage(p store.EventPage) string {
	return p.OrganizationID + " " + p.Interval.String() + " clients " + strings.Join(p.ClientIDs, ",") + " users " + strings.Join(p.UserIDs, ",") +
		" templates " + strings.Join(p.TemplateURIs, ",") + " methods " + strings.Join(p.HTTPMethods, ",") + " limit " + strconv.Itoa(p.Limit)
}

func testEventsBounds(t *testing.T, b UsageBackend) {
	s, l := lister(t, b)
	defer s.Close()
	o := NewOracle()
	start, end := base.Add(time.Hour+123456789), base.Add(2*time.Hour+987654321)
	at := func(id string, t time.Time) usage.Event {
		return usage.Event{ID: id, Time: t, OrganizationID: "o", ClientID: "c", ClientName: "n", TemplateURI: "t", HTTPMethod: "GET", Status: 200}
	}
	appendBatch(t, s, o, []usage.Event{
		at("before", start.Add(-time.Nanosecond)),
		at("start", start),
		at("inside", start.Add(time.Nanosecond)),
		at("last", end.Add(-time.Nanosecond)),
		at("end", end),
	})
	got, next, err := l.ListEvents(ctx(t), store.EventPage{OrganizationID: "o", Interval: usage.Interval{Start: start, End: end}, Limit: 10})
	if err != nil || next != "" {
		t.Fatalf("ListEvents = cursor %q, %v", next, err)
	}
	checkEvents(t, "start included, end excluded", got, []usage.Event{at("start", start), at("inside", start.Add(time.Nanosecond)), at("last", end.Add(-time.Nanosecond))})

	// Ties in time are ordered by client, then event ID.
	tie := base.Add(5 * time.Hour)
	var ties []usage.Event
	for _, k := range [][2]string{{"b", "2"}, {"a", "9"}, {"b", "1"}, {"a", "10"}} {
		ev := at(k[1], tie)
		ev.ClientID = k[0]
		ties = append(ties, ev)
	}
	appendBatch(t, s, o, ties)
	p := store.EventPage{OrganizationID: "o", Interval: usage.Interval{Start: tie, End: tie.Add(time.Nanosecond)}, Limit: 1}
	checkEvents(t, "ties", listAll(t, l, p), []usage.Event{ties[3], ties[1], ties[2], ties[0]})
}

func testEventsDuplicates(t *testing.T, b UsageBackend) {
	s, l := lister(t, b)
	defer s.Close()
	ev := usage.Event{ID: "x", Time: base, OrganizationID: "o", ClientID: "c", ClientName: "first", TemplateURI: "t", HTTPMethod: "GET", Status: 200, DurationMs: 3}
	again, later := ev, ev
	again.ClientName = "second"
	later.Time, later.Status = base.Add(time.Minute), 500
	o := NewOracle()
	appendBatch(t, s, o, []usage.Event{ev, again})
	appendBatch(t, s, o, []usage.Event{later})
	appendBatch(t, s, o, []usage.Event{ev})
	p := store.EventPage{OrganizationID: "o", Interval: usage.Interval{Start: base, End: base.Add(time.Hour)}, Limit: 10}
	checkEvents(t, "duplicates", listAll(t, l, p), []usage.Event{ev})
}

func testEventsCursor(t *testing.T, b UsageBackend) {
	s, l := lister(t, b)
	defer s.Close()
	if _, err := s.Append(ctx(t), []usage.Event{{ID: "x", Time: base, OrganizationID: "o", ClientID: "c", TemplateURI: "t", HTTPMethod: "GET", Status: 200}}, base); err != nil {
		t.Fatal(err)
	}
	for _, cursor := range []string{"!", "not a cursor", "bm90IGEgY3Vyc29y", "\x00"} {
		_, _, err := l.ListEvents(ctx(t), store.EventPage{OrganizationID: "o", Interval: usage.Interval{Start: base, End: base.Add(time.Hour)}, After: cursor, Limit: 1})
		ue, ok := errors.AsType[*usage.Error](err)
		if !ok || ue.Kind != usage.KindInvalid || ue.Field != "cursor" {
			t.Errorf("ListEvents with cursor %q: %v; want an invalid error on field cursor", cursor, err)
		}
	}
}
