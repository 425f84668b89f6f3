package memory

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// compareEvents orders events as store.EventLister lists them: by time,
// then client, then event ID.
func compareEvents(a, b *usage.Event) int {
	return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.ID, b.ID))
}

// record adds an accepted event to its organization's journal, after any
// event it ties with, so that the journal stays in listing order. The
// caller holds the mutex.
func (d *DB) record(ev usage.Event) {
	ev.Time = ev.Time.UTC()
	evs := d.journal[ev.OrganizationID]
	i, _ := slices.BinarySearchFunc(evs, &ev, func(e usage.Event, t *usage.Event) int {
		if c := compareEvents(&e, t); c != 0 {
			return c
		}
		return -1 // ties go before the new event
	})
	d.journal[ev.OrganizationID] = slices.Insert(evs, i, ev)
}

// cursorKey is what a cursor holds: the listing position of the last event
// of a page.
type cursorKey struct {
	Nanos    int64  `json:"t"`
	ClientID string `json:"c"`
	ID       string `json:"i"`
}

// encodeCursor returns the cursor of the page after ev.
func encodeCursor(ev *usage.Event) string {
	b, _ := json.Marshal(cursorKey{ev.Time.UnixNano(), ev.ClientID, ev.ID}) // strings and an int: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the position a cursor of encodeCursor holds, as an
// event to compare with.
func decodeCursor(s string) (usage.Event, error) {
	var k cursorKey
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &k)
	}
	if err != nil {
		return usage.Event{}, usage.Errorf(usage.KindInvalid, "cursor", "cursor is not one this store returned: pass the cursor of the previous page as it was given")
	}
	return usage.Event{Time: time.Unix(0, k.Nanos), ClientID: k.ClientID, ID: k.ID}, nil
}

// ListEvents implements store.EventLister.
func (d *DB) ListEvents(ctx context.Context, p store.EventPage) ([]usage.Event, string, error) {
	var after *usage.Event
	if p.After != "" {
		ev, err := decodeCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		after = &ev
	}
	if p.Limit < 1 {
		return nil, "", usage.Errorf(usage.KindInvalid, "limit", "the page size must be 1 or more, not %d", p.Limit)
	}
	if err := d.lock(ctx); err != nil {
		return nil, "", err
	}
	defer d.mu.Unlock()
	evs := d.journal[p.OrganizationID]
	from, _ := slices.BinarySearchFunc(evs, p.Interval.Start, func(e usage.Event, t time.Time) int { return e.Time.Compare(t) })
	if after != nil {
		i, found := slices.BinarySearchFunc(evs, after, func(e usage.Event, t *usage.Event) int { return compareEvents(&e, t) })
		if found {
			i++
		}
		from = max(from, i)
	}
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	var page []usage.Event
	for i := from; i < len(evs) && evs[i].Time.Before(p.Interval.End); i++ {
		ev := &evs[i]
		if !in(p.ClientIDs, ev.ClientID) || !in(p.UserIDs, ev.UserID) || !in(p.TemplateURIs, ev.TemplateURI) || !in(p.HTTPMethods, ev.HTTPMethod) {
			continue
		}
		if len(page) == p.Limit {
			return page, encodeCursor(&page[len(page)-1]), nil
		}
		page = append(page, *ev)
	}
	return page, "", nil
}
