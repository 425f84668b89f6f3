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
				gi = c.addOrg(o)
			}
			c.orgIndex[ev.OrganizationID] = gi
		}
		if gi < 0 {
			continue
		}
		it := item{ev, unixNano(ev.Time), ev.ResponseBytes, int32(ev.Status), methodBit(ev.HTTPMethod)}
		g := &c.orgs[gi]
		g.items = append(g.items, it)
		g.sum.add(&it)
		if len(g.o.byClient) == 0 && g.o.each == 0 {
			continue
		}
		k := orgClient{ev.OrganizationID, ev.ClientID}
		ci, ok := c.clientIndex[k]
		if !ok {
			ci = c.addClient(ev.ClientID)
			c.clientIndex[k] = ci
			g.clients = append(g.clients, ci)
		}
		c.clients[ci].items = append(c.clients[ci].items, it)
		c.clients[ci].sum.add(&it)
	}
	for gi := range c.orgs {
		g := &c.orgs[gi]
		o := g.o
		if !now.Before(o.rollAt) {
			o.roll(now)
		}
		for _, r := range o.anyOne {
			if r.scope == usage.ScopeOrganization {
				found = r.observeAll(g.items, &g.sum, found)
			}
		}
		for _, ci := range g.clients {
			ce := &c.clients[ci]
			if o.each > 0 {
				for _, r := range o.anyOne {
					if r.scope == usage.ScopeEachClient {
						found = r.observeAll(ce.items, &ce.sum, found)
					}
				}
			}
			for _, r := range o.byClient[ce.id] {
				found = r.observeAll(ce.items, &ce.sum, found)
			}
		}
	}
	return found
}

// observeAll counts items, whose sum is sum, in order, as observe would
// one by one; for a limit on each client they are all of one client.
//
// A limit without a filter whose window holds every item adds them at
// once when they cannot reach its next threshold: most limits are far from
// theirs, and most commits then cost them a few additions instead of a
// loop over their events. An error rate, which may rise and fall within
// the items, takes the shortcut only once every threshold was met.
func (t *tracked) observeAll(items []item, sum *groupSum, found []Crossing) []Crossing {
	if t.filter == nil && len(items) > 0 {
		for i := range t.windows {
			w := &t.windows[i]
			if sum.first < w.start || sum.last >= w.end {
				continue
			}
			v := w.at(t.scope, items[0].ev.ClientID)
			var add int64
			switch t.metric {
			case usage.LimitResponseBytes:
				add = sum.bytes
			case usage.LimitErrorRate:
			default:
				add = sum.counts.Get(t.metric.QueryMetrics()[0])
			}
			all := v.met == 1<<len(t.limit.Thresholds)-1
			if t.metric == usage.LimitErrorRate && all || t.metric != usage.LimitErrorRate && v.due != 0 && v.N+add < v.due {
				v.N += add
				v.Requests += sum.counts.Requests
				v.Errors += sum.counts.Status400 + sum.counts.Status500
				return found
			}
			break
		}
	}
	var vs [2]*value // a window's value, looked up once
	for _, it := range items {
		if t.filter != nil && !t.filter.match(it.ev, it.method) {
			continue
		}
		for i := range t.windows {
			w := &t.windows[i]
			if it.at < w.start || it.at >= w.end {
				continue
			}
			v := vs[i]
			if v == nil {
				v = w.at(t.scope, it.ev.ClientID)
				vs[i] = v
			}
			v.Add(t.metric, usage.CountsFor(int(it.status)), it.bytes)
			if v.N >= v.due {
				client := ""
				if t.scope == usage.ScopeEachClient {
					client = it.ev.ClientID
				}
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
	orgIndex    map[string]int32 // into orgs; -1 for an organization without limits
	orgs        []orgEvents
	clientIndex map[orgClient]int32 // into clients
	clients     []clientEvents
}

type orgEvents struct {
	o       *org
	items   []item
	sum     groupSum
	clients []int32 // into commit.clients, in order of first event
}

type clientEvents struct {
	id    string
	items []item
	sum   groupSum
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

type orgClient struct{ org, client string }

// item is an event and what every limit reads of it, copied beside the
// pointer: a client's events are scattered over the commit's, and a limit
// on the client reads each.
type item struct {
	ev     *usage.Event
	at     int64 // Time in Unix nanoseconds
	bytes  int64 // ResponseBytes
	status int32
	method uint8 // methodBit(HTTPMethod)
}

func (c *commit) addOrg(o *org) int32 {
	if len(c.orgs) < cap(c.orgs) {
		c.orgs = c.orgs[:len(c.orgs)+1]
	} else {
		c.orgs = append(c.orgs, orgEvents{})
	}
	g := &c.orgs[len(c.orgs)-1]
	g.o, g.items, g.clients, g.sum = o, g.items[:0], g.clients[:0], groupSum{}
	return int32(len(c.orgs) - 1)
}

func (c *commit) addClient(id string) int32 {
	if len(c.clients) < cap(c.clients) {
		c.clients = c.clients[:len(c.clients)+1]
	} else {
		c.clients = append(c.clients, clientEvents{})
	}
	ce := &c.clients[len(c.clients)-1]
	ce.id, ce.items, ce.sum = id, ce.items[:0], groupSum{}
	return int32(len(c.clients) - 1)
}

// reset empties c, keeping its memory but not the commit's events.
func (c *commit) reset() {
	clear(c.orgIndex)
	clear(c.clientIndex)
	for i := range c.orgs {
		clear(c.orgs[i].items)
		c.orgs[i].o = nil
	}
	for i := range c.clients {
		clear(c.clients[i].items)
		c.clients[i].id = ""
	}
	c.orgs, c.clients = c.orgs[:0], c.clients[:0]
}
