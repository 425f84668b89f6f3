package ccc_test

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The usage reports over ~40 days of random activity of six services,
// posted through the events endpoint and counted by hand.

// usageNumbers are the numbers of a ServiceUsage.
type usageNumbers struct {
	TotalUserCount                     int64 `json:"totalUserCount"`
	ProUserCount                       int64 `json:"proUserCount"`
	GuestUserCount                     int64 `json:"guestUserCount"`
	DisabledUserCount                  int64 `json:"disabledUserCount"`
	UnregisteredUserCount              int64 `json:"unregisteredUserCount"`
	FeatureUsageSecureMessagingGateway int64 `json:"featureUsageSecureMessagingGateway"`
	FeatureUsageSecureMessagingPlus    int64 `json:"featureUsageSecureMessagingPlus"`
	FeatureUsageDataLeakPrevention     int64 `json:"featureUsageDataLeakPrevention"`
	FeatureUsageSecureLargeFiles       int64 `json:"featureUsageSecureLargeFiles"`
	FeatureUsageSecureForms            int64 `json:"featureUsageSecureForms"`
	TotalMessageCount                  int64 `json:"totalMessageCount"`
	TotalAttachmentCount               int64 `json:"totalAttachmentCount"`
	AttachmentStorageUsage             int64 `json:"attachmentStorageUsage"`
}

// serviceUsage is a ServiceUsage as the reference lists its fields.
type serviceUsage struct {
	ResponseStatus *responseStatus `json:"responseStatus,omitempty"`
	serviceHeader
	PeriodType string `json:"periodType"`
	Period     string `json:"period"`
	usageNumbers
}

// userUsage is the per-user usage record of the reference.
type userUsage struct {
	UserGuid                 string `json:"userGuid"`
	EmailAddress             string `json:"emailAddress,omitempty"`
	IsAlias                  bool   `json:"isAlias"`
	FirstName                string `json:"firstName,omitempty"`
	LastName                 string `json:"lastName,omitempty"`
	Status                   string `json:"status"`
	CreatedOn                string `json:"createdOn,omitempty"`
	RegisteredOn             string `json:"registeredOn,omitempty"`
	LastLogin                string `json:"lastLogin,omitempty"`
	GroupName                string `json:"groupName,omitempty"`
	GroupType                string `json:"groupType,omitempty"`
	GroupGuid                string `json:"groupGuid,omitempty"`
	TotalMessagesSent        int64  `json:"totalMessagesSent"`
	TotalMessagesReceived    int64  `json:"totalMessagesReceived"`
	TotalAttachmentsCount    int64  `json:"totalAttachmentsCount"`
	TotalAttachmentsSize     int64  `json:"totalAttachmentsSize"`
	TotalInvitationsSent     int64  `json:"totalInvitationsSent"`
	TotalInvitationsAccepted int64  `json:"totalInvitationsAccepted"`
	LastToolbarVersion       string `json:"lastToolbarVersion,omitempty"`
	InvitedByEmailAddress    string `json:"invitedByEmailAddress,omitempty"`
	LastMsgSent              string `json:"lastMsgSent,omitempty"`
	LastMsgRetrieved         string `json:"lastMsgRetrieved,omitempty"`
	LastActivity             string `json:"lastActivity,omitempty"`
}

type serviceUsersUsage struct {
	ServiceGuid string `json:"serviceGuid"`
	PeriodType  string `json:"periodType"`
	Period      string `json:"period"`
	page[userUsage]
}

type serviceUserUsage struct {
	ServiceGuid string    `json:"serviceGuid"`
	PeriodType  string    `json:"periodType"`
	Period      string    `json:"period"`
	Usage       userUsage `json:"usage"`
}

// period is a report's UTC day or calendar month.
type period struct {
	monthly bool
	start   time.Time
}

func daily(t time.Time) period {
	y, m, d := t.UTC().Date()
	return period{start: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

func monthly(t time.Time) period {
	y, m, _ := t.UTC().Date()
	return period{monthly: true, start: time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)}
}

func (p period) end() time.Time {
	if p.monthly {
		return p.start.AddDate(0, 1, 0)
	}
	return p.start.AddDate(0, 0, 1)
}

func (p period) typ() string {
	if p.monthly {
		return "Monthly"
	}
	return "Daily"
}

// query asks for the period as the reports' parameters.
func (p period) query() string {
	return "PeriodType=" + p.typ() + "&Period=" + p.start.Format(time.DateOnly)
}

func (p period) String() string { return p.typ() + " " + p.start.Format(time.DateOnly) }

// zeroTime and zeroGuid are how an unset date and Guid are written.
const (
	zeroTime = "0001-01-01T00:00:00Z"
	zeroGuid = "00000000000000000000000000000000"
)

// wireTimeOf is a time as the API writes it ("" for none); the tests' times
// are whole seconds.
func wireTimeOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// guid is a Guid in its wire form, 32 lowercase hex digits.
type guid = string

// act is one activity event as the oracle counts it, with the body the test
// sends for it.
type act struct {
	id          string
	at          time.Time
	kind        string // message, feature, users, storage or user
	user        guid   // sender, feature user, or the user a user event is about
	recipients  []guid // the users among a message's recipients, each once
	attachments int64
	bytes       int64
	feature     int      // 0 to 4, in the order of the report's featureUsage fields
	users       [5]int64 // total, pro, guest, disabled, unregistered
	storage     int64
	event       string // of a user event
	email       string
	firstName   string
	lastName    string
	groupName   string
	status      string // Active, Disabled, or "" when the event does not say
	groupType   string // Professional, Guest or ""
	groupGuid   guid
	invitedBy   guid
	wire        []byte
}

var featureNames = []string{"SecureMessagingGateway", "SecureMessagingPlus", "DataLeakPrevention", "SecureLargeFiles", "SecureForms"}

// oracle counts what the reports must answer from the events the test
// posted. Its rules, from the reference and the Services contract:
//
//   - An event is recorded when no event with its id was recorded for the
//     same service before, in posting order (ids are per service); later
//     ones are duplicates and count for nothing, whatever they carry.
//   - Counters (messages, attachments, each feature) sum the recorded events
//     with times in the period [start, end).
//   - Gauges (the five user counts, the storage) are the value of the latest
//     report before the period's end, of reports at the same time the one
//     with the greatest id; zero without one.
//   - A user is listed once an event before the end names them: a user event
//     about them, a message they sent, a feature they used (not a message
//     they only received). Their account folds their user events before the
//     end in (time, id) order: each detail an event carries replaces the
//     earlier one; the first created and registered events date the account,
//     logins set the last login, disabled and enabled the status (Active by
//     default), an invited event naming an inviter records who invited
//     them, whose e-mail address (as of the end) is reported.
//   - Per user, over everything before the end: the last message sent, the
//     last received, the last activity (login, registration, message sent,
//     feature used). Within the period: messages sent with their attachments
//     and bytes, messages received (a recipient counts once per message),
//     and invitations sent and accepted (invited and registered events
//     naming them as inviter).
type oracle struct {
	recorded map[string]bool // service + " " + id
	events   map[guid][]*act // recorded, by service
}

func newOracle() *oracle {
	return &oracle{recorded: map[string]bool{}, events: map[guid][]*act{}}
}

// offer records a posted batch and returns how many events it accepted and
// how many were duplicates.
func (o *oracle) offer(service guid, batch []*act) (accepted, duplicates int) {
	for _, a := range batch {
		k := service + " " + a.id
		if o.recorded[k] {
			duplicates++
			continue
		}
		o.recorded[k] = true
		o.events[service] = append(o.events[service], a)
		accepted++
	}
	return accepted, duplicates
}

// totals is the ServiceUsage of service in p.
func (o *oracle) totals(service guid, p period) usageNumbers {
	var n usageNumbers
	var users, storage *act
	later := func(a, b *act) bool { return b == nil || a.at.After(b.at) || a.at.Equal(b.at) && a.id > b.id }
	for _, a := range o.events[service] {
		if !a.at.Before(p.end()) {
			continue
		}
		switch {
		case a.kind == "users" && later(a, users):
			users = a
		case a.kind == "storage" && later(a, storage):
			storage = a
		}
		if a.at.Before(p.start) {
			continue
		}
		switch a.kind {
		case "message":
			n.TotalMessageCount++
			n.TotalAttachmentCount += a.attachments
		case "feature":
			*[]*int64{&n.FeatureUsageSecureMessagingGateway, &n.FeatureUsageSecureMessagingPlus, &n.FeatureUsageDataLeakPrevention,
				&n.FeatureUsageSecureLargeFiles, &n.FeatureUsageSecureForms}[a.feature]++
		}
	}
	if users != nil {
		n.TotalUserCount, n.ProUserCount, n.GuestUserCount, n.DisabledUserCount, n.UnregisteredUserCount =
			users.users[0], users.users[1], users.users[2], users.users[3], users.users[4]
	}
	if storage != nil {
		n.AttachmentStorageUsage = storage.storage
	}
	return n
}

// users is the per-user usage of service in p, by Guid.
func (o *oracle) users(service guid, p period) []userUsage {
	evs := slices.Clone(o.events[service])
	slices.SortFunc(evs, func(a, b *act) int { return cmp.Or(a.at.Compare(b.at), strings.Compare(a.id, b.id)) })
	type account struct {
		u                                    userUsage
		named                                bool
		created, registered, login           time.Time
		lastSent, lastReceived, lastActivity time.Time
		invitedBy                            guid
	}
	accounts := map[guid]*account{}
	get := func(g guid) *account {
		if accounts[g] == nil {
			accounts[g] = &account{u: userUsage{UserGuid: g, Status: "Active"}}
		}
		return accounts[g]
	}
	latest := func(t *time.Time, v time.Time) {
		if v.After(*t) {
			*t = v
		}
	}
	for _, a := range evs {
		if !a.at.Before(p.end()) {
			break
		}
		in := !a.at.Before(p.start)
		switch a.kind {
		case "message":
			s := get(a.user)
			s.named = true
			latest(&s.lastSent, a.at)
			latest(&s.lastActivity, a.at)
			if in {
				s.u.TotalMessagesSent++
				s.u.TotalAttachmentsCount += a.attachments
				s.u.TotalAttachmentsSize += a.bytes
			}
			for _, g := range a.recipients {
				r := get(g)
				latest(&r.lastReceived, a.at)
				if in {
					r.u.TotalMessagesReceived++
				}
			}
		case "feature":
			u := get(a.user)
			u.named = true
			latest(&u.lastActivity, a.at)
		case "user":
			u := get(a.user)
			u.named = true
			for _, f := range []struct {
				dst *string
				v   string
			}{
				{&u.u.EmailAddress, a.email}, {&u.u.FirstName, a.firstName}, {&u.u.LastName, a.lastName},
				{&u.u.GroupName, a.groupName}, {&u.u.Status, a.status}, {&u.u.GroupType, a.groupType}, {&u.u.GroupGuid, a.groupGuid},
			} {
				if f.v != "" {
					*f.dst = f.v
				}
			}
			switch a.event {
			case "created":
				if u.created.IsZero() {
					u.created = a.at
				}
			case "registered":
				if u.registered.IsZero() {
					u.registered = a.at
				}
				latest(&u.lastActivity, a.at)
			case "login":
				u.login = a.at
				latest(&u.lastActivity, a.at)
			case "disabled":
				u.u.Status = "Disabled"
			case "enabled":
				u.u.Status = "Active"
			case "invited":
				if a.invitedBy != "" {
					u.invitedBy = a.invitedBy
				}
			}
			if in && a.invitedBy != "" {
				switch a.event {
				case "invited":
					get(a.invitedBy).u.TotalInvitationsSent++
				case "registered":
					get(a.invitedBy).u.TotalInvitationsAccepted++
				}
			}
		}
	}
	var out []userUsage
	for _, a := range accounts {
		if !a.named {
			continue
		}
		u := a.u
		u.CreatedOn, u.RegisteredOn, u.LastLogin = wireTimeOf(a.created), wireTimeOf(a.registered), wireTimeOf(a.login)
		u.LastMsgSent, u.LastMsgRetrieved, u.LastActivity = wireTimeOf(a.lastSent), wireTimeOf(a.lastReceived), wireTimeOf(a.lastActivity)
		if inviter := accounts[a.invitedBy]; inviter != nil {
			u.InvitedByEmailAddress = inviter.u.EmailAddress
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b userUsage) int { return strings.Compare(a.UserGuid, b.UserGuid) })
	return out
}

// person is a user of a test service.
type person struct {
	guid                 guid
	email, first, last   string
	groupType            string
	groupGuid, groupName string
	day                  int  // the day their account is created
	invitedBy            guid // "" when they were not invited
}

// serviceSpec is a service of the scenario.
type serviceSpec struct {
	name, domain, code   string
	reseller, collection int // indexes; collection -1 for none
	status               string
}

var serviceSpecs = []serviceSpec{
	{`Contoso, "Main" Office`, "contoso.example.com", "CON-1", 0, 0, "CertifiedSecure"},
	{"Fabrikam", "fabrikam.example.net", "FAB-2", 0, 1, "TrialActive"},
	{"Northwind, Ltd.", "northwind.example.org", "NW-3", 1, 0, "DemoAccount"},
	{`Tailspin "Toys"`, "tailspin.example.com", "TS-4", 1, -1, "AccountSuspended"},
	{"Wingtip", "wingtip.example.com", "WT-5", 2, 2, "TrialExpired"},
	{`Woodgrove, "Bank", N.A.`, "woodgrove.example.com", "WG-6", 2, 2, "AccountCancelled"},
}

// The scenario's days of activity: 2026-01-30 to 2026-03-10 (today),
// across two month boundaries.
const days = 40

var firstDay = daily(epoch).start.AddDate(0, 0, -(days - 1))

// gaugeStep is the service whose gauges step in February: first gaugeA
// until the 14th, then gaugeB.
const gaugeStep = 1

var (
	gaugeA = [5]int64{40, 30, 8, 2, 5}
	gaugeB = [5]int64{55, 41, 9, 5, 3}
)

const storageA, storageB = 1 << 30, 3 << 30

// scenario is the registry and activity of TestReports.
type scenario struct {
	e           *env
	o           *oracle
	partners    [2]partnerDTO    // A, B
	resellers   [3]resellerDTO   // A1, A2 of A; B1 of B
	collections [3]collectionDTO // two of A, one of B
	services    []serviceDTO     // in creation order, as serviceSpecs
	people      [][]person       // by service
	partnerKeys [2]string
	resellerKey [3]string
	serviceKeys []string
}

// mustScenario builds the hierarchy through the API with the clock set to
// each creation time, then generates and posts the activity as of epoch.
func mustScenario(t *testing.T) *scenario {
	t.Helper()
	e := MustEnv(t)
	sc := &scenario{e: e, o: newOracle()}
	e.clk.Set(time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC))
	sc.partners[0] = e.createPartner(t, "Acme Partner")
	sc.partners[1] = e.createPartner(t, "Globex Partner")
	sc.resellers[0] = e.createReseller(t, sc.partners[0].PartnerGuid, "Alpha Reseller")
	sc.resellers[1] = e.createReseller(t, sc.partners[0].PartnerGuid, "Beta Reseller")
	sc.resellers[2] = e.createReseller(t, sc.partners[1].PartnerGuid, "Gamma Reseller")
	sc.collections[0] = e.createCollection(t, sc.partners[0].PartnerGuid, "East")
	sc.collections[1] = e.createCollection(t, sc.partners[0].PartnerGuid, "West")
	sc.collections[2] = e.createCollection(t, sc.partners[1].PartnerGuid, "North")
	for i, s := range serviceSpecs {
		e.clk.Set(time.Date(2026, 1, 5+3*i, 10+i, 0, 0, 0, time.UTC))
		body := map[string]any{"name": s.name, "resellerGuid": sc.resellers[s.reseller].ResellerGuid,
			"primaryDomain": strings.ToUpper(s.domain), "serviceCode": s.code, "status": strings.ToLower(s.status), "initialTerm": 12}
		if s.collection >= 0 {
			body["collectionGuid"] = dashed(sc.collections[s.collection].CollectionGuid)
		}
		if i == 0 {
			body["referenceId"] = "REF-0001"
			body["clientGuid"] = "{" + strings.ToUpper(dashed("00112233445566778899aabbccddeeff")) + "}"
			body["trialEndDate"] = "2026-04-01"
			body["effectiveDate"] = "2026-01-05T12:00:00+02:00"
			body["contact"] = map[string]string{"name": "Ann O'Neil", "email": "ann@contoso.example.com", "phoneNumber": "+1 555 0100"}
			body["company"] = map[string]string{"name": "Contoso, Inc.", "city": "Springfield", "country": "US"}
		}
		svc := e.createService(t, body)
		// Unset dates and Guids are .NET value types: written as zero, not left out.
		want := serviceHeader{ServiceGuid: svc.ServiceGuid, Name: s.name, Status: s.status, ServiceCode: s.code, PrimaryDomain: s.domain,
			CreatedOn: wireTimeOf(e.clk.Now()), InitialTerm: 12, TrialEndDate: zeroTime, EffectiveDate: zeroTime,
			CollectionGuid: zeroGuid, ClientGuid: zeroGuid}
		if s.collection >= 0 {
			want.CollectionGuid, want.CollectionName = sc.collections[s.collection].CollectionGuid, sc.collections[s.collection].Name
		}
		if i == 0 {
			want.ReferenceId, want.ClientGuid = "REF-0001", "00112233445566778899aabbccddeeff"
			want.TrialEndDate, want.EffectiveDate = "2026-04-01T00:00:00Z", "2026-01-05T10:00:00Z"
			want.Contact = &contactDTO{Name: "Ann O'Neil", Email: "ann@contoso.example.com", PhoneNumber: "+1 555 0100"}
			want.Company = &companyDTO{Name: "Contoso, Inc.", City: "Springfield", Country: "US"}
		}
		if !reflect.DeepEqual(svc.serviceHeader, want) || svc.ResellerGuid != sc.resellers[s.reseller].ResellerGuid ||
			svc.PartnerGuid != sc.resellers[s.reseller].PartnerGuid {
			t.Fatalf("created service\n got %+v\nwant %+v", svc, want)
		}
		sc.services = append(sc.services, svc)
	}
	e.clk.Set(epoch)
	for i := range sc.partners {
		sc.partnerKeys[i] = e.createKey(t, "partner", sc.partners[i].PartnerGuid)
	}
	for i := range sc.resellers {
		sc.resellerKey[i] = e.createKey(t, "reseller", sc.resellers[i].ResellerGuid)
	}
	for _, s := range sc.services {
		sc.serviceKeys = append(sc.serviceKeys, e.createKey(t, "service", s.ServiceGuid))
	}

	r := rand.New(rand.NewPCG(2026, 3))
	shared := randomGuid(r) // a user of the first two services
	for i := range sc.services {
		sc.people = append(sc.people, people(r, i, shared))
	}
	for i := range sc.services {
		sc.post(t, r, i, sc.generate(r, i))
	}
	return sc
}

// keysFor are the keys that see service i, the operator's first.
func (sc *scenario) keysFor(i int) []string {
	x := serviceSpecs[i].reseller
	return []string{adminToken, sc.partnerKeys[sc.partnerOf(i)], sc.resellerKey[x], sc.serviceKeys[i]}
}

func (sc *scenario) partnerOf(i int) int {
	if serviceSpecs[i].reseller == 2 {
		return 1
	}
	return 0
}

func randomGuid(r *rand.Rand) guid {
	return fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
}

func dashed(g guid) string {
	return g[:8] + "-" + g[8:12] + "-" + g[12:16] + "-" + g[16:20] + "-" + g[20:]
}

// guidForm writes g in one of the forms clients may send.
func guidForm(r *rand.Rand, g guid) string {
	switch r.IntN(5) {
	case 0:
		return strings.ToUpper(g)
	case 1:
		return dashed(g)
	case 2:
		return "{" + strings.ToUpper(dashed(g)) + "}"
	}
	return g
}

var zones = []*time.Location{time.UTC, time.FixedZone("", 5*3600+1800), time.FixedZone("", -8*3600)}

// people returns the users of service i: eight, some invited by others,
// created over the first weeks; shared is the first user of services 0 and 1.
func people(r *rand.Rand, i int, shared guid) []person {
	groups := []struct{ guid, name, typ string }{
		{randomGuid(r), "Staff", "Professional"}, {randomGuid(r), "Partners", "Guest"},
	}
	var ps []person
	for n := range 8 {
		g := randomGuid(r)
		if n == 0 && i < 2 {
			g = shared
		}
		grp := groups[r.IntN(2)]
		p := person{guid: g, email: fmt.Sprintf("user%d@%s", n, serviceSpecs[i].domain), first: fmt.Sprintf("First%d", n),
			last: fmt.Sprintf("Last%d", n), groupType: grp.typ, groupGuid: grp.guid, groupName: grp.name, day: r.IntN(days / 2)}
		if n > 1 && r.IntN(2) == 0 {
			p.invitedBy = ps[r.IntN(n)].guid
		}
		ps = append(ps, p)
	}
	return ps
}

// generate returns service i's activity over the scenario's days, in time
// order: account events, logins, messages, features and gauge reports
// several times a day, some days without gauge reports, ties between gauge
// reports, and a few ids used twice with different contents.
func (sc *scenario) generate(r *rand.Rand, i int) []*act {
	ps := sc.people[i]
	var evs []*act
	seq := 0
	add := func(a *act) {
		seq++
		a.id = fmt.Sprintf("%s-%05d", a.kind, seq)
		if len(evs) > 0 && r.IntN(50) == 0 { // an id used before, for something else
			a.id = evs[r.IntN(len(evs))].id
		}
		evs = append(evs, a)
	}
	for d := range days {
		day := firstDay.AddDate(0, 0, d)
		span := 86400
		if d == days-1 {
			span = int(epoch.Sub(day) / time.Second) // today so far
		}
		at := func() time.Time { return day.Add(time.Duration(r.IntN(span)) * time.Second) }
		for _, p := range ps {
			switch {
			case d == p.day-1 && p.invitedBy != "":
				add(&act{at: at(), kind: "user", event: "invited", user: p.guid, email: p.email, invitedBy: p.invitedBy})
			case d == p.day:
				add(&act{at: day.Add(time.Hour), kind: "user", event: "created", user: p.guid, email: p.email, firstName: p.first,
					lastName: p.last, groupType: p.groupType, groupGuid: p.groupGuid, groupName: p.groupName, status: "Active"})
				add(&act{at: day.Add(2 * time.Hour), kind: "user", event: "registered", user: p.guid, invitedBy: p.invitedBy})
			case d > p.day && r.IntN(3) == 0:
				a := &act{at: at(), kind: "user", event: "login", user: p.guid}
				if r.IntN(15) == 0 {
					a.lastName = fmt.Sprintf("Renamed%d", d) // a detail a later event changes
				}
				add(a)
			case d > p.day && r.IntN(40) == 0:
				add(&act{at: at(), kind: "user", event: []string{"disabled", "enabled"}[r.IntN(2)], user: p.guid})
			}
		}
		for range r.IntN(7) {
			a := &act{at: at(), kind: "message", user: ps[r.IntN(len(ps))].guid}
			for range r.IntN(4) {
				g := ps[r.IntN(len(ps))].guid
				if !slices.Contains(a.recipients, g) {
					a.recipients = append(a.recipients, g)
				}
			}
			if a.attachments = int64(r.IntN(4)); a.attachments > 0 {
				a.bytes = a.attachments * int64(1+r.IntN(5_000_000))
			}
			add(a)
		}
		for range r.IntN(4) {
			add(&act{at: at(), kind: "feature", user: ps[r.IntN(len(ps))].guid, feature: r.IntN(len(featureNames))})
		}
		if i == gaugeStep && day.Month() == time.February {
			// A step in mid-February, reported on most days.
			u, s := gaugeA, int64(storageA)
			if day.Day() >= 15 {
				u, s = gaugeB, storageB
			}
			if day.Day()%5 != 0 {
				add(&act{at: at(), kind: "users", users: u})
				add(&act{at: at(), kind: "storage", storage: s})
			}
			continue
		}
		if r.IntN(5) == 0 {
			continue // no gauge report today: yesterday's stands
		}
		for range 1 + r.IntN(3) {
			t := at()
			add(&act{at: t, kind: "users", users: [5]int64{int64(20 + r.IntN(80)), int64(r.IntN(60)), int64(r.IntN(20)), int64(r.IntN(10)), int64(r.IntN(10))}})
			if r.IntN(4) == 0 { // a tie: the greater id stands
				add(&act{at: t, kind: "users", users: [5]int64{int64(20 + r.IntN(80)), 1, 2, 3, 4}})
				if n := len(evs); r.IntN(2) == 0 {
					evs[n-1].id, evs[n-2].id = evs[n-2].id, evs[n-1].id
				}
			}
			add(&act{at: at(), kind: "storage", storage: int64(r.IntN(1 << 40))})
		}
	}
	for _, a := range evs {
		a.render(r)
	}
	return evs
}

// render writes the event as the wire format has it, with its Guids, time
// zone and enum case varying as clients may send them, and external
// recipients and repeated recipients (in another Guid form) mixed in.
func (a *act) render(r *rand.Rand) {
	kind := a.kind
	if r.IntN(5) == 0 {
		kind = strings.ToUpper(kind)
	}
	m := map[string]any{"id": a.id, "time": a.at.In(zones[r.IntN(len(zones))]).Format(time.RFC3339), "type": kind}
	switch a.kind {
	case "message":
		m["userGuid"] = guidForm(r, a.user)
		var rcpts []string
		for _, g := range a.recipients {
			rcpts = append(rcpts, guidForm(r, g))
			if r.IntN(5) == 0 {
				rcpts = append(rcpts, guidForm(r, g)) // listed twice, received once
			}
		}
		if r.IntN(3) == 0 {
			rcpts = append(rcpts, "someone@outside.example")
		}
		r.Shuffle(len(rcpts), func(i, j int) { rcpts[i], rcpts[j] = rcpts[j], rcpts[i] })
		if len(rcpts) > 0 {
			m["recipients"] = rcpts
		}
		if a.attachments > 0 || r.IntN(2) == 0 {
			m["attachments"], m["attachmentBytes"] = a.attachments, a.bytes
		}
	case "feature":
		m["userGuid"] = guidForm(r, a.user)
		f := featureNames[a.feature]
		if r.IntN(3) == 0 {
			f = strings.ToLower(f)
		}
		m["feature"] = f
	case "users":
		for k, name := range []string{"total", "pro", "guest", "disabled", "unregistered"} {
			m[name] = a.users[k]
		}
	case "storage":
		m["bytes"] = a.storage
	case "user":
		m["userGuid"], m["event"] = guidForm(r, a.user), a.event
		for k, v := range map[string]string{"email": a.email, "firstName": a.firstName, "lastName": a.lastName, "groupName": a.groupName,
			"status": a.status, "groupType": a.groupType} {
			if v != "" {
				m[k] = v
			}
		}
		if a.groupGuid != "" {
			m["groupGuid"] = guidForm(r, a.groupGuid)
		}
		if a.invitedBy != "" {
			m["invitedBy"] = guidForm(r, a.invitedBy)
		}
	}
	var err error
	if a.wire, err = json.Marshal(m); err != nil {
		panic(err)
	}
}

// post sends service i's events in random order and random batches, as a
// JSON array, an {"events":[…]} object or NDJSON, some gzipped, with any key
// that sees the service, and re-sends a quarter of the batches; each
// answer must count what the oracle counts.
func (sc *scenario) post(t *testing.T, r *rand.Rand, i int, evs []*act) {
	t.Helper()
	svc := sc.services[i].ServiceGuid
	r.Shuffle(len(evs), func(a, b int) { evs[a], evs[b] = evs[b], evs[a] })
	var sent [][]*act
	send := func(batch []*act) {
		t.Helper()
		wire := make([][]byte, len(batch))
		for k, a := range batch {
			wire[k] = a.wire
		}
		var body []byte
		ct := "application/json"
		switch r.IntN(3) {
		case 0:
			body = append(append([]byte("["), bytes.Join(wire, []byte(","))...), ']')
		case 1:
			body = append(append([]byte(`{"events":[`), bytes.Join(wire, []byte(",\n"))...), "]}"...)
		default:
			body, ct = append(bytes.Join(wire, []byte("\n")), '\n'), "application/x-ndjson"
		}
		keys := sc.keysFor(i)
		status, h, rb := sc.e.postEvents(t, url.PathEscape(guidForm(r, svc)), keys[r.IntN(len(keys))], ct, body, r.IntN(4) == 0)
		if status != http.StatusOK {
			t.Fatalf("posting %d events: %d %s", len(batch), status, rb)
		}
		var res eventsResult
		decodeJSON(t, h, rb, &res)
		acc, dup := sc.o.offer(svc, batch)
		if res.Accepted != acc || res.Duplicates != dup || res.Rejected != 0 || len(res.Errors) != 0 {
			t.Fatalf("posting %d events: got %+v, want %d accepted and %d duplicates", len(batch), res, acc, dup)
		}
	}
	for len(evs) > 0 {
		n := min(1+r.IntN(120), len(evs))
		batch := evs[:n:n]
		evs = evs[n:]
		send(batch)
		sent = append(sent, batch)
		if r.IntN(4) == 0 {
			send(sent[r.IntN(len(sent))])
		}
	}
}

// usagePath is the serviceusage route of service i.
func (sc *scenario) usagePath(i int) string {
	return "/api/services/" + sc.services[i].ServiceGuid + "/serviceusage"
}

// checkUsage compares a ServiceUsage with service i's header and the
// oracle's numbers for p.
func (sc *scenario) checkUsage(t *testing.T, what string, got serviceUsage, i int, p period) {
	t.Helper()
	if got.ResponseStatus != nil {
		t.Errorf("%s: responseStatus on success: %+v", what, got.ResponseStatus)
	}
	if !reflect.DeepEqual(got.serviceHeader, sc.services[i].serviceHeader) {
		t.Errorf("%s: header\n got %+v\nwant %+v", what, got.serviceHeader, sc.services[i].serviceHeader)
	}
	if got.PeriodType != p.typ() || got.Period != wireTimeOf(p.start) {
		t.Errorf("%s: period %s %s, want %s", what, got.PeriodType, got.Period, p)
	}
	if want := sc.o.totals(sc.services[i].ServiceGuid, p); got.usageNumbers != want {
		t.Errorf("%s: %s\n got %+v\nwant %+v", what, p, got.usageNumbers, want)
	}
}

// checkPage compares a page of ServiceUsage with the services want (indexes)
// in period p.
func (sc *scenario) checkPage(t *testing.T, what string, got page[serviceUsage], want []int, p period, pg, size, total int) {
	t.Helper()
	if got.CurrentPage != pg || got.PageSize != size || got.TotalItems != total || got.TotalPages != (total+size-1)/size {
		t.Errorf("%s: page %d of %d, size %d, %d items; want page %d, size %d, %d items",
			what, got.CurrentPage, got.TotalPages, got.PageSize, got.TotalItems, pg, size, total)
	}
	if len(got.Results) != len(want) {
		t.Errorf("%s: %d results, want %d", what, len(got.Results), len(want))
		return
	}
	for k, i := range want {
		sc.checkUsage(t, fmt.Sprintf("%s result %d", what, k), got.Results[k], i, p)
	}
}

func TestReports(t *testing.T) {
	t.Parallel()
	sc := mustScenario(t)
	e := sc.e
	today, yesterday := daily(epoch), daily(epoch.AddDate(0, 0, -1))
	all := []int{0, 1, 2, 3, 4, 5}

	t.Run("ServiceUsage", func(t *testing.T) {
		for i := range sc.services {
			// Today so far by default, for every key that sees the service.
			for _, key := range sc.keysFor(i) {
				var got serviceUsage
				e.getJSON(t, sc.usagePath(i), key, &got)
				sc.checkUsage(t, "default", got, i, today)
			}
			for d := range days {
				p := daily(firstDay.AddDate(0, 0, d))
				var got serviceUsage
				e.getJSON(t, sc.usagePath(i)+"?"+p.query(), adminToken, &got)
				sc.checkUsage(t, "daily", got, i, p)
			}
			for _, m := range []time.Time{firstDay, firstDay.AddDate(0, 0, 3), epoch} {
				p := monthly(m)
				var got serviceUsage
				e.getJSON(t, sc.usagePath(i)+"?PeriodType=Monthly&Period="+m.AddDate(0, 0, 1).Format(time.DateOnly), sc.serviceKeys[i], &got)
				sc.checkUsage(t, "monthly", got, i, p)
			}
		}
		// Before any activity: zeros, and gauges not yet reported.
		var got serviceUsage
		p := daily(firstDay.AddDate(0, 0, -3))
		e.getJSON(t, sc.usagePath(0)+"?"+p.query(), adminToken, &got)
		if got.usageNumbers != (usageNumbers{}) {
			t.Errorf("before any activity: %+v", got.usageNumbers)
		}
	})

	t.Run("GaugeChange", func(t *testing.T) {
		// In February the gauges of one service step from A to B on the
		// 15th: the month reports B, the value last reported before its
		// end; a day of the first half reports A, and a day without a
		// report the value standing from the day before.
		f := func(query string, users [5]int64, storage int64) {
			t.Helper()
			var got serviceUsage
			e.getJSON(t, sc.usagePath(gaugeStep)+"?"+query, adminToken, &got)
			n := got.usageNumbers
			if g := [5]int64{n.TotalUserCount, n.ProUserCount, n.GuestUserCount, n.DisabledUserCount, n.UnregisteredUserCount}; g != users || n.AttachmentStorageUsage != storage {
				t.Errorf("%s: users %v, storage %d; want %v, %d", query, g, n.AttachmentStorageUsage, users, storage)
			}
		}
		f("PeriodType=Monthly&Period=2026-02-01", gaugeB, storageB)
		f("PeriodType=Monthly&Period=2026-02-28", gaugeB, storageB)
		f("PeriodType=Daily&Period=2026-02-03", gaugeA, storageA)
		f("PeriodType=Daily&Period=2026-02-10", gaugeA, storageA) // no report that day
		f("PeriodType=Daily&Period=2026-02-14", gaugeA, storageA)
		f("PeriodType=Daily&Period=2026-02-16", gaugeB, storageB)
		f("PeriodType=Daily&Period=2026-02-20", gaugeB, storageB) // no report that day
	})

	t.Run("ServicesUsage", func(t *testing.T) {
		f := func(query, key string, want []int, p period, pg, size, total int) {
			t.Helper()
			var got page[serviceUsage]
			e.getJSON(t, "/api/services/usage?"+query, key, &got)
			sc.checkPage(t, query, got, want, p, pg, size, total)
		}
		f("", adminToken, all, today, 1, 25, 6)
		f("PageSize=4", adminToken, all[:4], today, 1, 4, 6)
		f("PageSize=4&Page=2", adminToken, all[4:], today, 2, 4, 6)
		f("PageSize=4&Page=3", adminToken, nil, today, 3, 4, 6)
		f("PageSize=1&Page=6&"+yesterday.query(), adminToken, all[5:], yesterday, 6, 1, 6)
		for d := range days {
			p := daily(firstDay.AddDate(0, 0, d))
			f(p.query(), adminToken, all, p, 1, 25, 6)
		}
		f("PeriodType=Monthly&Period=2026-02-13", adminToken, all, monthly(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)), 1, 25, 6)
		f("PeriodType=Monthly", adminToken, all, monthly(epoch), 1, 25, 6)

		// Filters, as the operator.
		pa, pb := sc.partners[0].PartnerGuid, sc.partners[1].PartnerGuid
		f("PartnerGuid="+pa, adminToken, all[:4], today, 1, 25, 4)
		f("PartnerGuid="+strings.ToUpper(dashed(pb)), adminToken, all[4:], today, 1, 25, 2)
		f("ResellerGuid="+sc.resellers[1].ResellerGuid, adminToken, []int{2, 3}, today, 1, 25, 2)
		f("ServiceGuid="+sc.services[2].ServiceGuid, adminToken, []int{2}, today, 1, 25, 1)
		f("PartnerGuid="+pa+"&ResellerGuid="+sc.resellers[2].ResellerGuid, adminToken, nil, today, 1, 25, 0)
		created := func(i int) time.Time { c, _ := time.Parse(time.RFC3339, sc.services[i].CreatedOn); return c }
		esc := url.QueryEscape
		// Both bounds are inclusive, to the second.
		f("CreatedAfterDateTime="+esc(wireTimeOf(created(2))), adminToken, all[2:], today, 1, 25, 4)
		f("CreatedAfterDateTime="+esc(wireTimeOf(created(2).Add(time.Second))), adminToken, all[3:], today, 1, 25, 3)
		f("CreatedBeforeDateTime="+esc(wireTimeOf(created(2))), adminToken, all[:3], today, 1, 25, 3)
		f("CreatedBeforeDateTime="+esc(wireTimeOf(created(2).Add(-time.Second))), adminToken, all[:2], today, 1, 25, 2)
		f("CreatedAfterDateTime="+esc(wireTimeOf(created(1)))+"&CreatedBeforeDateTime="+esc(wireTimeOf(created(4))), adminToken, all[1:5], today, 1, 25, 4)
		// The same bound in every date form.
		c3 := created(3)
		for _, form := range []string{
			c3.Format(time.DateOnly), // midnight, before the creation time
			c3.Add(-time.Hour).In(time.FixedZone("", 2*3600)).Format(time.RFC3339),
			fmt.Sprintf("/Date(%d)/", c3.UnixMilli()),
			fmt.Sprintf("/Date(%d+0100)/", c3.Add(-time.Minute).UnixMilli()),
		} {
			f("CreatedAfterDateTime="+esc(form), adminToken, all[3:], today, 1, 25, 3)
		}
		f("ResellerGuid="+sc.resellers[0].ResellerGuid+"&"+yesterday.query(), adminToken, all[:2], yesterday, 1, 25, 2)

		// Scoped keys see only their part; filters narrow it further.
		f("", sc.partnerKeys[0], all[:4], today, 1, 25, 4)
		f("", sc.partnerKeys[1], all[4:], today, 1, 25, 2)
		f("", sc.resellerKey[0], all[:2], today, 1, 25, 2)
		f("", sc.resellerKey[1], all[2:4], today, 1, 25, 2)
		f("", sc.serviceKeys[3], all[3:4], today, 1, 25, 1)
		f("PartnerGuid="+pb, sc.partnerKeys[0], nil, today, 1, 25, 0)
		f("ServiceGuid="+sc.services[4].ServiceGuid, sc.partnerKeys[0], nil, today, 1, 25, 0)
		f("ResellerGuid="+sc.resellers[1].ResellerGuid, sc.resellerKey[0], nil, today, 1, 25, 0)
		f("PageSize=1&Page=2", sc.partnerKeys[0], all[1:2], today, 2, 1, 4)
	})

	t.Run("ResellerServiceUsageList", func(t *testing.T) {
		f := func(x int, query, key string, want []int, p period, pg, size, total int) {
			t.Helper()
			var got page[serviceUsage]
			e.getJSON(t, "/api/resellers/"+sc.resellers[x].ResellerGuid+"/serviceusagelist?"+query, key, &got)
			sc.checkPage(t, query, got, want, p, pg, size, total)
		}
		f(0, "", adminToken, all[:2], today, 1, 25, 2)
		f(0, "", sc.partnerKeys[0], all[:2], today, 1, 25, 2)
		f(1, "", sc.resellerKey[1], all[2:4], today, 1, 25, 2)
		f(1, "PageSize=1&Page=2", sc.resellerKey[1], all[3:4], today, 2, 1, 2)
		f(2, yesterday.query(), sc.partnerKeys[1], all[4:], yesterday, 1, 25, 2)
		// Another partner's or reseller's reseller, and a service key, are not found.
		for _, c := range []struct {
			x   int
			key string
		}{{0, sc.partnerKeys[1]}, {0, sc.resellerKey[1]}, {2, sc.resellerKey[0]}, {0, sc.serviceKeys[0]}} {
			g := sc.resellers[c.x].ResellerGuid
			status, h, body := e.get(t, "/api/resellers/"+g+"/serviceusagelist", c.key)
			wantError(t, "foreign reseller", status, h, body, http.StatusNotFound,
				responseStatus{ErrorCode: "NotFound", Message: "Reseller " + g + " not found"})
		}
	})

	t.Run("UsersUsage", func(t *testing.T) {
		f := func(i int, query, key string, p period, filter func(*userUsage) bool, pg, size int) {
			t.Helper()
			var got serviceUsersUsage
			svc := sc.services[i].ServiceGuid
			e.getJSON(t, "/api/services/"+url.PathEscape(guidForm(rand.New(rand.NewPCG(uint64(i), 0)), svc))+"/users/usage?"+query, key, &got)
			var all []userUsage
			for _, u := range sc.o.users(svc, p) {
				if filter == nil || filter(&u) {
					all = append(all, u)
				}
			}
			want := all[min((pg-1)*size, len(all)):min(pg*size, len(all))]
			if got.ServiceGuid != svc || got.PeriodType != p.typ() || got.Period != wireTimeOf(p.start) {
				t.Errorf("%s: service %s, period %s %s; want %s, %s", query, got.ServiceGuid, got.PeriodType, got.Period, svc, p)
			}
			if got.TotalItems != len(all) || got.CurrentPage != pg || got.PageSize != size || got.TotalPages != (len(all)+size-1)/size {
				t.Errorf("%s: page %d of %d, size %d, %d items; want page %d, size %d, %d items", query,
					got.CurrentPage, got.TotalPages, got.PageSize, got.TotalItems, pg, size, len(all))
			}
			if !reflect.DeepEqual(got.Results, want) && !(len(got.Results) == 0 && len(want) == 0) {
				t.Errorf("service %d %s (%s):\n got %s\nwant %s", i, query, p, jsonText(got.Results), jsonText(want))
			}
			if len(all) == 0 && filter == nil && p.monthly {
				t.Errorf("service %d %s: no users at all; the scenario should have some", i, query)
			}
		}
		for i := range sc.services {
			f(i, "", sc.serviceKeys[i], yesterday, nil, 1, 25) // yesterday by default
			f(i, "PeriodType=Daily", adminToken, yesterday, nil, 1, 25)
			f(i, today.query(), adminToken, today, nil, 1, 25)
			for _, d := range []int{0, 1, 5, 16, 20, 33} {
				p := daily(firstDay.AddDate(0, 0, d))
				f(i, p.query(), sc.keysFor(i)[d%4], p, nil, 1, 25)
			}
			for _, m := range []time.Time{firstDay, firstDay.AddDate(0, 0, 5), epoch} {
				p := monthly(m)
				f(i, p.query(), adminToken, p, nil, 1, 25)
			}
		}
		feb := monthly(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
		f(0, feb.query()+"&PageSize=3", adminToken, feb, nil, 1, 3)
		f(0, feb.query()+"&PageSize=3&Page=2", adminToken, feb, nil, 2, 3)
		f(0, feb.query()+"&PageSize=3&Page=3", adminToken, feb, nil, 3, 3)
		f(0, feb.query()+"&PageSize=3&Page=4", adminToken, feb, nil, 4, 3)
		for i := range sc.services {
			f(i, feb.query()+"&UserStatus=Disabled", adminToken, feb, func(u *userUsage) bool { return u.Status == "Disabled" }, 1, 25)
			f(i, feb.query()+"&userstatus=active", adminToken, feb, func(u *userUsage) bool { return u.Status == "Active" }, 1, 25)
			f(i, feb.query()+"&UserGroupType=Guest", adminToken, feb, func(u *userUsage) bool { return u.GroupType == "Guest" }, 1, 25)
			f(i, feb.query()+"&UserGroupType=PROFESSIONAL&UserStatus=Active", adminToken, feb,
				func(u *userUsage) bool { return u.GroupType == "Professional" && u.Status == "Active" }, 1, 25)
			g := sc.people[i][0].groupGuid
			f(i, feb.query()+"&UserGroupGuid="+dashed(g), adminToken, feb, func(u *userUsage) bool { return u.GroupGuid == g }, 1, 25)
		}
	})

	t.Run("UserUsage", func(t *testing.T) {
		f := func(i int, user guid, query, key string, p period) {
			t.Helper()
			svc := sc.services[i].ServiceGuid
			var got serviceUserUsage
			e.getJSON(t, "/api/services/"+svc+"/users/"+url.PathEscape(guidForm(rand.New(rand.NewPCG(1, 1)), user))+"/usage?"+query, key, &got)
			var want *userUsage
			for _, u := range sc.o.users(svc, p) {
				if u.UserGuid == user {
					want = &u
				}
			}
			if want == nil {
				t.Fatalf("the oracle does not know user %s of service %d in %s", user, i, p)
			}
			if got.ServiceGuid != svc || got.PeriodType != p.typ() || got.Period != wireTimeOf(p.start) || !reflect.DeepEqual(got.Usage, *want) {
				t.Errorf("user %s of service %d %s:\n got %+v\nwant %+v", user, i, query, got, *want)
			}
		}
		feb := monthly(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
		for i := range sc.services {
			for _, p := range sc.people[i] {
				f(i, p.guid, "", sc.keysFor(i)[i%4], yesterday)
				f(i, p.guid, feb.query(), adminToken, feb)
			}
		}
		// The user shared by the first two services is reported by each for itself.
		shared := sc.people[0][0].guid
		f(1, shared, feb.query(), sc.serviceKeys[1], feb)
		// A user unknown to the service, or known only later, is not found,
		// and the answer says for which period; without Period, that it was
		// the default, yesterday.
		svc := sc.services[0].ServiceGuid
		for _, c := range []struct{ user, query, when string }{
			{sc.people[2][3].guid, "", " on " + yesterday.start.Format(time.DateOnly) + " (UTC), the default Period (yesterday): pass Period=yyyy-MM-dd for another day."},
			{sc.people[2][3].guid, "PeriodType=Monthly", " in " + yesterday.start.Format("2006-01") + " (UTC), the default Period (yesterday): pass Period=yyyy-MM-dd for another month."},
			{sc.people[0][1].guid, "Period=2026-01-01", " on 2026-01-01 (UTC)."},
		} {
			status, h, body := e.get(t, "/api/services/"+svc+"/users/"+c.user+"/usage?"+c.query, adminToken)
			wantError(t, "unknown user", status, h, body, http.StatusNotFound,
				responseStatus{ErrorCode: "NotFound", Message: "User " + c.user + " not found in service " + svc + c.when})
		}
	})

	t.Run("Binding", func(t *testing.T) {
		// Any date form names the same period (its time of day ignored,
		// after conversion to UTC); parameter names and enums ignore case.
		want := daily(time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC))
		noon := time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC)
		for _, form := range []string{
			"2026-02-10", "2026-02-10T23:59:59Z", "2026-02-11T01:00:00+02:00", "2026-02-10T20:00:00-03:00",
			"2026-02-10 08:00:00", fmt.Sprintf("/Date(%d)/", noon.UnixMilli()), fmt.Sprintf("/Date(%d-0500)/", noon.UnixMilli()),
		} {
			for _, q := range []string{"PeriodType=Daily&Period=", "periodtype=daily&period=", "PERIODTYPE=DAILY&PERIOD="} {
				var got serviceUsage
				e.getJSON(t, sc.usagePath(0)+"?"+q+url.QueryEscape(form), adminToken, &got)
				sc.checkUsage(t, q+form, got, 0, want)
			}
		}
		var got serviceUsage
		e.getJSON(t, sc.usagePath(0)+"?periodtype=monthly&period=2026-02-27", adminToken, &got)
		sc.checkUsage(t, "lowercase", got, 0, monthly(want.start))

		// Any Guid form in the path; the answer's is 32 lowercase hex digits.
		g := sc.services[3].ServiceGuid
		for _, form := range []string{g, strings.ToUpper(g), dashed(g), strings.ToUpper(dashed(g)), "{" + dashed(g) + "}", "(" + dashed(g) + ")"} {
			var got serviceUsage
			e.getJSON(t, "/api/services/"+url.PathEscape(form)+"/serviceusage", sc.partnerKeys[0], &got)
			sc.checkUsage(t, form, got, 3, today)
			var svc serviceDTO
			e.getJSON(t, "/api/services/"+url.PathEscape(form), sc.partnerKeys[0], &svc)
			if svc.ServiceGuid != g {
				t.Errorf("GetService %s: %s", form, svc.ServiceGuid)
			}
		}
	})

	t.Run("CSV", func(t *testing.T) {
		status, h, body := e.get(t, "/api/services/usage?format=csv&PeriodType=Monthly&Period=2026-02-01", adminToken)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		if ct, cd := h.Get("Content-Type"), h.Get("Content-Disposition"); ct != "text/csv; charset=utf-8" || cd != `attachment;filename="GetServicesUsage.csv"` {
			t.Errorf("Content-Type %q, Content-Disposition %q", ct, cd)
		}
		var js page[serviceUsage]
		e.getJSON(t, "/api/services/usage?PeriodType=Monthly&Period=2026-02-01", adminToken, &js)
		rows := readCSV(t, body)
		if strings.Count(string(body), "\r\n") != len(rows) || strings.Count(string(body), "\n") != len(rows) {
			t.Errorf("rows do not all end in CRLF: %q", body)
		}
		header := []string{"ServiceGuid", "Name", "Status", "ServiceCode", "ReferenceId", "PrimaryDomain", "CreatedOn", "TrialEndDate",
			"EffectiveDate", "InitialTerm", "CollectionGuid", "CollectionName", "ClientGuid", "Contact", "Company", "PeriodType", "Period",
			"TotalUserCount", "ProUserCount", "GuestUserCount", "DisabledUserCount", "UnregisteredUserCount",
			"FeatureUsageSecureMessagingGateway", "FeatureUsageSecureMessagingPlus", "FeatureUsageDataLeakPrevention",
			"FeatureUsageSecureLargeFiles", "FeatureUsageSecureForms", "TotalMessageCount", "TotalAttachmentCount", "AttachmentStorageUsage"}
		if !slices.Equal(rows[0], header) {
			t.Fatalf("header\n got %q\nwant %q", rows[0], header)
		}
		if len(rows) != 1+len(js.Results) || len(js.Results) != 6 {
			t.Fatalf("%d rows for %d results", len(rows)-1, len(js.Results))
		}
		feb := monthly(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
		for k, row := range rows[1:] {
			j := js.Results[k]
			col := func(name string) string { return row[slices.Index(header, name)] }
			if col("ServiceGuid") != j.ServiceGuid || col("Name") != j.Name || col("Name") != serviceSpecs[k].name ||
				col("Status") != j.Status || col("CreatedOn") != j.CreatedOn || col("Period") != wireTimeOf(feb.start) ||
				col("PeriodType") != "Monthly" || col("CollectionName") != j.CollectionName || col("ReferenceId") != j.ReferenceId {
				t.Errorf("row %d: %q, JSON %+v", k, row, j)
			}
			// The numbers, read from the CSV, are the JSON's and the oracle's.
			var n usageNumbers
			rn := reflect.ValueOf(&n).Elem()
			for f := range rn.NumField() {
				v, err := strconv.ParseInt(col(rn.Type().Field(f).Name), 10, 64)
				if err != nil {
					t.Fatalf("row %d %s: %v", k, rn.Type().Field(f).Name, err)
				}
				rn.Field(f).SetInt(v)
			}
			if want := sc.o.totals(j.ServiceGuid, feb); n != j.usageNumbers || n != want {
				t.Errorf("row %d:\n CSV %+v\nJSON %+v\nwant %+v", k, n, j.usageNumbers, want)
			}
		}
		// Quoting: only fields holding a quote or comma, quotes doubled.
		for _, want := range []string{`,"Contoso, ""Main"" Office",`, `,"Tailspin ""Toys""",`, `,Fabrikam,`, `,"Woodgrove, ""Bank"", N.A.",`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("CSV lacks %s", want)
			}
		}
		// Nested records are JSV.
		if c := rows[1][slices.Index(header, "Contact")]; c != "{Name:Ann O'Neil,Email:ann@contoso.example.com,PhoneNumber:+1 555 0100}" {
			t.Errorf("Contact %q", c)
		}
		if c := rows[1][slices.Index(header, "Company")]; c != "{Name:\"Contoso, Inc.\",City:Springfield,Country:US}" {
			t.Errorf("Company %q", c)
		}

		// An empty page still has its header.
		_, _, body = e.get(t, "/api/services/usage.csv?PartnerGuid="+sc.partners[1].PartnerGuid, sc.partnerKeys[0])
		if rows := readCSV(t, body); len(rows) != 1 || !slices.Equal(rows[0], header) {
			t.Errorf("empty page: %q", body)
		}
		// A user report's rows are its users.
		_, _, body = e.get(t, "/api/services/"+sc.services[0].ServiceGuid+"/users/usage.csv?"+feb.query(), adminToken)
		urows := readCSV(t, body)
		users := sc.o.users(sc.services[0].ServiceGuid, feb)
		if len(urows) != 1+len(users) || urows[0][0] != "UserGuid" {
			t.Fatalf("users CSV: %q", body)
		}
		for k, u := range users {
			if urows[k+1][0] != u.UserGuid || urows[k+1][slices.Index(urows[0], "TotalMessagesSent")] != strconv.FormatInt(u.TotalMessagesSent, 10) {
				t.Errorf("users CSV row %d: %q, want %+v", k, urows[k+1], u)
			}
		}
	})

	t.Run("Formats", func(t *testing.T) {
		s0, u0 := sc.services[0].ServiceGuid, sc.people[0][2].guid
		routes := []struct{ op, path, first string }{
			{"GetServiceUsage", "/api/services/" + s0 + "/serviceusage", "ServiceGuid"},
			{"GetServicesUsage", "/api/services/usage", "ServiceGuid"},
			{"GetResellerServiceUsage", "/api/resellers/" + sc.resellers[0].ResellerGuid + "/serviceusagelist", "ServiceGuid"},
			{"GetServiceUsersUsage", "/api/services/" + s0 + "/users/usage", "UserGuid"},
			{"GetServiceUserUsage", "/api/services/" + s0 + "/users/" + u0 + "/usage", "ServiceGuid"},
		}
		const q = "PeriodType=Monthly&Period=2026-02-01"
		for _, rt := range routes {
			_, _, jsonBody := e.get(t, rt.path+"?"+q, adminToken)
			f := func(path, accept, want string) {
				t.Helper()
				status, h, body := e.send(t, request{path: path, key: adminToken, header: http.Header{"Accept": {accept}}})
				if status != http.StatusOK {
					t.Fatalf("%s (Accept %q): %d %s", path, accept, status, body)
				}
				if !slices.Contains(h.Values("Vary"), "Accept") {
					t.Errorf("%s: Vary %q", path, h.Values("Vary"))
				}
				ct := h.Get("Content-Type")
				switch want {
				case "json":
					if ct != "application/json; charset=utf-8" || !bytes.Equal(body, jsonBody) {
						t.Errorf("%s (Accept %q): %s %s", path, accept, ct, body)
					}
				case "csv":
					rows := readCSV(t, body)
					if ct != "text/csv; charset=utf-8" || h.Get("Content-Disposition") != `attachment;filename="`+rt.op+`.csv"` || rows[0][0] != rt.first {
						t.Errorf("%s (Accept %q): %s %s", path, accept, ct, body)
					}
				case "xml":
					var root struct {
						XMLName xml.Name
					}
					if err := xml.Unmarshal(body, &root); err != nil || ct != "application/xml; charset=utf-8" ||
						root.XMLName != (xml.Name{Space: "http://schemas.servicestack.net/types", Local: rt.op + "Response"}) {
						t.Errorf("%s (Accept %q): %s %v %s", path, accept, ct, err, body)
					}
				}
			}
			f(rt.path+"?"+q, "", "json")
			f(rt.path+"?"+q, "*/*", "json")
			f(rt.path+".json?"+q, "text/csv", "json")
			f(rt.path+"?format=csv&"+q, "", "csv")
			f(rt.path+".csv?"+q, "", "csv")
			f(rt.path+".CSV?"+q, "", "csv")
			f(rt.path+"?"+q, "text/csv", "csv")
			f(rt.path+"?"+q, "application/json;q=0.5, text/csv", "csv")
			f(rt.path+"?format=xml&"+q, "", "xml")
			f(rt.path+".xml?"+q, "", "xml")
			f(rt.path+"?"+q, "application/xml", "xml")
			f(rt.path+"?"+q, "text/xml", "xml")
			// Precedence: callback > format > suffix > Accept.
			f(rt.path+".xml?format=json&"+q, "text/csv", "json")
			f(rt.path+".xml?FORMAT=csv&"+q, "application/json", "csv")
			f(rt.path+".xml?"+q, "text/csv", "xml")
			status, h, body := e.send(t, request{path: rt.path + ".xml?format=csv&callback=cb&" + q, key: adminToken, header: http.Header{"Accept": {"text/csv"}}})
			if want := "cb(" + string(jsonBody) + ")"; status != http.StatusOK || string(body) != want || h.Get("Content-Type") != "application/javascript; charset=utf-8" {
				t.Errorf("%s JSONP over format, suffix and Accept: %d %s %s", rt.op, status, h.Get("Content-Type"), body)
			}
		}

		// The numbers are the same in every format.
		var js serviceUsage
		e.getJSON(t, routes[0].path+"?"+q, adminToken, &js)
		_, _, body := e.get(t, routes[0].path+".csv?"+q, adminToken)
		rows := readCSV(t, body)
		_, _, body = e.get(t, routes[0].path+".xml?"+q, adminToken)
		var x struct {
			TotalMessageCount      int64
			AttachmentStorageUsage int64
			TotalUserCount         int64
			Name                   string
		}
		if err := xml.Unmarshal(body, &x); err != nil {
			t.Fatal(err)
		}
		csvCol := func(name string) string { return rows[1][slices.Index(rows[0], name)] }
		if csvCol("TotalMessageCount") != strconv.FormatInt(js.TotalMessageCount, 10) || x.TotalMessageCount != js.TotalMessageCount ||
			x.AttachmentStorageUsage != js.AttachmentStorageUsage || x.TotalUserCount != js.TotalUserCount || x.Name != js.Name {
			t.Errorf("formats disagree: JSON %+v, CSV %q, XML %+v", js.usageNumbers, rows, x)
		}
	})

	t.Run("JSONP", func(t *testing.T) {
		path := sc.usagePath(0) + "?PeriodType=Daily&Period=2026-02-10"
		_, _, jsonBody := e.get(t, path, sc.partnerKeys[0])
		f := func(callback, want string) {
			t.Helper()
			status, h, body := e.get(t, path+"&callback="+url.QueryEscape(callback), sc.partnerKeys[0])
			if status != http.StatusOK || string(body) != want+"("+string(jsonBody)+")" {
				t.Errorf("callback %q: %d %.80s…", callback, status, body)
			}
			if ct := h.Get("Content-Type"); ct != "application/javascript; charset=utf-8" {
				t.Errorf("callback %q: Content-Type %q", callback, ct)
			}
		}
		f("cb", "cb")
		f("jQuery123_456.done", "jQuery123_456.done")
		f("alert(document.cookie)//<script>", "alert_document.cookie____script_")
		f("</script><script>alert(1)</script>", "__script__script_alert_1___script_")
		f(`x");evil("`, "x___evil__")
		f("a b\tc\nd", "a_b_c_d")
		f("日本", "__")
		f("cb\u2028", "cb_")

		// An error under JSONP is a 200 whose argument holds the ResponseStatus.
		missing := "00000000000000000000000000000001"
		status, h, body := e.get(t, "/api/services/"+missing+"/serviceusage?callback=alert(1)", adminToken)
		want := `alert_1_({"responseStatus":{"errorCode":"NotFound","message":"Service ` + missing + ` not found","errors":[]}})`
		if status != http.StatusOK || string(body) != want || h.Get("Content-Type") != "application/javascript; charset=utf-8" {
			t.Errorf("JSONP error: %d %s %s", status, h.Get("Content-Type"), body)
		}
		status, _, body = e.get(t, "/api/services/usage?callback=cb&PeriodType=Weekly", adminToken)
		if status != http.StatusOK || !strings.HasPrefix(string(body), `cb({"responseStatus":{"errorCode":"SerializationException"`) {
			t.Errorf("JSONP bind error: %d %s", status, body)
		}
		status, _, body = e.get(t, sc.usagePath(0)+"?callback=cb", "")
		if status != http.StatusOK || string(body) != `cb({"responseStatus":{"errorCode":"Unauthorized","message":"Not Authenticated","errors":[]}})` {
			t.Errorf("JSONP unauthenticated: %d %s", status, body)
		}
	})

	t.Run("ReportErrors", func(t *testing.T) {
		f := func(path, key string, status int, want responseStatus) {
			t.Helper()
			s, h, body := e.get(t, path, key)
			wantError(t, path, s, h, body, status, want)
		}
		s0 := sc.services[0].ServiceGuid
		u := "/api/services/" + s0 + "/users/usage"
		f("/api/services/usage?PeriodType=Weekly", adminToken, 400, bindFailureHint("GetServicesUsage", "PeriodType", "Weekly", periodTypeHint))
		f(sc.usagePath(0)+"?periodType=hourly", adminToken, 400, bindFailureHint("GetServiceUsage", "PeriodType", "hourly", periodTypeHint))
		f(u+"?PeriodType=Yearly", adminToken, 400, bindFailureHint("GetServiceUsersUsage", "PeriodType", "Yearly", periodTypeHint))
		f(sc.usagePath(0)+"?Period=2026-02-30", adminToken, 400, bindFailureHint("GetServiceUsage", "Period", "2026-02-30", dateHint))
		f(sc.usagePath(0)+"?Period=yesterday", adminToken, 400, bindFailureHint("GetServiceUsage", "Period", "yesterday", dateHint))
		f("/api/services/usage?Page=0", adminToken, 400, rangeFailure("GreaterThanOrEqual", "Page", "'Page' must be greater than or equal to '1'; got 0."))
		f("/api/services/usage?PageSize=1001", adminToken, 400, rangeFailure("LessThanOrEqual", "PageSize", "'Page Size' must be less than or equal to '1000'; got 1001."))
		f("/api/services/usage?pagesize=ten", adminToken, 400, bindFailureHint("GetServicesUsage", "PageSize", "ten", "use a whole number from 1 to 1000"))
		f("/api/services/usage?PartnerGuid=acme", adminToken, 400, bindFailure("GetServicesUsage", "PartnerGuid", "acme"))
		f("/api/services/usage?CreatedAfterDateTime=last+week", adminToken, 400, bindFailureHint("GetServicesUsage", "CreatedAfterDateTime", "last week", dateHint))
		f(u+"?UserStatus=Deleted", adminToken, 400, bindFailureHint("GetServiceUsersUsage", "UserStatus", "Deleted", "use one of Active, Disabled"))
		f(u+"?UserGroupType=Admin", adminToken, 400, bindFailureHint("GetServiceUsersUsage", "UserGroupType", "Admin", "use one of Professional, Guest"))
		f(u+"?UserGroupGuid=staff", adminToken, 400, bindFailure("GetServiceUsersUsage", "UserGroupGuid", "staff"))
		f("/api/services/"+s0+"/users/xyz/usage", adminToken, 400, bindFailure("GetServiceUserUsage", "UserGuid", "xyz"))
		f("/api/resellers/abc/serviceusagelist", adminToken, 400, bindFailure("GetResellerServiceUsage", "ResellerGuid", "abc"))
		future := responseStatus{ErrorCode: "LessThanOrEqual", Message: "'Period' must be on or before today (2026-03-10 UTC); got 2026-03-11.",
			Errors: []fieldError{{ErrorCode: "LessThanOrEqual", FieldName: "Period", Message: "'Period' must be on or before today (2026-03-10 UTC); got 2026-03-11."}}}
		f(sc.usagePath(0)+"?Period=2026-03-11", adminToken, 400, future)
		f("/api/services/usage?Period=2026-03-11", adminToken, 400, future)
		f(u+"?PeriodType=Monthly&Period=2026-04-02", adminToken, 400, responseStatus{ErrorCode: "LessThanOrEqual",
			Message: "'Period' must be on or before today (2026-03-10 UTC); got 2026-04-01.",
			Errors:  []fieldError{{ErrorCode: "LessThanOrEqual", FieldName: "Period", Message: "'Period' must be on or before today (2026-03-10 UTC); got 2026-04-01."}}})
	})

	t.Run("StatusChanges", func(t *testing.T) {
		i := 2
		g := sc.services[i].ServiceGuid
		feb := monthly(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
		var before serviceUsage
		e.getJSON(t, sc.usagePath(i)+"?"+feb.query(), adminToken, &before)
		total := func(key string) int {
			t.Helper()
			var p page[serviceUsage]
			e.getJSON(t, "/api/services/usage", key, &p)
			return p.TotalItems
		}
		for _, status := range []string{"Blocked", "Provisioning"} {
			var svc serviceDTO
			e.postJSON(t, "PUT", "/api/services/"+g+"/status", sc.resellerKey[1], map[string]string{"status": strings.ToLower(status)}, &svc)
			if svc.Status != status {
				t.Fatalf("status %q after setting %s", svc.Status, status)
			}
			conflict := responseStatus{ErrorCode: "ServiceStatusConflict",
				Message: "Service " + g + " is " + status + ": usage reports are not available for Blocked or Provisioning services"}
			for _, path := range []string{sc.usagePath(i), sc.usagePath(i) + "?" + feb.query(), sc.usagePath(i) + "/history", "/api/services/" + g + "/users/usage",
				"/api/services/" + g + "/users/" + sc.people[i][0].guid + "/usage"} {
				s, h, body := e.get(t, path, sc.partnerKeys[0])
				wantError(t, status+" "+path, s, h, body, http.StatusConflict, conflict)
			}
			// Under JSONP the conflict is a 200 too.
			s, _, body := e.get(t, sc.usagePath(i)+"?callback=cb", adminToken)
			if want := `cb({"responseStatus":{"errorCode":"ServiceStatusConflict","message":"` + conflict.Message + `","errors":[]}})`; s != http.StatusOK || string(body) != want {
				t.Errorf("JSONP conflict: %d %s", s, body)
			}
			// The lists leave it out; the service itself is still there.
			if n := total(adminToken); n != 5 {
				t.Errorf("%s: the operator's list has %d services, want 5", status, n)
			}
			if n := total(sc.partnerKeys[0]); n != 3 {
				t.Errorf("%s: the partner's list has %d services, want 3", status, n)
			}
			var p page[serviceUsage]
			e.getJSON(t, "/api/resellers/"+sc.resellers[1].ResellerGuid+"/serviceusagelist", adminToken, &p)
			if p.TotalItems != 1 || p.Results[0].ServiceGuid != sc.services[3].ServiceGuid {
				t.Errorf("%s: the reseller's list %+v", status, p)
			}
			e.getJSON(t, "/api/services/"+g, sc.serviceKeys[i], &svc)
			if svc.Status != status {
				t.Errorf("GetService status %q", svc.Status)
			}
		}
		// A service key may not change its own status; the status must be one.
		s, h, body := e.send(t, request{method: "PUT", path: "/api/services/" + g + "/status", key: sc.serviceKeys[i], body: []byte(`{"status":"TrialActive"}`)})
		wantError(t, "service key", s, h, body, http.StatusForbidden, responseStatus{ErrorCode: "Forbidden", Message: "this API key may not do that"})
		s, h, body = e.send(t, request{method: "PUT", path: "/api/services/" + g + "/status", key: sc.partnerKeys[1], body: []byte(`{"status":"TrialActive"}`)})
		wantError(t, "other partner", s, h, body, http.StatusNotFound, notFound(g))
		s, h, body = e.send(t, request{method: "PUT", path: "/api/services/" + g + "/status", key: adminToken, body: []byte(`{"status":"Paused"}`)})
		wantError(t, "bad status", s, h, body, http.StatusBadRequest, bindFailure("UpdateServiceStatus", "Status", "Paused"))
		s, h, body = e.send(t, request{method: "PUT", path: "/api/services/" + g + "/status", key: adminToken})
		wantError(t, "no status", s, h, body, http.StatusBadRequest, responseStatus{ErrorCode: "NotEmpty", Message: "'Status' must not be empty.",
			Errors: []fieldError{{ErrorCode: "NotEmpty", FieldName: "Status", Message: "'Status' must not be empty."}}})

		// Moved back (through the query string), it reappears with the same numbers.
		s, _, body = e.send(t, request{method: "PUT", path: "/api/services/" + g + "/status?Status=DemoAccount", key: adminToken})
		if s != http.StatusOK {
			t.Fatalf("status back: %d %s", s, body)
		}
		var after serviceUsage
		e.getJSON(t, sc.usagePath(i)+"?"+feb.query(), adminToken, &after)
		if !reflect.DeepEqual(after, before) {
			t.Errorf("after the round trip\n got %+v\nwant %+v", after, before)
		}
		if n := total(adminToken); n != 6 {
			t.Errorf("the operator's list has %d services, want 6", n)
		}
		var p page[serviceUsage]
		e.getJSON(t, "/api/services/usage?"+feb.query(), sc.partnerKeys[0], &p)
		sc.checkPage(t, "after", p, all[:4], feb, 1, 25, 4)
	})
}

// readCSV parses a CSV body with encoding/csv, which must accept it.
func readCSV(t *testing.T, body []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("encoding/csv cannot read %q: %v", body, err)
	}
	if len(rows) == 0 {
		t.Fatalf("empty CSV")
	}
	return rows
}

func jsonText(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}
