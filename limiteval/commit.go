package limiteval

import (
	"time"

	"github.com/usaged/usaged/usage"
)

// ObserveAll counts evs, the events one commit accepted, in their order,
// at now, the time of the commit, and appends to found the crossings they
// cause: the same crossings, with the same values, as Observe called with
// each event in turn at now, but limit by limit rather than event by event.
//
// A limit still sees the events it counts in their order, which is what its
// crossings depend on (an error rate's above all); what changes is that
// each limit is read once per commit and client rather than once per
// event, which on a commit of thousands of events over thousands of limits
// is most of the cost: a limit is rarely in the processor's cache.
func (e *Evaluator) ObserveAll(now time.Time, evs []*usage.Event, found []Crossing) []Crossing {
	if len(e.rolling) > 0 {
		found = e.observeRolling(now, evs, found)
	}
	c := &e.commit
	defer c.reset()
	for _, ev := range evs {
		gi, ok := c.orgIndex[ev.OrganizationID]
		if !ok {
			gi = -1
			if o := e.byOrg[ev.OrganizationID]; o != nil {
				// Before any slot is read: a roll may renumber them.
				if !now.Before(o.rollAt) {
					o.roll(now)
				}
				gi = c.addOrg(o)
			}
			c.orgIndex[ev.OrganizationID] = gi
		}
		if gi < 0 {
			continue
		}
		it := item{ev: ev, at: unixNano(ev.Time), bytes: ev.ResponseBytes, status: int32(ev.Status), method: methodBit(ev.HTTPMethod)}
		if len(e.users) > 0 {
			it.user = e.users[ev.UserID]
		}
		if len(e.templates) > 0 {
			it.template = e.templates[ev.TemplateURI]
		}
		g := &c.orgs[gi]
		g.items = append(g.items, it)
		g.sum.add(&it)
		g.of = append(g.of, -1)
		if len(g.o.clients) == 0 && len(g.o.each) == 0 {
			continue
		}
		s, ok := g.o.slots[ev.ClientID]
		if !ok {
			if len(g.o.each) == 0 {
				continue // no limit of its own either
			}
			s = g.o.slot(ev.ClientID)
		}
		if int(s) >= len(g.bySlot) {
			g.bySlot = append(g.bySlot, make([]int32, len(g.o.clients)-len(g.bySlot))...)
		}
		ci := g.bySlot[s] - 1
		if ci < 0 {
			ci = c.addClient(ev.ClientID, s)
			g.bySlot[s] = ci + 1
			g.clients = append(g.clients, ci)
		}
		g.of[len(g.of)-1] = ci
		c.clients[ci].n++
		c.clients[ci].sum.add(&it)
	}
	c.placeClients()
	for gi := range c.orgs {
		g := &c.orgs[gi]
		o := g.o
		for _, r := range o.whole {
			found = r.observeAll(&g.group, "", 0, found)
		}
		// A limit on each client over all the commit's clients at once:
		// its clients' values are side by side.
		for _, r := range o.each {
			for _, ci := range g.clients {
				ce := &c.clients[ci]
				found = r.observeAll(&ce.group, ce.id, ce.slot, found)
			}
		}
		for _, ci := range g.clients {
			ce := &c.clients[ci]
			own := o.own[ce.slot]
			for i := range own {
				found = own[i].observeAll(&ce.group, "", ce.slot, found)
			}
		}
	}
	return found
}

// observeAll counts g's items in order, as observe would one by one; for
// a limit on each client they are all of one client, of that slot.
//
// A limit whose window holds every item it counts adds them at once when
// they cannot reach its next threshold: most limits are far from theirs,
// and most commits then cost them a few additions instead of a loop over
// their events. An error rate, which may rise and fall within the items,
// takes the shortcut only once every threshold was met. A filtered
// limit's items are those its filter passes, whose sum g keeps for every
// limit with that filter.
func (t *tracked) observeAll(g *group, client string, slot int32, found []Crossing) []Crossing {
	items, sum := g.items, &g.sum
	if t.filter != nil {
		if sum = g.passed(t.filter); sum.counts.Requests == 0 {
			return found // none passes
		}
	}
	if len(items) > 0 {
		for i := range t.windows {
			w := &t.windows[i]
			if sum.first < w.start || sum.last >= w.end {
				continue
			}
			v := w.at(t.scope, slot)
			var add int64
			switch t.metric {
			case usage.LimitResponseBytes:
				add = sum.bytes
			case usage.LimitErrorRate:
			default:
				add = sum.counts.Get(t.metric.QueryMetrics()[0])
			}
			if t.metric == usage.LimitErrorRate && v.met == t.allMet || t.metric != usage.LimitErrorRate && v.due != 0 && v.N+add < v.due {
				v.N += add
				v.Requests += sum.counts.Requests
				v.Errors += sum.counts.Status400 + sum.counts.Status500
				return found
			}
			break
		}
	}
	var vs [2]*value // a window's value, looked up once
	for k := range items {
		it := &items[k] // not a copy: copying an item stalls on its own stores
		if t.filter != nil && !t.filter.matchItem(it) {
			continue
		}
		for i := range t.windows {
			w := &t.windows[i]
			if it.at < w.start || it.at >= w.end {
				continue
			}
			v := vs[i]
			if v == nil {
				v = w.at(t.scope, slot)
				vs[i] = v
			}
			v.Add(t.metric, usage.CountsFor(int(it.status)), it.bytes)
			if v.N >= v.due {
				found = t.check(i, client, v, found)
			}
			break
		}
	}
	return found
}

// commit is ObserveAll's grouping of a commit's events: by organization
// with limits and, where it has limits by client, by client; each group in
// the events' order. It is kept from commit to commit, so that a steady
// stream of commits allocates nothing.
type commit struct {
	orgIndex map[string]int32 // into orgs; -1 for an organization without limits
	orgs     []orgEvents
	clients  []clientEvents
	// placed holds the items of clients, each client's side by side, in
	// the order limits read them: organization by organization, client
	// by client.
	placed []item
}

// placeClients gives each of c.clients its items, in placed.
func (c *commit) placeClients() {
	n := 0
	for i := range c.clients {
		n += c.clients[i].n
	}
	if n > cap(c.placed) {
		c.placed = make([]item, n)
	}
	n = 0
	for gi := range c.orgs {
		for _, ci := range c.orgs[gi].clients {
			ce := &c.clients[ci]
			ce.items = c.placed[n : n : n+ce.n]
			n += ce.n
		}
	}
	c.placed = c.placed[:n]
	for gi := range c.orgs {
		g := &c.orgs[gi]
		for k, ci := range g.of {
			if ci >= 0 {
				ce := &c.clients[ci]
				ce.items = append(ce.items, g.items[k])
			}
		}
	}
}

// group is items of a commit that limits count together: an
// organization's, or one client's.
type group struct {
	items []item
	sum   groupSum
	// filtered is, for each filter a limit asked about, the sum of the
	// items it passes.
	filtered []filteredSum
}

type filteredSum struct {
	f   *filter
	sum groupSum
}

// passed returns the sum of g's items that f passes. The pointer is good
// until the next call.
func (g *group) passed(f *filter) *groupSum {
	for i := range g.filtered {
		if g.filtered[i].f == f {
			return &g.filtered[i].sum
		}
	}
	var s groupSum
	for k := range g.items {
		if f.matchItem(&g.items[k]) {
			s.add(&g.items[k])
		}
	}
	g.filtered = append(g.filtered, filteredSum{f, s})
	return &g.filtered[len(g.filtered)-1].sum
}

type orgEvents struct {
	group
	o       *org
	of      []int32 // the index into commit.clients of each item's client, -1 for none
	clients []int32 // into commit.clients, in order of first event
	// bySlot is 1 + the index into commit.clients of the client of each
	// slot of o, 0 for a client without events.
	bySlot []int32
}

type clientEvents struct {
	group
	id   string
	slot int32 // in its org
	n    int   // how many items
}

// groupSum is what a group of items adds to a limit that counts them all:
// their counts, their response bytes (as Sum.Add counts them), and the
// earliest and latest of their times.
type groupSum struct {
	counts      usage.Counts
	bytes       int64
	first, last int64
}

func (s *groupSum) add(it *item) {
	if s.counts.Requests == 0 || it.at < s.first {
		s.first = it.at
	}
	if s.counts.Requests == 0 || it.at > s.last {
		s.last = it.at
	}
	s.counts.Add(usage.CountsFor(int(it.status)))
	s.bytes += max(it.bytes, 0)
}

// item is an event and what every limit reads of it, copied beside the
// pointer: a client's events are scattered over the commit's, and a limit
// on the client reads each.
type item struct {
	ev             *usage.Event
	at             int64 // Time in Unix nanoseconds
	bytes          int64 // ResponseBytes
	status         int32
	user, template int32 // the Evaluator's numbers of UserID and TemplateURI, 0 for none
	method         uint8 // methodBit(HTTPMethod)
}

func (c *commit) addOrg(o *org) int32 {
	if len(c.orgs) < cap(c.orgs) {
		c.orgs = c.orgs[:len(c.orgs)+1]
	} else {
		c.orgs = append(c.orgs, orgEvents{})
	}
	g := &c.orgs[len(c.orgs)-1]
	g.o, g.items, g.of, g.clients, g.sum, g.filtered = o, g.items[:0], g.of[:0], g.clients[:0], groupSum{}, g.filtered[:0]
	return int32(len(c.orgs) - 1)
}

func (c *commit) addClient(id string, slot int32) int32 {
	if len(c.clients) < cap(c.clients) {
		c.clients = c.clients[:len(c.clients)+1]
	} else {
		c.clients = append(c.clients, clientEvents{})
	}
	ce := &c.clients[len(c.clients)-1]
	ce.id, ce.slot, ce.items, ce.sum, ce.n, ce.filtered = id, slot, nil, groupSum{}, 0, ce.filtered[:0]
	return int32(len(c.clients) - 1)
}

// reset empties c, keeping its memory but not the commit's events.
func (c *commit) reset() {
	clear(c.orgIndex)
	for i := range c.orgs {
		g := &c.orgs[i]
		clear(g.items)
		g.o, g.bySlot = nil, g.bySlot[:0] // zeroed as it grows again
	}
	clear(c.placed)
	for i := range c.clients {
		c.clients[i].items = nil
		c.clients[i].id = ""
	}
	c.orgs, c.clients = c.orgs[:0], c.clients[:0]
}
