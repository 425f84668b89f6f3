package storetest

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// The tests of store.ServiceRegistry and of the activity half of
// store.Usage: the registry of the service-usage reports
// round trips, and the reports over services' activity match an oracle that
// folds the generated activity by hand, from the contract's text.

// longAgo is a dedupe window start before any generated activity, so that
// every id recorded earlier in a test is within the window.
var longAgo = base.AddDate(0, -1, 0)

// ServiceCast is who takes part in one service's generated activity.
type ServiceCast struct {
	GUID usage.GUID
	// Users are named by the activity: they send messages, use features
	// and have user events. Two of them are special: Users[0] has no user
	// events, so it is known only by what it sends and uses; Users[1] does
	// nothing before the last third of the days, though it receives
	// messages and invites others from the start, so it is not listed
	// before then.
	Users []usage.GUID
	// Outsiders only receive messages and send invitations: they are never
	// users of the service.
	Outsiders []usage.GUID
}

// ActivityGen generates random activity for a few services: every kind,
// repeated ids (within and across calls, and the same id in two services),
// gauges reported several times a day with ties in time, user events of
// every type with changing account details, and recipients and inviters who
// are not users of the service. It is deterministic for a seed.
type ActivityGen struct {
	R *rand.Rand
	// Start is midnight UTC of the first day of activity; events fall in
	// the Days days from it, except on day Quiet, which has none.
	Start time.Time
	Days  int
	Quiet int
	// Repeat makes one event in Repeat reuse an earlier id, of any
	// service; 0 never reuses one.
	Repeat int
	Casts  []ServiceCast
	// Shared are users of every service (Shared[0]) or of the first only
	// (Shared[1], an outsider of the others), to catch a report of one
	// service that leaks another's.
	Shared []usage.GUID

	seq       int
	ids       []string                    // every id generated, once each
	lastGauge map[gaugeOf]time.Time       // the time of each gauge's latest generated report
	lastEvent map[[2]usage.GUID]time.Time // the time of each (service, user)'s latest generated user event
	groups    []usage.GUID                // the user groups users move between
}

type gaugeOf struct {
	service usage.GUID
	kind    usage.ActivityKind
}

// NewActivityGen returns a generator of 70 days of activity from base (two
// calendar months and parts of a third) for three services of ten or so
// users each.
func NewActivityGen(seed uint64) *ActivityGen {
	g := &ActivityGen{
		R:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		Start: base, Days: 70, Quiet: 20, // 2026-03-31, the last day of a month
		Repeat:    8,
		lastGauge: map[gaugeOf]time.Time{},
		lastEvent: map[[2]usage.GUID]time.Time{},
	}
	g.Shared = []usage.GUID{g.GUID(), g.GUID()}
	g.groups = []usage.GUID{g.GUID(), g.GUID(), g.GUID()}
	for i := range 3 {
		c := ServiceCast{GUID: g.GUID()}
		for range 8 {
			c.Users = append(c.Users, g.GUID())
		}
		c.Users = append(c.Users, g.Shared[0])
		if i == 0 {
			c.Users = append(c.Users, g.Shared[1])
		} else {
			c.Outsiders = append(c.Outsiders, g.Shared[1])
		}
		for range 3 {
			c.Outsiders = append(c.Outsiders, g.GUID())
		}
		g.Casts = append(g.Casts, c)
	}
	return g
}

// GUID returns a random GUID from the generator's source.
func (g *ActivityGen) GUID() usage.GUID {
	var u usage.GUID
	for i := 0; i < len(u); i += 8 {
		v := g.R.Uint64()
		for j := range 8 {
			u[i+j] = byte(v >> (8 * j))
		}
	}
	return u
}

// Batch returns n new events of service Casts[i].
func (g *ActivityGen) Batch(i, n int) []usage.Activity {
	batch := make([]usage.Activity, n)
	for j := range batch {
		batch[j] = g.Activity(i)
	}
	return batch
}

// Activity returns a new random event of service Casts[i].
func (g *ActivityGen) Activity(i int) usage.Activity {
	r, c := g.R, &g.Casts[i]
	a := usage.Activity{ID: g.id()}
	day := r.IntN(g.Days - 1)
	if day >= g.Quiet {
		day++
	}
	a.Time = g.timeIn(day)
	switch k := r.IntN(20); {
	case k < 7:
		a.Kind = usage.ActivityMessage
		a.User = g.actor(c, day, false)
		all := slices.Concat(c.Users, c.Outsiders) // the sender too, now and then
		for range r.IntN(5) {
			if u := all[r.IntN(len(all))]; !slices.Contains(a.Recipients, u) {
				a.Recipients = append(a.Recipients, u)
			}
		}
		if r.IntN(2) == 0 {
			a.Attachments = 1 + r.Int64N(5)
			a.AttachmentBytes = r.Int64N(1 << 40)
		}
	case k < 11:
		a.Kind = usage.ActivityFeature
		a.User = g.actor(c, day, false)
		a.Feature = usage.Feature(1 + r.IntN(usage.NumFeatures))
	case k < 14:
		a.Kind = usage.ActivityUsers
		a.Time = g.gaugeTime(c.GUID, a.Kind, day, a.Time)
		n := func() int64 { return r.Int64N(2000) }
		a.Users = usage.UserCounts{Total: n(), Pro: n(), Guest: n(), Disabled: n(), Unregistered: n()}
		if r.IntN(10) == 0 {
			a.Users = usage.UserCounts{Total: 1_000_000_000} // the others zero
		}
	case k < 16:
		a.Kind = usage.ActivityStorage
		a.Time = g.gaugeTime(c.GUID, a.Kind, day, a.Time)
		if r.IntN(8) != 0 { // else an empty store: a zero report
			a.StorageBytes = r.Int64N(1 << 60)
		}
	default:
		g.userEvent(c, day, &a)
	}
	return a
}

// id returns a new id, or now and then an earlier one: as often one of the
// last few, likely in the same call, as one from anywhere before.
func (g *ActivityGen) id() string {
	r := g.R
	if g.Repeat > 0 && len(g.ids) > 0 && r.IntN(g.Repeat) == 0 {
		if r.IntN(2) == 0 {
			return g.ids[len(g.ids)-1-r.IntN(min(len(g.ids), 20))]
		}
		return g.ids[r.IntN(len(g.ids))]
	}
	g.seq++
	id := fmt.Sprintf("act-%d", g.seq) // "act-10" < "act-9": string order is not generation order
	g.ids = append(g.ids, id)
	return id
}

// timeIn returns a random time in day: often whole seconds, else with
// nanoseconds, and now and then the first or the last instant of the day.
func (g *ActivityGen) timeIn(day int) time.Time {
	r := g.R
	d := g.Start.AddDate(0, 0, day)
	switch k := r.IntN(20); {
	case k == 0:
		return d
	case k == 1:
		return d.Add(24*time.Hour - time.Nanosecond)
	case k < 8:
		return d.Add(time.Duration(r.IntN(86400)) * time.Second)
	default:
		return d.Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
	}
}

// gaugeTime returns the time of a report of a gauge: as often as not the
// time of its previous report or the last second of the day, so that reports
// tie in time and the tie decides which one a day ends with.
func (g *ActivityGen) gaugeTime(service usage.GUID, kind usage.ActivityKind, day int, t time.Time) time.Time {
	k := gaugeOf{service, kind}
	switch g.R.IntN(4) {
	case 0:
		if prev, ok := g.lastGauge[k]; ok {
			t = prev
		}
	case 1:
		t = g.Start.AddDate(0, 0, day+1).Add(-time.Second)
	}
	g.lastGauge[k] = t
	return t
}

// actor returns a user of c to act on day: never Users[1] before the last
// third of the days, and never Users[0] when the act is a user event.
func (g *ActivityGen) actor(c *ServiceCast, day int, userEvent bool) usage.GUID {
	for {
		i := g.R.IntN(len(c.Users))
		if i == 0 && userEvent || i == 1 && day < g.Days*2/3 {
			continue
		}
		return c.Users[i]
	}
}

var (
	firstNames = []string{"Ada", "Grace", "Édith", "Linus"}
	lastNames  = []string{"Lovelace", "Hopper", "Piaf", "Torvalds"}
	groupNames = []string{"Sales", "Support", "Direction générale"}
)

// userEvent makes a into an event about one user's account: any type, each
// detail set now and then (a status or group type that changes, a field left
// empty to keep the earlier value), and an inviter on most invited and
// registered events and a few others, where it counts for nothing.
func (g *ActivityGen) userEvent(c *ServiceCast, day int, a *usage.Activity) {
	r := g.R
	a.Kind = usage.ActivityUser
	a.User = g.actor(c, day, true)
	a.UserEvent = usage.UserEvent(1 + r.IntN(6))
	k := [2]usage.GUID{c.GUID, a.User}
	if prev, ok := g.lastEvent[k]; ok && r.IntN(5) == 0 {
		a.Time = prev // a tie in time: (Time, ID) order decides
	}
	g.lastEvent[k] = a.Time
	pick := func(from []string) string {
		if r.IntN(3) == 0 {
			return from[r.IntN(len(from))]
		}
		return ""
	}
	if r.IntN(2) == 0 {
		a.Email = fmt.Sprintf("%s.%d@example.com", a.User.String()[:6], r.IntN(3))
	}
	a.FirstName, a.LastName, a.GroupName = pick(firstNames), pick(lastNames), pick(groupNames)
	if r.IntN(5) == 0 {
		a.Status = usage.UserStatus(1 + r.IntN(2))
	}
	if r.IntN(4) == 0 {
		a.GroupType = usage.UserGroupType(1 + r.IntN(2))
	}
	if r.IntN(4) == 0 {
		a.GroupGUID = g.groups[r.IntN(len(g.groups))]
	}
	inviting := a.UserEvent == usage.UserInvited || a.UserEvent == usage.UserRegistered
	if inviting && r.IntN(3) != 0 || !inviting && r.IntN(10) == 0 {
		all := slices.Concat(c.Users, c.Outsiders)
		a.InvitedBy = all[r.IntN(len(all))]
	}
}

// ActivityOracle keeps the activity a store must have accepted, as decided
// by the contract of store.ActivityAppender, and answers ServiceTotals
// and ServiceUsers by brute force over it. It shares no code with any
// backend, nor with the counting rules of package usage (usage.Activity.Tally,
// usage.UserUsage.ApplyAccount and the others).
type ActivityOracle struct {
	recorded map[serviceID]time.Time // the latest event time recorded with each id
	accepted map[usage.GUID][]usage.Activity
	sorted   map[usage.GUID]bool // whether accepted[service] is in (Time, ID) order
}

type serviceID struct {
	service usage.GUID
	id      string
}

// NewActivityOracle returns an oracle that has seen no activity.
func NewActivityOracle() *ActivityOracle {
	return &ActivityOracle{recorded: map[serviceID]time.Time{}, accepted: map[usage.GUID][]usage.Activity{}, sorted: map[usage.GUID]bool{}}
}

// Append offers one AppendActivity call and returns the outcomes a store
// must report: Duplicate for an id recorded for the service with a time at
// or after dedupeFrom, or earlier in the call; Accepted for the others,
// which are recorded.
func (o *ActivityOracle) Append(service usage.GUID, batch []usage.Activity, dedupeFrom time.Time) []usage.Outcome {
	outs := make([]usage.Outcome, len(batch))
	inCall := map[string]bool{}
	for i, a := range batch {
		k := serviceID{service, a.ID}
		t, ok := o.recorded[k]
		if inCall[a.ID] || ok && !t.Before(dedupeFrom) {
			outs[i] = usage.Duplicate
			continue
		}
		inCall[a.ID] = true
		if !ok || a.Time.After(t) {
			o.recorded[k] = a.Time
		}
		a.Recipients = slices.Clone(a.Recipients)
		o.accepted[service] = append(o.accepted[service], a)
		o.sorted[service] = false
	}
	return outs
}

// events returns the accepted events of service in (Time, ID) order.
func (o *ActivityOracle) events(service usage.GUID) []usage.Activity {
	evs := o.accepted[service]
	if !o.sorted[service] {
		slices.SortStableFunc(evs, func(a, b usage.Activity) int {
			return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
		})
		o.sorted[service] = true
	}
	return evs
}

// Totals returns what ServiceTotals must report for service over [from, to).
func (o *ActivityOracle) Totals(service usage.GUID, from, to time.Time) usage.ServiceTotals {
	var tot usage.ServiceTotals
	if a := o.LatestGauge(service, usage.ActivityUsers, to); a != nil {
		tot.Users = a.Users
	}
	if a := o.LatestGauge(service, usage.ActivityStorage, to); a != nil {
		tot.StorageBytes = a.StorageBytes
	}
	for _, a := range o.accepted[service] {
		if a.Time.Before(from) || !a.Time.Before(to) {
			continue
		}
		switch a.Kind {
		case usage.ActivityMessage:
			tot.Messages++
			tot.Attachments += a.Attachments
		case usage.ActivityFeature:
			tot.Features[a.Feature-1]++
		}
	}
	return tot
}

// LatestGauge returns the report of a gauge (kind ActivityUsers or
// ActivityStorage) that stands at to: the latest accepted before to, of
// those at the same time the one with the greatest ID; nil when there is
// none.
func (o *ActivityOracle) LatestGauge(service usage.GUID, kind usage.ActivityKind, to time.Time) *usage.Activity {
	var latest *usage.Activity
	evs := o.accepted[service]
	for i := range evs {
		a := &evs[i]
		if a.Kind != kind || !a.Time.Before(to) {
			continue
		}
		if latest == nil || a.Time.After(latest.Time) || a.Time.Equal(latest.Time) && a.ID > latest.ID {
			latest = a
		}
	}
	return latest
}

// gaugeTied reports whether the report of a gauge standing at to shares its
// time with another report: whether the tie rule decided it.
func (o *ActivityOracle) gaugeTied(service usage.GUID, kind usage.ActivityKind, to time.Time) bool {
	latest := o.LatestGauge(service, kind, to)
	if latest == nil {
		return false
	}
	for _, a := range o.accepted[service] {
		if a.Kind == kind && a.ID != latest.ID && a.Time.Equal(latest.Time) {
			return true
		}
	}
	return false
}

// Users returns what ServiceUsers must report for service over [from, to),
// for every user or, when only is not zero, for that one.
//
// The rules, from the contract: a user is listed once an accepted event
// before to names them (a user event about them, a message they sent, a
// feature they used). Their account is folded from their user events before
// to in (Time, ID) order: a detail an event carries replaces the earlier one,
// an empty or zero one leaves it; then the event's type applies (the first
// created and registered events give CreatedOn and RegisteredOn, a login
// gives LastLogin, disabled and enabled set the status, an invited event
// naming an inviter sets InvitedBy); the status is Active when no event set
// one. InvitedByEmail is the inviter's email by the same fold. The "latest"
// times are over everything before to: LastMsgSent the messages they sent,
// LastMsgRetrieved the messages they received, LastActivity their logins,
// registrations, messages sent and features used. The sums are over events
// in [from, to): messages sent with their attachments and bytes, messages
// received, and the invited and registered events naming them as inviter.
func (o *ActivityOracle) Users(service usage.GUID, from, to time.Time, only usage.GUID) []usage.UserUsage {
	acc := map[usage.GUID]*usage.UserUsage{}
	named := map[usage.GUID]bool{}
	userEvents := map[usage.GUID][]usage.Activity{} // in (Time, ID) order
	user := func(g usage.GUID) *usage.UserUsage {
		u := acc[g]
		if u == nil {
			u = &usage.UserUsage{User: g}
			acc[g] = u
		}
		return u
	}
	latest := func(t *time.Time, v time.Time) {
		if v.After(*t) {
			*t = v
		}
	}
	for _, a := range o.events(service) {
		if !a.Time.Before(to) {
			break // events are in time order
		}
		inPeriod := !a.Time.Before(from)
		switch a.Kind {
		case usage.ActivityMessage:
			named[a.User] = true
			u := user(a.User)
			latest(&u.LastMsgSent, a.Time)
			latest(&u.LastActivity, a.Time)
			if inPeriod {
				u.MessagesSent++
				u.AttachmentsCount += a.Attachments
				u.AttachmentsSize += a.AttachmentBytes
			}
			for _, r := range a.Recipients {
				rcpt := user(r)
				latest(&rcpt.LastMsgRetrieved, a.Time)
				if inPeriod {
					rcpt.MessagesReceived++
				}
			}
		case usage.ActivityFeature:
			named[a.User] = true
			latest(&user(a.User).LastActivity, a.Time)
		case usage.ActivityUser:
			named[a.User] = true
			u := user(a.User)
			userEvents[a.User] = append(userEvents[a.User], a)
			if a.UserEvent == usage.UserLogin || a.UserEvent == usage.UserRegistered {
				latest(&u.LastActivity, a.Time)
			}
			if inPeriod && !a.InvitedBy.IsZero() {
				switch a.UserEvent {
				case usage.UserInvited:
					user(a.InvitedBy).InvitationsSent++
				case usage.UserRegistered:
					user(a.InvitedBy).InvitationsAccepted++
				}
			}
		}
	}
	var out []usage.UserUsage
	for g := range named {
		if !only.IsZero() && g != only {
			continue
		}
		u := *acc[g]
		setAccount(&u, userEvents[g])
		if !u.InvitedBy.IsZero() {
			var inviter usage.UserUsage
			setAccount(&inviter, userEvents[u.InvitedBy])
			u.InvitedByEmail = inviter.Email
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b usage.UserUsage) int { return bytes.Compare(a.User[:], b.User[:]) })
	return out
}

// setAccount sets the account details of u from its user events evs, in
// (Time, ID) order, each detail by its own rule rather than by folding the
// events one by one: a text or GUID detail, or the group type, is the one of
// the latest event that carries it; the status is set by the latest event
// that sets one (a disabled or enabled event sets its own, whatever status
// it carries), Active when none does; CreatedOn and RegisteredOn are the
// times of the first created and registered events, LastLogin the time of
// the latest login, InvitedBy the inviter of the latest invited event that
// names one. The hand-computed cases of testAccounts pin these rules
// independently of this oracle.
func setAccount(u *usage.UserUsage, evs []usage.Activity) {
	latest := func(has func(a *usage.Activity) bool) *usage.Activity {
		for i := len(evs) - 1; i >= 0; i-- {
			if has(&evs[i]) {
				return &evs[i]
			}
		}
		return nil
	}
	first := func(e usage.UserEvent) time.Time {
		for _, a := range evs {
			if a.UserEvent == e {
				return a.Time
			}
		}
		return time.Time{}
	}
	text := func(field func(a *usage.Activity) string) string {
		if a := latest(func(a *usage.Activity) bool { return field(a) != "" }); a != nil {
			return field(a)
		}
		return ""
	}
	u.Email = text(func(a *usage.Activity) string { return a.Email })
	u.FirstName = text(func(a *usage.Activity) string { return a.FirstName })
	u.LastName = text(func(a *usage.Activity) string { return a.LastName })
	u.GroupName = text(func(a *usage.Activity) string { return a.GroupName })
	if a := latest(func(a *usage.Activity) bool { return a.GroupType != 0 }); a != nil {
		u.GroupType = a.GroupType
	}
	if a := latest(func(a *usage.Activity) bool { return !a.GroupGUID.IsZero() }); a != nil {
		u.GroupGUID = a.GroupGUID
	}
	u.Status = usage.UserActive
	if a := latest(func(a *usage.Activity) bool {
		return a.Status != 0 || a.UserEvent == usage.UserDisabled || a.UserEvent == usage.UserEnabled
	}); a != nil {
		switch a.UserEvent {
		case usage.UserDisabled:
			u.Status = usage.UserDisabledStatus
		case usage.UserEnabled:
			u.Status = usage.UserActive
		default:
			u.Status = a.Status
		}
	}
	u.CreatedOn = first(usage.UserCreated)
	u.RegisteredOn = first(usage.UserRegistered)
	if a := latest(func(a *usage.Activity) bool { return a.UserEvent == usage.UserLogin }); a != nil {
		u.LastLogin = a.Time
	}
	if a := latest(func(a *usage.Activity) bool { return a.UserEvent == usage.UserInvited && !a.InvitedBy.IsZero() }); a != nil {
		u.InvitedBy = a.InvitedBy
	}
}

// span is a report's range [from, to), both midnight UTC.
type span struct{ from, to time.Time }

func (s span) String() string {
	return fmt.Sprintf("[%s, %s)", s.from.Format(time.DateOnly), s.to.Format(time.DateOnly))
}

// reportSpans returns the ranges to check reports over: every day of g's
// activity and one either side (the day before any data, and the quiet day
// among them), every month it touches and one either side, the whole span
// and a few random runs of days.
func reportSpans(g *ActivityGen) []span {
	var spans []span
	for d := -1; d <= g.Days; d++ {
		p := usage.PeriodOf(usage.Daily, g.Start.AddDate(0, 0, d))
		spans = append(spans, span{p.Start, p.End()})
	}
	last := g.Start.AddDate(0, 0, g.Days)
	month := usage.PeriodOf(usage.Monthly, g.Start.AddDate(0, -1, 0))
	for !month.Start.After(last.AddDate(0, 1, 0)) {
		spans = append(spans, span{month.Start, month.End()})
		month = usage.PeriodOf(usage.Monthly, month.End())
	}
	spans = append(spans, span{g.Start.AddDate(0, 0, -2), last.AddDate(0, 0, 2)})
	r := rand.New(rand.NewPCG(uint64(g.Days), 11))
	for range 6 {
		from := r.IntN(g.Days)
		spans = append(spans, span{g.Start.AddDate(0, 0, from), g.Start.AddDate(0, 0, from+1+r.IntN(g.Days-from))})
	}
	return spans
}

// appendActivity appends batches of g's activity, of random sizes and
// services, until n events are generated, checking every outcome against
// the oracle. It returns the calls made and their outcomes.
func appendActivity(t *testing.T, s store.Usage, o *ActivityOracle, g *ActivityGen, n int) ([]activityCall, [][]usage.Outcome) {
	t.Helper()
	var (
		calls []activityCall
		outs  [][]usage.Outcome
	)
	for n > 0 {
		i := g.R.IntN(len(g.Casts))
		c := activityCall{service: g.Casts[i].GUID, batch: g.Batch(i, min(n, 1+g.R.IntN(200)))}
		n -= len(c.batch)
		calls = append(calls, c)
		outs = append(outs, appendCall(t, s, o, c, longAgo))
	}
	return calls, outs
}

// activityCall is one AppendActivity call.
type activityCall struct {
	service usage.GUID
	batch   []usage.Activity
}

// appendCall makes one AppendActivity call, checking every outcome against
// the oracle.
func appendCall(t *testing.T, s store.Usage, o *ActivityOracle, c activityCall, dedupeFrom time.Time) []usage.Outcome {
	t.Helper()
	want := o.Append(c.service, c.batch, dedupeFrom)
	got, err := s.AppendActivity(t.Context(), c.service, c.batch, dedupeFrom)
	if err != nil {
		t.Fatalf("AppendActivity(%s, %d events): %v", c.service, len(c.batch), err)
	}
	if len(got) != len(want) {
		t.Fatalf("AppendActivity(%s, %d events) = %d outcomes", c.service, len(c.batch), len(got))
	}
	for i := range got {
		if got[i] != want[i] {
			a := c.batch[i]
			t.Fatalf("AppendActivity(%s): event %d of %d (id %q, %s at %s) is %v, want %v",
				c.service, i, len(c.batch), a.ID, a.Kind, showTime(a.Time), outcomeName(got[i]), outcomeName(want[i]))
		}
	}
	return got
}

func outcomeName(o usage.Outcome) string {
	if o == usage.Duplicate {
		return "Duplicate"
	}
	return "Accepted"
}

func outcomeNames(outs []usage.Outcome) []string {
	names := make([]string, len(outs))
	for i, o := range outs {
		names[i] = outcomeName(o)
	}
	return names
}

// CheckReports compares the reports of s on every service of g, and on one
// without activity, with the oracle's: ServiceSeries (see checkSeries), and
// ServiceTotals and ServiceUsers over every span of reportSpans.
// ServiceUsers is asked for every user and, in turn over the spans, for
// single users of the service, of other services, outsiders and strangers.
// s holds the activity that o accepted, however it got there.
func CheckReports(t *testing.T, s store.Usage, o *ActivityOracle, g *ActivityGen) {
	t.Helper()
	services := []usage.GUID{usage.GUID{0xee, 1}} // no activity
	onlies := []usage.GUID{usage.GUID{0xee, 2}}   // nobody anywhere
	for _, c := range g.Casts {
		services = append(services, c.GUID)
		onlies = append(onlies, c.Users...)
		onlies = append(onlies, c.Outsiders...)
	}
	spans := reportSpans(g)
	for _, svc := range services {
		checkSeries(t, s, o, g, svc)
		for i, sp := range spans {
			checkTotals(t, s, o, svc, sp)
			checkUsers(t, s, o, svc, sp, usage.GUID{})
			checkUsers(t, s, o, svc, sp, onlies[i%len(onlies)])
			checkUsers(t, s, o, svc, sp, onlies[(i+len(onlies)/2)%len(onlies)])
		}
	}
}

func checkTotals(t *testing.T, s store.Usage, o *ActivityOracle, service usage.GUID, sp span) {
	t.Helper()
	got, err := s.ServiceTotals(t.Context(), service, sp.from, sp.to)
	if err != nil {
		t.Fatalf("ServiceTotals(%s, %v): %v", service, sp, err)
	}
	if d := firstDiff(got, o.Totals(service, sp.from, sp.to)); d != "" {
		t.Fatalf("ServiceTotals(%s, %v): %s", service, sp, d)
	}
}

// checkSeries compares ServiceSeries of service with the oracle's Totals of
// each of its periods: the days from two before g's activity to two after
// it, the months from the one before it to the one after it, the second
// half of its days and its last month (whose gauges start from reports
// before them), and an empty series; and that ranges that do not start
// and end periods are refused.
func checkSeries(t *testing.T, s store.Usage, o *ActivityOracle, g *ActivityGen, service usage.GUID) {
	t.Helper()
	last := g.Start.AddDate(0, 0, g.Days)
	for _, c := range []struct {
		step     usage.PeriodType
		from, to time.Time
	}{
		{usage.Daily, g.Start.AddDate(0, 0, -2), last.AddDate(0, 0, 2)},
		{usage.Monthly, usage.PeriodOf(usage.Monthly, g.Start).Start.AddDate(0, -1, 0), usage.PeriodOf(usage.Monthly, last).Start.AddDate(0, 2, 0)},
		{usage.Daily, g.Start.AddDate(0, 0, g.Days/2), last},
		{usage.Monthly, usage.PeriodOf(usage.Monthly, last).Start, usage.PeriodOf(usage.Monthly, last).Start.AddDate(0, 1, 0)},
		{usage.Daily, g.Start, g.Start},
	} {
		got, err := s.ServiceSeries(t.Context(), service, c.from, c.to, c.step)
		if err != nil {
			t.Fatalf("ServiceSeries(%s, %s, %s, %s): %v", service, showTime(c.from), showTime(c.to), c.step, err)
		}
		var want []usage.ServiceTotals
		for p := usage.PeriodOf(c.step, c.from); p.Start.Before(c.to); p = usage.PeriodOf(c.step, p.End()) {
			want = append(want, o.Totals(service, p.Start, p.End()))
		}
		if len(got) != len(want) {
			t.Fatalf("ServiceSeries(%s, %s, %s, %s) = %d periods, want %d", service, showTime(c.from), showTime(c.to), c.step, len(got), len(want))
		}
		for i := range got {
			if d := firstDiff(got[i], want[i]); d != "" {
				t.Fatalf("ServiceSeries(%s, %s, %s, %s): period %d: %s", service, showTime(c.from), showTime(c.to), c.step, i, d)
			}
		}
	}
	for _, bad := range []struct{ from, to time.Time }{
		{g.Start.Add(time.Hour), last},
		{last, g.Start},
	} {
		if _, err := s.ServiceSeries(t.Context(), service, bad.from, bad.to, usage.Daily); usage.KindOf(err) != usage.KindInvalid {
			t.Fatalf("ServiceSeries(%s, %s, %s, Daily) = %v, want an invalid-argument error", service, showTime(bad.from), showTime(bad.to), err)
		}
	}
}

func checkUsers(t *testing.T, s store.Usage, o *ActivityOracle, service usage.GUID, sp span, only usage.GUID) {
	t.Helper()
	got, err := s.ServiceUsers(t.Context(), service, sp.from, sp.to, only)
	if err != nil {
		t.Fatalf("ServiceUsers(%s, %v, only %s): %v", service, sp, only, err)
	}
	if d := diffUsers(got, o.Users(service, sp.from, sp.to, only)); d != "" {
		t.Fatalf("ServiceUsers(%s, %v, only %s): %s", service, sp, only, d)
	}
}

// diffUsers reports the first difference between two user lists, or "".
func diffUsers(got, want []usage.UserUsage) string {
	has := func(list []usage.UserUsage, g usage.GUID) bool {
		return slices.ContainsFunc(list, func(u usage.UserUsage) bool { return u.User == g })
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i < len(got) && i < len(want) && got[i].User != want[i].User && has(want, got[i].User) && has(got, want[i].User):
			return fmt.Sprintf("user %d is %s, want %s: users are not ordered by GUID", i, got[i].User, want[i].User)
		case i >= len(got) || i < len(want) && bytes.Compare(want[i].User[:], got[i].User[:]) < 0:
			return fmt.Sprintf("%d users, want %d: %s is missing", len(got), len(want), want[i].User)
		case i >= len(want) || got[i].User != want[i].User:
			return fmt.Sprintf("%d users, want %d: %s is not expected", len(got), len(want), got[i].User)
		}
		if d := firstDiff(got[i], want[i]); d != "" {
			return fmt.Sprintf("user %s: %s", got[i].User, d)
		}
	}
	return ""
}

var (
	timeType = reflect.TypeFor[time.Time]()
	guidType = reflect.TypeFor[usage.GUID]()
)

// firstDiff names the first field where got and want differ, with both
// values, or returns "" when they are alike. Times are alike when they are
// the same instant, whatever their zones; a zero time is alike only to a
// zero time.
func firstDiff(got, want any) string {
	return diffValue(reflect.ValueOf(got), reflect.ValueOf(want), reflect.TypeOf(got).Name())
}

func diffValue(g, w reflect.Value, path string) string {
	switch {
	case g.Type() == timeType:
		gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
		if gt.IsZero() != wt.IsZero() || !gt.Equal(wt) {
			return fmt.Sprintf("%s is %s, want %s", path, showTime(gt), showTime(wt))
		}
		return ""
	case g.Type() == guidType:
		if gg, wg := g.Interface().(usage.GUID), w.Interface().(usage.GUID); gg != wg {
			return fmt.Sprintf("%s is %s, want %s", path, gg, wg)
		}
		return ""
	case g.Kind() == reflect.Array && g.Type().Elem().Kind() == reflect.Uint8:
		if !reflect.DeepEqual(g.Interface(), w.Interface()) {
			gb, wb := make([]byte, g.Len()), make([]byte, w.Len())
			reflect.Copy(reflect.ValueOf(gb), g)
			reflect.Copy(reflect.ValueOf(wb), w)
			return fmt.Sprintf("%s is %s, want %s", path, hex.EncodeToString(gb), hex.EncodeToString(wb))
		}
		return ""
	case g.Kind() == reflect.Struct:
		for i := range g.NumField() {
			if d := diffValue(g.Field(i), w.Field(i), path+"."+g.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case g.Kind() == reflect.Array:
		for i := range g.Len() {
			if d := diffValue(g.Index(i), w.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(g.Interface(), w.Interface()) {
		format := "%s is %v, want %v" // enums by their names
		if g.Kind() == reflect.String {
			format = "%s is %q, want %q"
		}
		return fmt.Sprintf(format, path, g.Interface(), w.Interface())
	}
	return ""
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// activityCoverage counts what the generated activity exercised, so that a
// change to the generator cannot quietly leave a rule unchecked.
type activityCoverage struct {
	dupInCall, dupAcrossCalls, sameIDOtherService, gaugeTies int
}

func (c *activityCoverage) count(calls []activityCall, outs [][]usage.Outcome) {
	services := map[string]map[usage.GUID]bool{} // id → services that accepted it
	for i, call := range calls {
		inCall := map[string]bool{}
		for j, a := range call.batch {
			switch {
			case outs[i][j] == usage.Accepted:
				if len(services[a.ID]) > 0 && !services[a.ID][call.service] {
					c.sameIDOtherService++
				}
				if services[a.ID] == nil {
					services[a.ID] = map[usage.GUID]bool{}
				}
				services[a.ID][call.service] = true
			case inCall[a.ID]:
				c.dupInCall++
			default:
				c.dupAcrossCalls++
			}
			inCall[a.ID] = true
		}
	}
}

func (c *activityCoverage) check(t *testing.T) {
	t.Helper()
	for name, n := range map[string]int{
		"duplicates within a call": c.dupInCall, "duplicates across calls": c.dupAcrossCalls,
		"ids accepted in a second service": c.sameIDOtherService, "gauge reports decided by a tie": c.gaugeTies,
	} {
		if n == 0 {
			t.Fatalf("the generated activity has no %s: the suite would not check them", name)
		}
	}
}

func testActivityOracle(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	g := NewActivityGen(1)
	o := NewActivityOracle()
	CheckReports(t, s, o, g) // an empty store reports nothing
	calls, outs := appendActivity(t, s, o, g, 8000)
	var cov activityCoverage
	cov.count(calls, outs)
	for _, c := range g.Casts {
		for _, sp := range reportSpans(g) {
			for _, k := range []usage.ActivityKind{usage.ActivityUsers, usage.ActivityStorage} {
				if o.gaugeTied(c.GUID, k, sp.to) {
					cov.gaugeTies++
				}
			}
		}
	}
	cov.check(t)
	CheckReports(t, s, o, g)
}

// serviceRegistry is what the Services registry holds.
type serviceRegistry struct {
	partners    []usage.Partner
	resellers   []usage.Reseller
	collections []usage.Collection
	services    []usage.Service
	keys        []usage.APIKey
}

// sampleRegistry returns a registry with every field of every record set
// somewhere and left zero elsewhere: times with nanoseconds in a zone other
// than UTC, zero optional times and GUIDs, empty contact and company,
// non-ASCII text, every service status and every scope kind.
func sampleRegistry(g *ActivityGen) serviceRegistry {
	zone := time.FixedZone("UTC-7", -7*3600)
	at := func(days int) time.Time {
		return time.Date(2025, 11, 2, 9, 30, 15, 123456789, zone).AddDate(0, 0, days)
	}
	var reg serviceRegistry
	for i := range 3 {
		p := usage.Partner{GUID: g.GUID(), Name: fmt.Sprintf("Partner %d — Σ", i), Created: at(i)}
		if i == 2 {
			p.Created = time.Time{}
		}
		reg.partners = append(reg.partners, p)
		reg.resellers = append(reg.resellers, usage.Reseller{GUID: g.GUID(), PartnerGUID: p.GUID, Name: fmt.Sprintf("Reseller %d", i), Created: at(10 + i)})
	}
	reg.collections = []usage.Collection{
		{GUID: g.GUID(), Name: "Collection", SiteGUID: g.GUID(), SiteName: "Site ü", PartnerGUID: reg.partners[0].GUID, Created: at(20)},
		{GUID: g.GUID(), Name: "Bare collection"},
	}
	for i, st := range usage.ServiceStatuses {
		sv := usage.Service{
			GUID: g.GUID(), Name: fmt.Sprintf("Service %d «%s»", i, st), Status: st,
			PartnerGUID: reg.partners[i%3].GUID, ResellerGUID: reg.resellers[i%3].GUID,
			CreatedOn: at(30 + i),
		}
		if i%2 == 0 { // every optional field set
			sv.ServiceCode = fmt.Sprintf("SC-%03d", i)
			sv.ReferenceID = strings.Repeat("r", usage.MaxReferenceIDLen)
			sv.PrimaryDomain = fmt.Sprintf("s%d.example.com", i)
			sv.TrialEndDate, sv.EffectiveDate = at(60+i), at(45+i).UTC()
			sv.InitialTerm = 12 * (i + 1)
			sv.CollectionGUID, sv.ClientGUID = reg.collections[0].GUID, g.GUID()
			sv.Contact = usage.Contact{Name: "Zoë Contact", Email: "zoe@example.com", PhoneNumber: "+1 555 0100"}
			sv.Company = usage.Company{Name: "Acme, Inc.", Address: "1 Main St", City: "Springfield", StateProvince: "IL",
				PostalCode: "62701", Country: "US", Website: "https://acme.example"}
		}
		reg.services = append(reg.services, sv)
	}
	for i, kind := range []usage.ScopeKind{usage.ScopePartner, usage.ScopeReseller, usage.ScopeService, usage.ScopeService} {
		k := usage.APIKey{Name: fmt.Sprintf("key %d", i), Scope: usage.Scope{Kind: kind}, Created: at(50 + i)}
		d1, d2 := g.GUID(), g.GUID()
		copy(k.Digest[:16], d1[:])
		copy(k.Digest[16:], d2[:])
		switch kind {
		case usage.ScopePartner:
			k.Scope.GUID = reg.partners[1].GUID
		case usage.ScopeReseller:
			k.Scope.GUID = reg.resellers[2].GUID
		default:
			k.Scope.GUID = reg.services[i].GUID
		}
		reg.keys = append(reg.keys, k)
	}
	reg.keys[3].Name = ""
	return reg
}

// put stores every record of reg.
func (reg *serviceRegistry) put(t *testing.T, s store.ServiceRegistry) {
	t.Helper()
	c := t.Context()
	for _, p := range reg.partners {
		must(t, "PutPartner", s.PutPartner(c, p))
	}
	for _, r := range reg.resellers {
		must(t, "PutReseller", s.PutReseller(c, r))
	}
	for _, col := range reg.collections {
		must(t, "PutCollection", s.PutCollection(c, col))
	}
	for _, sv := range reg.services {
		must(t, "PutService", s.PutService(c, sv))
	}
	for _, k := range reg.keys {
		must(t, "PutAPIKey", s.PutAPIKey(c, k))
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// check compares every list of the store's registry with reg. The contract
// gives the lists no order, so both sides are sorted first.
func (reg *serviceRegistry) check(t *testing.T, s store.ServiceRegistry) {
	t.Helper()
	c := t.Context()
	guid := func(g usage.GUID) string { return g.String() }
	partners, err := s.Partners(c)
	checkList(t, "Partners", partners, err, reg.partners, func(p usage.Partner) string { return guid(p.GUID) })
	resellers, err := s.Resellers(c)
	checkList(t, "Resellers", resellers, err, reg.resellers, func(r usage.Reseller) string { return guid(r.GUID) })
	collections, err := s.Collections(c)
	checkList(t, "Collections", collections, err, reg.collections, func(col usage.Collection) string { return guid(col.GUID) })
	services, err := s.Services(c)
	checkList(t, "Services", services, err, reg.services, func(sv usage.Service) string { return guid(sv.GUID) })
	keys, err := s.APIKeys(c)
	checkList(t, "APIKeys", keys, err, reg.keys, func(k usage.APIKey) string { return hex.EncodeToString(k.Digest[:]) })
}

// checkList compares the records got, sorted by key, with want.
func checkList[T any](t *testing.T, what string, got []T, err error, want []T, key func(T) string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	byKey := func(a, b T) int { return strings.Compare(key(a), key(b)) }
	got, want = slices.SortedFunc(slices.Values(got), byKey), slices.SortedFunc(slices.Values(want), byKey)
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got) || i < len(want) && key(want[i]) < key(got[i]):
			t.Fatalf("%s: %d records, want %d: %s is missing", what, len(got), len(want), key(want[i]))
		case i >= len(want) || key(got[i]) < key(want[i]):
			t.Fatalf("%s: %d records, want %d: %s is not expected", what, len(got), len(want), key(got[i]))
		}
		if d := firstDiff(got[i], want[i]); d != "" {
			t.Fatalf("%s: %s: %s", what, key(got[i]), d)
		}
	}
}

// change replaces a record of each kind by GUID (by digest for keys), every
// field but the identifier changed, and deletes one key.
func (reg *serviceRegistry) change(t *testing.T, s store.ServiceRegistry, g *ActivityGen) {
	t.Helper()
	c := t.Context()
	later := time.Date(2026, 1, 5, 0, 0, 0, 1, time.UTC)
	p := &reg.partners[0]
	p.Name, p.Created = "Renamed partner", later
	r := &reg.resellers[1]
	r.PartnerGUID, r.Name, r.Created = reg.partners[2].GUID, "Renamed reseller", time.Time{}
	col := &reg.collections[1]
	col.Name, col.SiteGUID, col.SiteName, col.PartnerGUID, col.Created = "Filled collection", g.GUID(), "Site", reg.partners[1].GUID, later
	// A full service emptied and an empty one filled: no field survives
	// from the record replaced.
	full, bare := reg.services[0], reg.services[1]
	full.GUID, bare.GUID = bare.GUID, full.GUID
	full.Status, bare.Status = bare.Status, full.Status
	reg.services[0], reg.services[1] = bare, full
	k := &reg.keys[0]
	k.Name, k.Scope, k.Created = "renamed key", usage.Scope{Kind: usage.ScopeService, GUID: reg.services[5].GUID}, later
	must(t, "PutPartner", s.PutPartner(c, *p))
	must(t, "PutReseller", s.PutReseller(c, *r))
	must(t, "PutCollection", s.PutCollection(c, *col))
	must(t, "PutService", s.PutService(c, reg.services[0]))
	must(t, "PutService", s.PutService(c, reg.services[1]))
	must(t, "PutAPIKey", s.PutAPIKey(c, *k))

	gone := reg.keys[2]
	must(t, "DeleteAPIKey", s.DeleteAPIKey(c, gone.Digest))
	reg.keys = slices.Delete(reg.keys, 2, 3)
	if err := s.DeleteAPIKey(c, gone.Digest); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("DeleteAPIKey of a deleted key: %v, want not found", err)
	}
}

func testServiceRegistry(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	defer s.Close()
	g := NewActivityGen(2)
	var reg serviceRegistry
	reg.check(t, s) // an empty store lists nothing
	if err := s.DeleteAPIKey(t.Context(), [32]byte{1}); usage.KindOf(err) != usage.KindNotFound {
		t.Fatalf("DeleteAPIKey of a missing key: %v, want not found", err)
	}
	reg = sampleRegistry(g)
	reg.put(t, s)
	reg.check(t, s)
	reg.put(t, s) // putting the same records again changes nothing
	reg.check(t, s)
	reg.change(t, s, g)
	reg.check(t, s)
}

func testServiceRegistryReopen(t *testing.T, b MetadataBackend) {
	s := b.Open(t)
	g := NewActivityGen(3)
	reg := sampleRegistry(g)
	reg.put(t, s)
	s = b.Reopen(t, s)
	reg.check(t, s)
	// Replacements and deletions after a reopen last too.
	reg.change(t, s, g)
	s = b.Reopen(t, s)
	defer s.Close()
	reg.check(t, s)
}

// message returns a message activity with id at t from user.
func message(id string, t time.Time, from usage.GUID, to ...usage.GUID) usage.Activity {
	return usage.Activity{ID: id, Time: t, Kind: usage.ActivityMessage, User: from, Recipients: to, Attachments: 1, AttachmentBytes: 100}
}

// testActivityDedupeWindow checks, step by step, that an id recorded with
// time T is a duplicate when sent again with a window starting at or before
// T, and accepted and counted again when the window starts after T. Window
// starts are hours away from T: as with API events, a backend may keep the
// times of its dedupe records to the hour.
func testActivityDedupeWindow(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	svc, u := usage.GUID{1}, usage.GUID{2}
	at := base.Add(5*24*time.Hour + 30*time.Minute)
	later := at.Add(10 * 24 * time.Hour)
	o := NewActivityOracle()
	steps := []struct {
		batch []usage.Activity
		from  time.Time
		want  []usage.Outcome
	}{
		{[]usage.Activity{message("x", at, u)}, at.Add(-time.Hour), []usage.Outcome{usage.Accepted}},
		{[]usage.Activity{message("x", at, u)}, at.Add(-time.Hour), []usage.Outcome{usage.Duplicate}},
		{[]usage.Activity{message("x", at, u)}, at, []usage.Outcome{usage.Duplicate}},                       // the window includes its start
		{[]usage.Activity{message("x", later, u)}, at.Add(-time.Hour), []usage.Outcome{usage.Duplicate}},    // same id, other time: the same event
		{[]usage.Activity{message("x", later, u)}, at.Add(2 * time.Hour), []usage.Outcome{usage.Accepted}},  // the first record left the window
		{[]usage.Activity{message("x", later, u)}, at.Add(2 * time.Hour), []usage.Outcome{usage.Duplicate}}, // and the new one is kept
		{[]usage.Activity{message("x", at, u)}, at.Add(-time.Hour), []usage.Outcome{usage.Duplicate}},
		// An id earlier in the same call is a duplicate, whatever the window.
		{[]usage.Activity{message("y", at, u), message("y", at, u)}, at.Add(2 * time.Hour), []usage.Outcome{usage.Accepted, usage.Duplicate}},
		{[]usage.Activity{message("y", at, u)}, at.Add(2 * time.Hour), []usage.Outcome{usage.Accepted}},
	}
	for i, st := range steps {
		if want := o.Append(svc, st.batch, st.from); !slices.Equal(want, st.want) {
			t.Fatalf("step %d: the oracle says %v, the step %v", i, outcomeNames(want), outcomeNames(st.want)) // a bug in the suite
		}
		got, err := s.AppendActivity(t.Context(), svc, st.batch, st.from)
		if err != nil || !slices.Equal(got, st.want) {
			t.Fatalf("step %d: AppendActivity(%d × %q at %s, window from %s) = %v, %v; want %v",
				i, len(st.batch), st.batch[0].ID, showTime(st.batch[0].Time), showTime(st.from), outcomeNames(got), err, outcomeNames(st.want))
		}
	}
	// Every accepted message counts: x twice, y twice, and no duplicate.
	day := func(t time.Time) span { p := usage.PeriodOf(usage.Daily, t); return span{p.Start, p.End()} }
	for _, c := range []struct {
		sp   span
		want int64
	}{{day(at), 3}, {day(later), 1}, {span{day(at).from, day(later).to}, 4}} {
		got, err := s.ServiceTotals(t.Context(), svc, c.sp.from, c.sp.to)
		if err != nil || got.Messages != c.want || got.Attachments != c.want {
			t.Fatalf("ServiceTotals(%v) = %+v, %v; want %d messages and attachments", c.sp, got, err, c.want)
		}
		checkTotals(t, s, o, svc, c.sp)
		checkUsers(t, s, o, svc, c.sp, usage.GUID{})
	}
}

// testServicesIsolated checks that one service's activity never shows in
// another's reports or dedupe, and that activity and API events share no
// dedupe records even where an organization id spells the service's GUID.
func testServicesIsolated(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	c := t.Context()
	a, bsvc, u, v := usage.GUID{0xa}, usage.GUID{0xb}, usage.GUID{0x1}, usage.GUID{0x2}
	day := span{base, base.AddDate(0, 0, 1)}
	o := NewActivityOracle()
	appendCall(t, s, o, activityCall{a, []usage.Activity{
		message("same", base.Add(time.Hour), u, v),
		{ID: "f", Time: base.Add(2 * time.Hour), Kind: usage.ActivityFeature, User: u, Feature: usage.FeatureSecureForms},
		{ID: "g", Time: base.Add(3 * time.Hour), Kind: usage.ActivityUsers, Users: usage.UserCounts{Total: 5, Pro: 4, Guest: 1}},
		{ID: "st", Time: base.Add(3 * time.Hour), Kind: usage.ActivityStorage, StorageBytes: 1 << 30},
		{ID: "e", Time: base.Add(4 * time.Hour), Kind: usage.ActivityUser, UserEvent: usage.UserCreated, User: v, Email: "v@a.example", InvitedBy: u},
	}}, longAgo)
	// B has seen nothing of A.
	checkTotals(t, s, o, bsvc, day)
	checkUsers(t, s, o, bsvc, day, usage.GUID{})
	checkUsers(t, s, o, bsvc, day, u)
	// The same ids in B are new to it, and B's reports are B's alone.
	appendCall(t, s, o, activityCall{bsvc, []usage.Activity{
		message("same", base.Add(5*time.Hour), v, u),
		{ID: "g", Time: base.Add(time.Hour), Kind: usage.ActivityUsers, Users: usage.UserCounts{Total: 9}},
	}}, longAgo)
	for _, svc := range []usage.GUID{a, bsvc} {
		checkTotals(t, s, o, svc, day)
		checkUsers(t, s, o, svc, day, usage.GUID{})
		checkUsers(t, s, o, svc, day, u)
	}

	// API events and activity with the same ids are distinct, in either
	// order, whatever the organization is called.
	orgs := []string{a.String(), "service/" + a.String(), "A"}
	var events []usage.Event
	for _, org := range orgs {
		for _, id := range []string{"same", "api-first"} {
			events = append(events, usage.Event{ID: id, Time: base.Add(time.Hour), OrganizationID: org, ClientID: "c", ClientName: "n",
				TemplateURI: "t", HTTPMethod: "GET", Status: 200})
		}
	}
	got, err := s.Append(c, events, longAgo)
	if err != nil || slices.Contains(got, usage.Duplicate) {
		t.Fatalf("API events with the ids of activity: %v, %v; want all accepted", outcomeNames(got), err)
	}
	appendCall(t, s, o, activityCall{a, []usage.Activity{message("api-first", base.Add(6*time.Hour), u)}}, longAgo)
	for _, org := range orgs {
		q, _ := usage.Query{OrganizationID: org, Interval: usage.Interval{Start: base, End: base.AddDate(0, 0, 1)}}.Normalize()
		rows, err := s.Query(c, q)
		if err != nil || len(rows) != 1 || rows[0].Requests != 2 {
			t.Fatalf("Query(%s) = %v, %v; want one row of 2 requests", org, rows, err)
		}
	}
	for _, svc := range []usage.GUID{a, bsvc} {
		checkTotals(t, s, o, svc, day)
		checkUsers(t, s, o, svc, day, usage.GUID{})
	}
}

// testConcurrentActivity appends overlapping calls from several goroutines
// and checks that each id is accepted exactly once and counted once.
func testConcurrentActivity(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	defer s.Close()
	g := NewActivityGen(4)
	g.Repeat = 0
	const workers, calls, perCall = 8, 12, 80
	svc := g.Casts[0].GUID
	pool := g.Batch(0, 700) // one event per id, whoever sends it
	var (
		mu       sync.Mutex
		accepted = map[string]int{}
		sent     = map[string]bool{}
		wg       sync.WaitGroup
		errs     = make(chan error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 13))
			for range calls {
				batch := make([]usage.Activity, perCall)
				for j := range batch {
					batch[j] = pool[r.IntN(len(pool))]
				}
				outs, err := retried(func() ([]usage.Outcome, error) { return s.AppendActivity(t.Context(), svc, batch, longAgo) })
				if err != nil || len(outs) != len(batch) {
					errs <- fmt.Errorf("AppendActivity: %d outcomes for %d events, %v", len(outs), len(batch), err)
					return
				}
				mu.Lock()
				for j, o := range outs {
					sent[batch[j].ID] = true
					if o == usage.Accepted {
						accepted[batch[j].ID]++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	o := NewActivityOracle()
	var once []usage.Activity
	for _, a := range pool {
		if n := accepted[a.ID]; n != 1 && sent[a.ID] {
			t.Fatalf("id %q was sent and accepted %d times", a.ID, n)
		}
		if sent[a.ID] {
			once = append(once, a)
		}
	}
	o.Append(svc, once, longAgo)
	for _, sp := range reportSpans(g) {
		checkTotals(t, s, o, svc, sp)
		checkUsers(t, s, o, svc, sp, usage.GUID{})
	}
}

// testActivityReopen checks that activity, its reports and its dedupe
// records survive a reopen.
func testActivityReopen(t *testing.T, b UsageBackend) {
	s := b.Open(t)
	g := NewActivityGen(5)
	o := NewActivityOracle()
	before, _ := appendActivity(t, s, o, g, 3000)
	s = b.Reopen(t, s)
	defer s.Close()
	CheckReports(t, s, o, g)
	// Everything sent before the reopen is a duplicate after it.
	for _, c := range before {
		if outs := appendCall(t, s, o, c, longAgo); slices.Contains(outs, usage.Accepted) {
			t.Fatalf("a call repeated after the reopen had accepted events: %v", outcomeNames(outs))
		}
	}
	appendActivity(t, s, o, g, 2000)
	CheckReports(t, s, o, g)
}
