package demo

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/usaged/usaged/usage"
)

// ServicesConfig describes a service-usage demo: partners with their
// resellers and collections, the customer services the resellers sell, and
// what the people using each service do over [Start, End).
type ServicesConfig struct {
	Seed                uint64
	Partners            int
	ResellersPerPartner int
	ServicesPerReseller int
	// UsersPerService is the number of people each service has by End, or
	// would have if it kept its usual pace: about 60% professional users
	// its administrators create, the rest guests they invite by writing to
	// them.
	UsersPerService int
	// Start and End bound the activity times, [Start, End). A day cut by
	// either bound gets the part of its activity that falls inside.
	Start, End time.Time
}

// Limits on a ServicesConfig, to keep a demo's memory and ids bounded.
const (
	MaxPartners            = 1000
	MaxResellersPerPartner = 1000
	MaxServicesPerReseller = 10_000
	MaxServices            = 100_000 // partners × resellers × services
	MinUsersPerService     = 2       // one professional user and one guest
	MaxUsersPerService     = 100_000
	MaxServiceDays         = 366
)

// Validate reports every problem with the configuration.
func (c ServicesConfig) Validate() error {
	var errs []error
	for _, v := range []struct {
		name          string
		val, min, max int
	}{
		{"Partners", c.Partners, 1, MaxPartners},
		{"ResellersPerPartner", c.ResellersPerPartner, 1, MaxResellersPerPartner},
		{"ServicesPerReseller", c.ServicesPerReseller, 1, MaxServicesPerReseller},
		{"UsersPerService", c.UsersPerService, MinUsersPerService, MaxUsersPerService},
	} {
		if v.val < v.min || v.val > v.max {
			errs = append(errs, fmt.Errorf("demo: %s must be from %d to %d, got %d", v.name, v.min, v.max, v.val))
		}
	}
	if n := int64(c.Partners) * int64(c.ResellersPerPartner) * int64(c.ServicesPerReseller); n > MaxServices {
		errs = append(errs, fmt.Errorf("demo: %d partners × %d resellers × %d services is %d services; the limit is %d",
			c.Partners, c.ResellersPerPartner, c.ServicesPerReseller, n, MaxServices))
	}
	switch {
	case c.Start.IsZero() || c.End.IsZero():
		errs = append(errs, errors.New("demo: Start and End are required"))
	case !c.End.After(c.Start):
		errs = append(errs, fmt.Errorf("demo: End must be after Start: got %s/%s", c.Start.UTC().Format(time.RFC3339), c.End.UTC().Format(time.RFC3339)))
	case c.End.Sub(c.Start) > MaxServiceDays*24*time.Hour:
		errs = append(errs, fmt.Errorf("demo: Start to End spans %s; the limit is %d days", c.End.Sub(c.Start), MaxServiceDays))
	}
	return errors.Join(errs...)
}

// PartnerPlan is a partner to create, with its resellers and collections.
// The registry assigns their GUIDs, so services refer to them by position.
type PartnerPlan struct {
	Name        string
	Resellers   []string // names
	Collections []CollectionPlan
}

// CollectionPlan is a collection of a partner, in a site.
type CollectionPlan struct {
	Name     string
	SiteName string
	SiteGUID usage.GUID
}

// ServicePlan is a service to create. Service is complete but for the
// hierarchy GUIDs the registry assigns (PartnerGUID, ResellerGUID,
// CollectionGUID), which Partner, Reseller and Collection locate instead.
// Its GUID is derived from the seed, so that creating it again is detected.
type ServicePlan struct {
	Service    usage.Service
	Partner    int // index into ServiceDemo.Partners
	Reseller   int // index into that partner's Resellers
	Collection int // index into that partner's Collections
	// Features are the features the service's users use.
	Features []usage.Feature
}

// ServiceDemo is a generated service-usage demo. Its plan is immutable, so
// Activity may be called from several goroutines at once.
type ServiceDemo struct {
	cfg      ServicesConfig
	partners []PartnerPlan
	services []ServicePlan
	params   []serviceParams
}

// serviceParams is what drives one service's simulated activity.
type serviceParams struct {
	key         uint64 // derived from the seed and the service's position; keys all of its randomness
	features    uint8  // bit f-1 set: feature f is used
	activeDays  int    // activity stops after this many days of [Start, End); gauges go on
	silent      bool   // no activity at all: the service is still being provisioned
	pace        float64
	domain      string
	guestDomain []string
}

// NewServiceDemo plans the demo of cfg. Everything it produces is a
// function of cfg alone.
func NewServiceDemo(cfg ServicesConfig) (*ServiceDemo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Start, cfg.End = cfg.Start.UTC(), cfg.End.UTC()
	d := &ServiceDemo{cfg: cfg}
	r := &rng{s: hash(cfg.Seed, 0x5e7c)}
	for p := range cfg.Partners {
		pp := PartnerPlan{Name: numbered(partnerNames, p)}
		for x := range cfg.ResellersPerPartner {
			pp.Resellers = append(pp.Resellers, numbered(resellerNames, p*cfg.ResellersPerPartner+x))
		}
		ncol := 1
		if cfg.ResellersPerPartner*cfg.ServicesPerReseller > 1 && r.float() < 0.6 {
			ncol = 2
		}
		for k := range ncol {
			site := siteNames[(p+k)%len(siteNames)]
			pp.Collections = append(pp.Collections, CollectionPlan{
				Name:     collectionNames[(p+k)%len(collectionNames)],
				SiteName: site,
				SiteGUID: guidOf(hash(cfg.Seed, 0x517e, uint64(p), uint64(k)), hash(cfg.Seed, 0x517f, uint64(p), uint64(k))),
			})
		}
		d.partners = append(d.partners, pp)
	}

	n := cfg.Partners * cfg.ResellersPerPartner * cfg.ServicesPerReseller
	statuses := planStatuses(n, r)
	days := int((cfg.End.Sub(cfg.Start) + 24*time.Hour - 1) / (24 * time.Hour))
	names := r.perm(len(companyPrefixes) * len(industries))
	for i := range n {
		p := i / (cfg.ResellersPerPartner * cfg.ServicesPerReseller)
		x := i / cfg.ServicesPerReseller % cfg.ResellersPerPartner
		key := hash(cfg.Seed, 0x5e41, uint64(i))
		sp, par := d.planService(i, key, names, statuses[i], days)
		sp.Partner, sp.Reseller = p, x
		sp.Collection = int(mix(key^0xc011) % uint64(len(d.partners[p].Collections)))
		d.services = append(d.services, sp)
		d.params = append(d.params, par)
	}
	return d, nil
}

// planService describes service i: who the customer is, the status its
// account is in and how its users behave.
func (d *ServiceDemo) planService(i int, key uint64, names []int, status usage.ServiceStatus, days int) (ServicePlan, serviceParams) {
	r := &rng{s: key}
	name := names[i%len(names)]
	prefix, ind := companyPrefixes[name%len(companyPrefixes)], industries[name/len(companyPrefixes)]
	display := prefix + " " + ind.name
	slug := strings.ToLower(strings.NewReplacer(" ", "", "-", "").Replace(prefix)) + ind.slug
	if i >= len(names) {
		// More services than names: later rounds are told apart by number.
		display = fmt.Sprintf("%s %d", display, i/len(names)+1)
		slug = fmt.Sprintf("%s%d", slug, i/len(names)+1)
	}
	city := cities[r.intn(len(cities))]
	domain := slug + city.tld
	first, last := firstNames[r.intn(len(firstNames))], lastNames[r.intn(len(lastNames))]
	initials := initialsOf(display)
	s := usage.Service{
		GUID:          guidOf(hash(key, 0x6d1), hash(key, 0x6d2)),
		Name:          display,
		Status:        status,
		ServiceCode:   fmt.Sprintf("%s-%05d", initials, 10_000+i),
		ReferenceID:   fmt.Sprintf("CRM-%06d", 100_000+int(mix(key^0x4ef)%900_000)),
		PrimaryDomain: domain,
		// Services existed before the demo's activity, most for months.
		CreatedOn:  d.cfg.Start.AddDate(0, 0, -(14 + r.intn(600))).Truncate(time.Second),
		ClientGUID: guidOf(hash(key, 0xc11), hash(key, 0xc12)),
		Contact: usage.Contact{
			Name:        first + " " + last,
			Email:       emailLocal(first, last) + "@" + domain,
			PhoneNumber: fmt.Sprintf("%s 555 01%02d", city.phone, r.intn(100)),
		},
		Company: usage.Company{
			Name:          display + " " + ind.suffix,
			Address:       fmt.Sprintf("%d %s", 10+r.intn(2400), streets[r.intn(len(streets))]),
			City:          city.name,
			StateProvince: city.region,
			PostalCode:    city.postal,
			Country:       city.country,
			Website:       "https://www." + domain,
		},
	}
	par := serviceParams{key: key, activeDays: days, pace: math.Exp(0.35*r.norm() - 0.06), domain: domain}
	par.guestDomain = append(par.guestDomain, personalDomains...)
	// Guests are mostly the customers' own clients and counterparts.
	for range 3 {
		o := companyPrefixes[r.intn(len(companyPrefixes))]
		par.guestDomain = append(par.guestDomain, strings.ToLower(strings.ReplaceAll(o, " ", ""))+industries[r.intn(len(industries))].slug+".com")
	}
	day := func(t time.Time) time.Time { return usage.PeriodOf(usage.Daily, t).Start }
	switch status {
	case usage.StatusTrialActive:
		s.TrialEndDate = day(d.cfg.End.AddDate(0, 0, 5+r.intn(25)))
	case usage.StatusTrialExpired, usage.StatusAccountSuspended, usage.StatusAccountCancelled, usage.StatusBlocked:
		// The account stopped being used part way through the window.
		par.activeDays = max(1, days/3+r.intn(max(1, days/3)))
		if status == usage.StatusTrialExpired {
			s.TrialEndDate = day(d.cfg.Start.AddDate(0, 0, par.activeDays))
		}
	case usage.StatusProvisioning:
		par.silent = true
		s.CreatedOn = d.cfg.End.Add(-time.Duration(1+r.intn(20)) * time.Hour).Truncate(time.Second)
	case usage.StatusCertifiedSecure:
		s.EffectiveDate = day(s.CreatedOn.AddDate(0, 0, 30))
		s.InitialTerm = []int{12, 12, 24, 36}[r.intn(4)]
	}
	// Different customers buy different features: the gateway is nearly
	// universal, the others are add-ons.
	for f, p := range [usage.NumFeatures]float64{0.8, 0.5, 0.45, 0.35, 0.3} {
		if r.float() < p {
			par.features |= 1 << f
		}
	}
	if par.features == 0 {
		par.features = 1 << (i % usage.NumFeatures)
	}
	sp := ServicePlan{Service: s}
	for f := range usage.NumFeatures {
		if par.features&(1<<f) != 0 {
			sp.Features = append(sp.Features, usage.Feature(f+1))
		}
	}
	return sp, par
}

// planStatuses assigns the statuses of n services: mostly ones in use
// (CertifiedSecure, TrialActive, DemoAccount); from four services on, one
// Blocked and one Provisioning, whose reports are refused; from eight on,
// a suspended account and an expired trial; from twelve on, a cancelled
// account; and a few more of those in larger demos. Positions are shuffled.
func planStatuses(n int, r *rng) []usage.ServiceStatus {
	st := make([]usage.ServiceStatus, n)
	for i := range st {
		switch u := r.float(); {
		case u < 0.45:
			st[i] = usage.StatusCertifiedSecure
		case u < 0.8:
			st[i] = usage.StatusTrialActive
		default:
			st[i] = usage.StatusDemoAccount
		}
	}
	var rare []usage.ServiceStatus
	if n >= 4 {
		rare = append(rare, usage.StatusBlocked, usage.StatusProvisioning)
	}
	if n >= 8 {
		rare = append(rare, usage.StatusAccountSuspended, usage.StatusTrialExpired)
	}
	if n >= 12 {
		rare = append(rare, usage.StatusAccountCancelled)
	}
	more := []usage.ServiceStatus{usage.StatusAccountSuspended, usage.StatusTrialExpired, usage.StatusBlocked, usage.StatusProvisioning}
	for k := 24; k <= n; k += 12 {
		rare = append(rare, more[(k/12)%len(more)])
	}
	perm := r.perm(n)
	for j, s := range rare {
		st[perm[j]] = s
	}
	return st
}

// Partners returns the partners to create, in order.
func (d *ServiceDemo) Partners() []PartnerPlan { return d.partners }

// Services returns the services to create, in order: by partner, then
// reseller.
func (d *ServiceDemo) Services() []ServicePlan { return d.services }

// Config returns the configuration the demo was planned from, with Start
// and End in UTC.
func (d *ServiceDemo) Config() ServicesConfig { return d.cfg }

// Activity yields the activity events of service i (in Services order), in
// strictly increasing time, all in [Start, End). It simulates the service
// one UTC day at a time, so its memory is that of one day's events and the
// service's users.
//
// Each day the service's professional users are created by its
// administrators and register; registered users log in, send messages to
// colleagues and to outsiders, some of whom are thereby invited as guests
// and register in turn, use the service's features, and now and then are
// disabled and enabled again. A users gauge and a storage gauge close every
// day (but a sliver of a day under two minutes long): the users gauge counts
// the users the user events so far have made known — Total, of which Pro
// and Guest are enabled, Disabled are not, and Unregistered have not
// registered yet — and the storage gauge is the bytes of every attachment
// sent so far. A Provisioning service has no activity; one whose account
// was suspended, cancelled, blocked or whose trial expired stops being used
// part way through, though its gauges go on.
//
// Event ids are derived from the seed, the service and the event's position
// in the service's stream: the same config yields the same events, and
// since a day's events do not depend on later days, a later End keeps the
// events of every day the earlier End completed.
func (d *ServiceDemo) Activity(i int) iter.Seq[usage.Activity] {
	return func(yield func(usage.Activity) bool) {
		par := &d.params[i]
		if par.silent {
			return
		}
		s := newSim(d, i)
		const dayMs = 24 * 3600_000
		start, end := d.cfg.Start.UnixMilli(), d.cfg.End.UnixMilli()
		for day := floorDiv(start, dayMs); day*dayMs < end; day++ {
			from, to := max(day*dayMs, start), min((day+1)*dayMs, end)
			for _, a := range s.day(day, from, to) {
				if !yield(a) {
					return
				}
			}
		}
	}
}

// AllActivity returns every activity event of service i, as Activity yields
// them.
func (d *ServiceDemo) AllActivity(i int) []usage.Activity {
	var out []usage.Activity
	for a := range d.Activity(i) {
		out = append(out, a)
	}
	return out
}

// A simUser is one person of a service's user pool.
type simUser struct {
	guid               usage.GUID
	first, last, email string
	pro                bool
	group              int8 // index into the service's groups
	state              int8 // unknown, then known (created or invited), then registered
	disabled           bool
	invitedBy          int32 // the inviting user's index, -1 when none
	activity           float64
}

const (
	userUnknown int8 = iota
	userKnown
	userRegistered
)

// sim is the state of one service's simulation.
type sim struct {
	d        *ServiceDemo
	par      *serviceParams
	r        rng
	users    []simUser
	known    []int32 // indexes of known users, in the order they became known
	nPro     int
	nextPro  int // the next professional user to create
	nextGst  int // the next guest to invite
	groups   [4]usage.GUID
	storage  int64
	startDay int64
	onboard  bool   // the first administrators have been created
	n        uint64 // events emitted so far: the position that keys the next id
	last     int64  // time of the latest event, Unix ms
	queue    actions
	seq      uint32
	out      []usage.Activity
}

// groupNames are the user groups of every service; guests have their own.
var groupNames = [4]string{"Staff", "Management", "Operations", "Guests"}

// guestGroup is the index of the guests' group in groupNames.
const guestGroup = 3

// newSim starts the simulation of service i: its pool of people, none of
// them known to the service yet.
func newSim(d *ServiceDemo, i int) *sim {
	par := &d.params[i]
	s := &sim{d: d, par: par, r: rng{s: hash(par.key, 0xac7)}, last: math.MinInt64}
	s.startDay = floorDiv(d.cfg.Start.UnixMilli(), 24*3600_000)
	u := d.cfg.UsersPerService
	s.nPro = max(1, min(u-1, int(math.Round(0.6*float64(u)))))
	s.nextGst = s.nPro
	for g := range s.groups {
		s.groups[g] = guidOf(hash(par.key, 0x960, uint64(g)), hash(par.key, 0x961, uint64(g)))
	}
	ur := rng{s: hash(par.key, 0x05e)}
	s.users = make([]simUser, u)
	for j := range s.users {
		x := &s.users[j]
		x.guid = guidOf(hash(par.key, 0x05e1, uint64(j)), hash(par.key, 0x05e2, uint64(j)))
		x.first, x.last = firstNames[ur.intn(len(firstNames))], lastNames[ur.intn(len(lastNames))]
		x.pro = j < s.nPro
		x.invitedBy = -1
		x.activity = math.Exp(0.5*ur.norm() - 0.125)
		local := emailLocal(x.first, x.last)
		if x.pro {
			x.email = fmt.Sprintf("%s%d@%s", local, j, par.domain)
			x.group = int8(min(2, ur.intn(5)/2)) // mostly Staff
		} else {
			x.email = fmt.Sprintf("%s%d@%s", local, j, par.guestDomain[ur.intn(len(par.guestDomain))])
			x.group = guestGroup
		}
	}
	return s
}

// The kinds of scheduled action.
const (
	actCreate uint8 = iota + 1
	actRegister
	actLogin
	actMessage
	actFeature
	actDisable
	actEnable
)

// action is something a user may do at a time, decided on when it comes.
type action struct {
	t    int64 // Unix ms
	seq  uint32
	kind uint8
	arg  uint8 // the feature, for actFeature; onboarding or 0, for actCreate
	user int32 // -1: chosen when the action happens
}

// onboarding marks the creation of a user who was on the team before the
// window: they register at once.
const onboarding uint8 = 1

// actions is a min-heap of actions by time, then scheduling order.
type actions []action

// Len is part of heap.Interface.
func (q actions) Len() int { return len(q) }

// Less is part of heap.Interface: earlier first, then first scheduled.
func (q actions) Less(i, j int) bool {
	return q[i].t < q[j].t || q[i].t == q[j].t && q[i].seq < q[j].seq
}

// Swap is part of heap.Interface.
func (q actions) Swap(i, j int) { q[i], q[j] = q[j], q[i] }

// Push is part of heap.Interface.
func (q *actions) Push(x any) { *q = append(*q, x.(action)) }

// Pop is part of heap.Interface.
func (q *actions) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}

// schedule queues an action at t, after those already queued at t.
func (s *sim) schedule(t int64, kind, arg uint8, user int32) {
	s.seq++
	heap.Push(&s.queue, action{t: t, seq: s.seq, kind: kind, arg: arg, user: user})
}

// serviceWeekly is the relative activity of each weekday, Sunday first:
// secure messaging is office work.
var serviceWeekly = [7]float64{0.18, 1.05, 1.1, 1.1, 1.05, 0.95, 0.22}

// Rates per registered, enabled user per weekday.
var (
	featureRates = [usage.NumFeatures]float64{1.4, 0.8, 0.9, 0.2, 0.4}
	proMessages  = 4.0
	gstMessages  = 0.5
)

// margin keeps a day's actions clear of its closing gauges.
const margin = 60_000

// day simulates the part [from, to) of a UTC day and returns its events,
// valid until the next call.
func (s *sim) day(day, from, to int64) []usage.Activity {
	s.out = s.out[:0]
	if to-from < 2*margin {
		return s.out
	}
	limit := to - margin
	w := serviceWeekly[(day+4)%7] * s.par.pace // 1970-01-01 was a Thursday
	active := int(day-s.startDay) < s.par.activeDays
	if active {
		s.plan1(day, from, limit, w)
	}
	for s.queue.Len() > 0 {
		a := heap.Pop(&s.queue).(action)
		s.act(a, limit)
	}
	s.gauges(to)
	return s.out
}

// plan1 schedules a day's actions; what each does is decided when it
// happens, from the state then.
func (s *sim) plan1(day, from, limit int64, w float64) {
	r := &s.r
	if !s.onboard {
		// The services were in use before the window, but the gauges may
		// count only users the events make known: the existing staff is
		// created in the window's first hours and registers soon after.
		s.onboard = true
		n := max(1, int(math.Ceil(0.7*float64(s.nPro))))
		for range n {
			s.schedule(from+int64(r.float()*float64(min(limit, from+3*3600_000)-from)), actCreate, onboarding, -1)
		}
	}
	for range s.nPro - s.nextPro {
		if r.float() < 0.05*w {
			s.schedule(s.when(from, limit), actCreate, 0, -1)
		}
	}
	for _, j := range s.known {
		u := &s.users[j]
		switch {
		case u.disabled:
			if r.float() < 0.12 {
				s.schedule(s.when(from, limit), actEnable, 0, j)
			}
		case u.state == userKnown:
			p := 0.25
			if u.pro {
				p = 0.5
			}
			if r.float() < p {
				s.schedule(s.when(from, limit), actRegister, 0, j)
			}
		case u.state == userRegistered:
			lw := w * u.activity
			if r.float() < min(0.95, 0.75*lw) {
				s.schedule(s.when(from, limit), actLogin, 0, j)
				if r.float() < 0.25 {
					s.schedule(s.when(from, limit), actLogin, 0, j)
				}
			}
			rate := gstMessages
			if u.pro {
				rate = proMessages
			}
			for range r.poisson(rate * lw) {
				s.schedule(s.when(from, limit), actMessage, 0, j)
			}
			for f := range usage.NumFeatures {
				if s.par.features&(1<<f) == 0 || !u.pro && f != int(usage.FeatureSecureForms-1) {
					continue
				}
				for range r.poisson(featureRates[f] * lw) {
					s.schedule(s.when(from, limit), actFeature, uint8(f+1), j)
				}
			}
		}
	}
	if len(s.known) > 3 && r.float() < 0.06 {
		s.schedule(s.when(from, limit), actDisable, 0, -1)
	}
}

// when draws a time in [from, limit) following the daily rhythm.
func (s *sim) when(from, limit int64) int64 {
	span := float64(limit - from)
	var t int64
	for range 8 {
		t = from + int64(s.r.float()*span)
		if s.r.float()*maxDiurnal < diurnal[floorDiv(t, 3600_000)%24] {
			break
		}
	}
	return t
}

// maxDiurnal is the peak of diurnal, against which when rejection-samples.
var maxDiurnal = func() float64 {
	m := 0.0
	for _, v := range diurnal {
		m = max(m, v)
	}
	return m
}()

// act carries out one action, if the state still allows it.
func (s *sim) act(a action, limit int64) {
	r := &s.r
	switch a.kind {
	case actCreate:
		if s.nextPro >= s.nPro {
			return
		}
		j := int32(s.nextPro)
		s.nextPro++
		u := &s.users[j]
		u.state = userKnown
		s.known = append(s.known, j)
		s.emit(a.t, s.account(j, usage.UserCreated))
		p, wait := 0.6, 6*3600_000
		if a.arg == onboarding {
			p, wait = 0.95, 3600_000
		}
		if r.float() < p {
			if t := a.t + 120_000 + int64(r.intn(wait)); t < limit {
				s.schedule(t, actRegister, 0, j)
			}
		}
	case actRegister:
		u := &s.users[a.user]
		if u.state != userKnown || u.disabled {
			return
		}
		u.state = userRegistered
		ev := usage.Activity{Kind: usage.ActivityUser, User: u.guid, UserEvent: usage.UserRegistered}
		if u.invitedBy >= 0 {
			ev.InvitedBy = s.users[u.invitedBy].guid
		}
		s.emit(a.t, ev)
	case actLogin, actFeature:
		u := &s.users[a.user]
		if u.state != userRegistered || u.disabled {
			return
		}
		if a.kind == actLogin {
			s.emit(a.t, usage.Activity{Kind: usage.ActivityUser, User: u.guid, UserEvent: usage.UserLogin})
		} else {
			s.emit(a.t, usage.Activity{Kind: usage.ActivityFeature, User: u.guid, Feature: usage.Feature(a.arg)})
		}
	case actMessage:
		s.message(a, limit)
	case actDisable:
		// Anyone registered and enabled but the first administrator.
		for range 8 {
			j := s.known[r.intn(len(s.known))]
			u := &s.users[j]
			if j != 0 && u.state == userRegistered && !u.disabled {
				u.disabled = true
				s.emit(a.t, usage.Activity{Kind: usage.ActivityUser, User: u.guid, UserEvent: usage.UserDisabled, Status: usage.UserDisabledStatus})
				return
			}
		}
	case actEnable:
		u := &s.users[a.user]
		if !u.disabled {
			return
		}
		u.disabled = false
		s.emit(a.t, usage.Activity{Kind: usage.ActivityUser, User: u.guid, UserEvent: usage.UserEnabled, Status: usage.UserActive})
	}
}

// account is the created or invited event of user j, with their details.
func (s *sim) account(j int32, e usage.UserEvent) usage.Activity {
	u := &s.users[j]
	gt := usage.GroupGuest
	if u.pro {
		gt = usage.GroupProfessional
	}
	return usage.Activity{
		Kind: usage.ActivityUser, User: u.guid, UserEvent: e,
		Email: u.email, FirstName: u.first, LastName: u.last,
		GroupName: groupNames[u.group], GroupGUID: s.groups[u.group], GroupType: gt,
		Status: usage.UserActive,
	}
}

// message sends a message from a.user: to colleagues, and to outsiders, a
// few of whom professional senders thereby invite as guests.
func (s *sim) message(a action, limit int64) {
	r := &s.r
	u := &s.users[a.user]
	if u.state != userRegistered || u.disabled {
		return
	}
	var internal, external int
	if u.pro {
		internal = pick(recipientsCDF, r.float())
		external = pick(externalCDF, r.float())
	} else {
		internal = 1 // a guest replies
	}
	if internal+external == 0 {
		internal = 1
	}
	ev := usage.Activity{Kind: usage.ActivityMessage, User: u.guid}
	has := func(g usage.GUID) bool {
		for _, x := range ev.Recipients {
			if x == g {
				return true
			}
		}
		return g == u.guid
	}
	for range internal {
		var j int32 = -1
		if !u.pro && u.invitedBy >= 0 && len(ev.Recipients) == 0 {
			j = u.invitedBy
		} else {
			for range 4 {
				c := s.known[r.intn(len(s.known))]
				if !s.users[c].disabled && !has(s.users[c].guid) {
					j = c
					break
				}
			}
		}
		if j >= 0 && !has(s.users[j].guid) {
			ev.Recipients = append(ev.Recipients, s.users[j].guid)
		}
	}
	for range external {
		if s.nextGst >= len(s.users) || r.float() >= 0.35 {
			continue // stays an external recipient, which is not kept
		}
		g := int32(s.nextGst)
		s.nextGst++
		s.users[g].state = userKnown
		s.users[g].invitedBy = a.user
		s.known = append(s.known, g)
		inv := s.account(g, usage.UserInvited)
		inv.InvitedBy = u.guid
		s.emit(a.t, inv)
		ev.Recipients = append(ev.Recipients, s.users[g].guid)
		if r.float() < 0.4 {
			if t := a.t + 600_000 + int64(r.intn(10*3600_000)); t < limit {
				s.schedule(t, actRegister, 0, g)
			}
		}
	}
	if r.float() < 0.3 {
		n := 1 + r.intn(3)
		ev.Attachments = int64(n)
		for range n {
			ev.AttachmentBytes += min(25<<20, max(2_000, int64(250_000*math.Exp(1.1*r.norm()))))
		}
		if s.par.features&(1<<(usage.FeatureSecureLargeFiles-1)) != 0 && r.float() < 0.05 {
			ev.Attachments++
			ev.AttachmentBytes += 50<<20 + int64(r.intn(1<<30))
		}
		s.storage += ev.AttachmentBytes
	}
	s.emit(a.t, ev)
}

var (
	recipientsCDF = normalizeCDF([]float64{0.25, 0.45, 0.2, 0.1}) // colleagues per message
	externalCDF   = normalizeCDF([]float64{0.45, 0.4, 0.15})      // outsiders per message
)

// gauges closes a day that ends at to with the users and storage gauges.
func (s *sim) gauges(to int64) {
	var c usage.UserCounts
	for _, j := range s.known {
		u := &s.users[j]
		c.Total++
		switch {
		case u.disabled:
			c.Disabled++
		case u.pro:
			c.Pro++
		default:
			c.Guest++
		}
		if u.state != userRegistered {
			c.Unregistered++
		}
	}
	s.emit(to-2, usage.Activity{Kind: usage.ActivityUsers, Users: c})
	s.emit(to-1, usage.Activity{Kind: usage.ActivityStorage, StorageBytes: s.storage})
}

// emit appends an event at t, or just after the previous one: times
// strictly increase, so that (time, id) order is emission order.
func (s *sim) emit(t int64, a usage.Activity) {
	t = max(t, s.last+1)
	s.last = t
	a.Time = time.UnixMilli(t).UTC()
	x := mix(s.n ^ s.par.key)
	a.ID = uuid(mix(x^s.d.cfg.Seed^0xac71), x)
	s.n++
	s.out = append(s.out, a)
}

// poisson draws a Poisson variate of mean lambda.
func (r *rng) poisson(lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return max(0, int(lambda+math.Sqrt(lambda)*r.norm()+0.5))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.float()
		if p <= l {
			return k
		}
		k++
	}
}

// perm returns a random permutation of [0, n).
func (r *rng) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		j := r.intn(i + 1)
		p[i] = p[j]
		p[j] = i
	}
	return p
}

// guidOf makes a version-4-shaped GUID of 128 generated bits.
func guidOf(hi, lo uint64) usage.GUID {
	var g usage.GUID
	binary.BigEndian.PutUint64(g[:8], hi)
	binary.BigEndian.PutUint64(g[8:], lo)
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// numbered returns names[i], with a number once the list runs out.
func numbered(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s %d", names[i%len(names)], i/len(names)+1)
}

// emailLocal is the local part of a person's address: first.last in lower
// case, without apostrophes.
func emailLocal(first, last string) string {
	return strings.ToLower(strings.ReplaceAll(first+"."+last, "'", ""))
}

// initialsOf returns the capitals starting the words of s.
func initialsOf(s string) string {
	var b strings.Builder
	for _, w := range strings.Fields(s) {
		if c := w[0]; c >= 'A' && c <= 'Z' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Names the demo draws from. They are invented; any likeness is chance.
var (
	partnerNames = []string{
		"Northbridge Telecom", "Atlas Cloud Partners", "Keystone Managed Services", "Bluebird Communications",
		"Meridian Networks", "Crestline Technology Group", "Harborview Systems", "Lighthouse Digital",
	}

	resellerNames = []string{
		"Secure Office Supply", "Prairie IT Solutions", "Coastal Computer Services", "Metro Business Technology",
		"Summit Secure Mail", "Granite State IT", "Lakeside Networks", "Capital Region Tech",
		"Pioneer Data Systems", "Riverside Managed IT", "Evergreen Cloud Services", "Frontier Office Systems",
	}

	collectionNames = []string{"Professional Services", "Healthcare", "Financial Services", "Public Sector", "Small Business"}

	siteNames = []string{"US East", "Canada Central", "EU West", "US West"}

	companyPrefixes = []string{
		"Northwind", "Bluewater", "Cedar Ridge", "Harbor", "Summit", "Ironwood", "Maple Leaf", "Silverline",
		"Redstone", "Lakeshore", "Granite", "Brightpath", "Oakmont", "Pinecrest", "Riverbend", "Stonebridge",
		"Clearview", "Evergreen", "Highland", "Westbrook", "Fairview", "Goldcrest", "Kingsway", "Norwood",
		"Parkside", "Rockport", "Sterling", "Trident", "Vantage", "Whitfield", "Ashford", "Beacon",
	}

	industries = []struct{ name, slug, suffix string }{
		{"Legal", "law", "LLP"}, {"Health", "health", "Inc."}, {"Dental", "dental", "PC"},
		{"Financial", "financial", "Inc."}, {"Insurance", "insurance", "Ltd."}, {"Accounting", "cpa", "LLP"},
		{"Realty", "realty", "Inc."}, {"Engineering", "eng", "Ltd."}, {"Clinic", "clinic", "Inc."},
		{"Wealth", "wealth", "Inc."}, {"Logistics", "logistics", "Corp."}, {"Credit Union", "cu", "Ltd."},
		{"Pharmacy", "rx", "Inc."}, {"Architects", "arch", "LLP"}, {"Consulting", "consulting", "Group"},
	}

	cities = []struct{ name, region, postal, country, tld, phone string }{
		{"Toronto", "ON", "M5V 2T6", "Canada", ".ca", "+1 416"},
		{"Vancouver", "BC", "V6B 1A1", "Canada", ".ca", "+1 604"},
		{"Ottawa", "ON", "K1P 5G4", "Canada", ".ca", "+1 613"},
		{"Boston", "MA", "02110", "United States", ".com", "+1 617"},
		{"Chicago", "IL", "60601", "United States", ".com", "+1 312"},
		{"Denver", "CO", "80202", "United States", ".com", "+1 303"},
		{"Austin", "TX", "78701", "United States", ".com", "+1 512"},
		{"Seattle", "WA", "98101", "United States", ".com", "+1 206"},
		{"London", "", "EC2A 4NE", "United Kingdom", ".co.uk", "+44 20"},
		{"Dublin", "", "D02 X285", "Ireland", ".ie", "+353 1"},
	}

	streets = []string{"Main Street", "King Street West", "Market Street", "Bay Street", "Elm Avenue", "Commerce Drive", "Harbour Road", "Park Lane"}

	personalDomains = []string{"gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me"}

	firstNames = []string{
		"Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Sophia", "Ethan", "Mia", "Mason", "Chloe", "Logan",
		"Amelia", "Owen", "Harper", "Jacob", "Zoe", "Wei", "Priya", "Mateo", "Aisha", "Hiroshi", "Fatima", "Sean",
		"Isabelle", "Raj", "Elena", "Omar", "Grace", "Daniel",
	}

	lastNames = []string{
		"Smith", "Tremblay", "Nguyen", "Patel", "Johnson", "Roy", "Garcia", "Wilson", "Martin", "Chen", "Brown",
		"Gagnon", "Singh", "Taylor", "Kim", "Anderson", "Lee", "Walker", "Murphy", "Lopez", "Campbell", "Khan",
		"O'Brien", "Fraser", "Morin", "Clarke", "Ahmed", "Scott", "Young", "Hughes",
	}
)
