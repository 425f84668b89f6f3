package demo

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

func servicesConfig(seed uint64) ServicesConfig {
	end := time.Date(2026, 3, 14, 15, 27, 0, 0, time.UTC)
	return ServicesConfig{Seed: seed, Partners: 2, ResellersPerPartner: 2, ServicesPerReseller: 3, UsersPerService: 20,
		Start: end.AddDate(0, 0, -30), End: end}
}

func mustServiceDemo(tb testing.TB, cfg ServicesConfig) *ServiceDemo {
	tb.Helper()
	d, err := NewServiceDemo(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestServicesConfigValidate(t *testing.T) {
	t.Parallel()
	bad := func(mutate func(*ServicesConfig), want ...string) {
		t.Helper()
		cfg := servicesConfig(1)
		mutate(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Fatalf("%+v validated", cfg)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
	bad(func(c *ServicesConfig) { c.Partners, c.UsersPerService = 0, 1 }, "Partners", "UsersPerService")
	bad(func(c *ServicesConfig) { c.End = c.Start }, "End must be after Start")
	bad(func(c *ServicesConfig) { c.Start = time.Time{} }, "required")
	bad(func(c *ServicesConfig) { c.Start = c.End.AddDate(-2, 0, 0) }, "limit is 366 days")
	bad(func(c *ServicesConfig) { c.Partners, c.ResellersPerPartner, c.ServicesPerReseller = 1000, 1000, 1 }, "the limit is 100000")
	if err := servicesConfig(1).Validate(); err != nil {
		t.Fatal(err)
	}
}

// The same seed gives the same hierarchy and the same events; another seed
// gives others.
func TestServiceDemoDeterministic(t *testing.T) {
	t.Parallel()
	a, b := mustServiceDemo(t, servicesConfig(7)), mustServiceDemo(t, servicesConfig(7))
	if !reflect.DeepEqual(a.Partners(), b.Partners()) || !reflect.DeepEqual(a.Services(), b.Services()) {
		t.Fatal("the same seed planned different hierarchies")
	}
	for i := range a.Services() {
		if ea, eb := a.AllActivity(i), b.AllActivity(i); !reflect.DeepEqual(ea, eb) {
			t.Fatalf("service %d: the same seed generated different events (%d and %d)", i, len(ea), len(eb))
		}
	}
	c := mustServiceDemo(t, servicesConfig(8))
	if c.Services()[0].Service.GUID == a.Services()[0].Service.GUID {
		t.Fatal("another seed gave the same service GUID")
	}
	for i := range a.Services() {
		ea, ec := a.AllActivity(i), c.AllActivity(i)
		if len(ea) > 0 && len(ec) > 0 && ea[0].ID == ec[0].ID {
			t.Fatalf("service %d: another seed gave the same first event id", i)
		}
	}
}

// Extending End keeps every event of the days the earlier End completed, so
// that a later run resends them as duplicates.
func TestServiceDemoLaterEndKeepsEarlierDays(t *testing.T) {
	t.Parallel()
	cfg := servicesConfig(3)
	short := mustServiceDemo(t, cfg)
	cfg.End = cfg.End.Add(20 * time.Hour)
	long := mustServiceDemo(t, cfg)
	cut := usage.PeriodOf(usage.Daily, servicesConfig(3).End).Start
	for i := range short.Services() {
		var a, b []usage.Activity
		for _, e := range short.AllActivity(i) {
			if e.Time.Before(cut) {
				a = append(a, e)
			}
		}
		for _, e := range long.AllActivity(i) {
			if e.Time.Before(cut) {
				b = append(b, e)
			}
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("service %d: the days before %s differ with a later End", i, cut)
		}
	}
}

func TestServiceDemoHierarchy(t *testing.T) {
	t.Parallel()
	cfg := servicesConfig(1)
	d := mustServiceDemo(t, cfg)
	if len(d.Partners()) != 2 || len(d.Services()) != 12 {
		t.Fatalf("%d partners, %d services; want 2 and 12", len(d.Partners()), len(d.Services()))
	}
	statuses := map[usage.ServiceStatus]int{}
	guids := map[usage.GUID]bool{}
	masks := map[string]bool{}
	for i, sp := range d.Services() {
		s := sp.Service
		statuses[s.Status]++
		p := d.Partners()[sp.Partner]
		if s.GUID.IsZero() || guids[s.GUID] || s.Name == "" || s.ServiceCode == "" || !strings.Contains(s.PrimaryDomain, ".") ||
			s.Contact.Email == "" || s.Company.Name == "" || s.CreatedOn.After(cfg.End) {
			t.Errorf("service %d is incomplete or repeated: %+v", i, s)
		}
		if sp.Reseller >= len(p.Resellers) || sp.Collection >= len(p.Collections) {
			t.Errorf("service %d points outside its partner: %+v", i, sp)
		}
		if !s.PartnerGUID.IsZero() || !s.ResellerGUID.IsZero() || !s.CollectionGUID.IsZero() {
			t.Errorf("service %d carries hierarchy GUIDs the registry should assign", i)
		}
		if len(sp.Features) == 0 {
			t.Errorf("service %d uses no feature", i)
		}
		masks[fmtFeatures(sp.Features)] = true
		guids[s.GUID] = true
		n := len(d.AllActivity(i))
		if s.Status == usage.StatusProvisioning && n != 0 {
			t.Errorf("Provisioning service %d has %d events", i, n)
		}
		if s.Status != usage.StatusProvisioning && n == 0 {
			t.Errorf("%s service %d has no activity", s.Status, i)
		}
	}
	for _, want := range []usage.ServiceStatus{usage.StatusBlocked, usage.StatusProvisioning, usage.StatusAccountSuspended, usage.StatusTrialExpired} {
		if statuses[want] == 0 {
			t.Errorf("no %s service among %v", want, statuses)
		}
	}
	if inUse := statuses[usage.StatusTrialActive] + statuses[usage.StatusCertifiedSecure] + statuses[usage.StatusDemoAccount]; inUse*2 < len(d.Services()) {
		t.Errorf("only %d of %d services are in use: %v", inUse, len(d.Services()), statuses)
	}
	if len(masks) < 2 {
		t.Errorf("every service uses the same features: %v", masks)
	}
	for _, p := range d.Partners() {
		if len(p.Collections) < 1 || len(p.Collections) > 2 || p.Collections[0].SiteGUID.IsZero() || p.Collections[0].SiteName == "" {
			t.Errorf("partner %q has collections %+v", p.Name, p.Collections)
		}
	}
	// Few services: none of them is refused its reports.
	cfg.Partners, cfg.ResellersPerPartner, cfg.ServicesPerReseller = 1, 1, 3
	for _, sp := range mustServiceDemo(t, cfg).Services() {
		if !sp.Service.Status.Reportable() {
			t.Errorf("a three-service demo has a %s service", sp.Service.Status)
		}
	}
}

func fmtFeatures(fs []usage.Feature) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + " ")
	}
	return b.String()
}

// simUserState is the test's own account of a user, built from the events.
type simUserState struct {
	guest, registered, disabled bool
}

// Every event is well formed and plausible, and every users gauge agrees
// with the user events before it; the storage gauge is the attachment
// bytes sent so far.
func TestServiceDemoEvents(t *testing.T) {
	t.Parallel()
	cfg := servicesConfig(11)
	d := mustServiceDemo(t, cfg)
	var total int
	kinds := map[usage.ActivityKind]int{}
	userEvents := map[usage.UserEvent]int{}
	var internalRecipients, withAttachments, invitedBy int
	for i, sp := range d.Services() {
		users := map[usage.GUID]*simUserState{}
		ids := map[string]bool{}
		var last time.Time
		var storage int64
		var gaugeDays = map[time.Time]bool{}
		for _, e := range d.AllActivity(i) {
			total++
			kinds[e.Kind]++
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("service %d (%s), event %s at %s (%s): %s", i, sp.Service.Status, e.ID, e.Time.Format(time.RFC3339Nano), e.Kind, fmt.Sprintf(format, args...))
			}
			if e.ID == "" || ids[e.ID] {
				fail("id empty or repeated")
			}
			ids[e.ID] = true
			if e.Time.Before(cfg.Start) || !e.Time.Before(cfg.End) || !e.Time.After(last) || e.Time.Location() != time.UTC {
				fail("time outside [%s, %s) or not after the previous event's %s", cfg.Start, cfg.End, last)
			}
			last = e.Time
			if e.Kind < usage.ActivityMessage || e.Kind > usage.ActivityUser {
				fail("kind %d", e.Kind)
			}
			if (e.Kind == usage.ActivityUsers || e.Kind == usage.ActivityStorage) != e.User.IsZero() {
				fail("user %s on a %s event", e.User, e.Kind)
			}
			u := users[e.User]
			switch e.Kind {
			case usage.ActivityMessage:
				if u == nil || !u.registered || u.disabled {
					fail("sender %s is not a registered, enabled user: %+v", e.User, u)
				}
				if len(e.Recipients) > 0 {
					internalRecipients++
				}
				for _, r := range e.Recipients {
					if r.IsZero() || r == e.User || users[r] == nil {
						fail("recipient %s is not another user of the service", r)
					}
				}
				if (e.Attachments == 0) != (e.AttachmentBytes == 0) || e.Attachments < 0 {
					fail("%d attachments of %d bytes", e.Attachments, e.AttachmentBytes)
				}
				if e.Attachments > 0 {
					withAttachments++
				}
				storage += e.AttachmentBytes
			case usage.ActivityFeature:
				if e.Feature < 1 || e.Feature > usage.NumFeatures || !containsFeature(sp.Features, e.Feature) {
					fail("feature %d is not one the service uses (%v)", e.Feature, sp.Features)
				}
				if u == nil || !u.registered || u.disabled {
					fail("feature user %s is not a registered, enabled user", e.User)
				}
			case usage.ActivityUser:
				userEvents[e.UserEvent]++
				switch e.UserEvent {
				case usage.UserCreated, usage.UserInvited:
					if u != nil {
						fail("user %s is %s twice", e.User, e.UserEvent)
					}
					if e.Email == "" || e.GroupType == 0 || e.GroupGUID.IsZero() || e.GroupName == "" {
						fail("%s without the account's details: %+v", e.UserEvent, e)
					}
					if (e.UserEvent == usage.UserInvited) != !e.InvitedBy.IsZero() {
						fail("%s with inviter %s", e.UserEvent, e.InvitedBy)
					}
					if !e.InvitedBy.IsZero() {
						invitedBy++
						if inv := users[e.InvitedBy]; inv == nil || !inv.registered {
							fail("inviter %s is not a registered user", e.InvitedBy)
						}
					}
					users[e.User] = &simUserState{guest: e.GroupType == usage.GroupGuest}
				case usage.UserRegistered:
					if u == nil || u.registered || u.disabled {
						fail("registration of %+v", u)
					}
					u.registered = true
				case usage.UserLogin:
					if u == nil || !u.registered || u.disabled {
						fail("login of %+v", u)
					}
				case usage.UserDisabled:
					if u == nil || u.disabled || e.Status != usage.UserDisabledStatus {
						fail("disabling %+v with status %s", u, e.Status)
					}
					u.disabled = true
				case usage.UserEnabled:
					if u == nil || !u.disabled || e.Status != usage.UserActive {
						fail("enabling %+v with status %s", u, e.Status)
					}
					u.disabled = false
				default:
					fail("user event %d", e.UserEvent)
				}
			case usage.ActivityUsers:
				var want usage.UserCounts
				for _, u := range users {
					want.Total++
					switch {
					case u.disabled:
						want.Disabled++
					case u.guest:
						want.Guest++
					default:
						want.Pro++
					}
					if !u.registered {
						want.Unregistered++
					}
				}
				if e.Users != want {
					fail("users gauge %+v contradicts the user events so far, which make %+v", e.Users, want)
				}
				gaugeDays[usage.PeriodOf(usage.Daily, e.Time).Start] = true
			case usage.ActivityStorage:
				if e.StorageBytes != storage {
					fail("storage gauge %d, but %d attachment bytes were sent", e.StorageBytes, storage)
				}
			}
		}
		if sp.Service.Status != usage.StatusProvisioning {
			// Every whole day has its gauge; so do the partial first and
			// last days, which are longer than two minutes here.
			if want := 31; len(gaugeDays) != want {
				t.Errorf("service %d has users gauges on %d days, want %d", i, len(gaugeDays), want)
			}
		}
	}
	for k := usage.ActivityMessage; k <= usage.ActivityUser; k++ {
		if kinds[k] == 0 {
			t.Errorf("no %s events", k)
		}
	}
	for e := usage.UserCreated; e <= usage.UserInvited; e++ {
		if userEvents[e] == 0 {
			t.Errorf("no %s user events", e)
		}
	}
	if internalRecipients == 0 || withAttachments == 0 || invitedBy == 0 {
		t.Errorf("%d messages to users, %d with attachments, %d invitations", internalRecipients, withAttachments, invitedBy)
	}
	// About 5k events per service a month keeps the demo quick to seed.
	if total < 5_000 || total > 150_000 {
		t.Errorf("%d events for 12 services over 30 days", total)
	}
	t.Logf("%d events: %v; user events %v", total, kinds, userEvents)
}

func containsFeature(fs []usage.Feature, f usage.Feature) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// Activity stops when the consumer does.
func TestServiceDemoActivityStops(t *testing.T) {
	t.Parallel()
	d := mustServiceDemo(t, servicesConfig(1))
	n := 0
	for range d.Activity(0) {
		n++
		if n == 10 {
			break
		}
	}
	if n != 10 {
		t.Fatalf("got %d events", n)
	}
}

func BenchmarkServiceDemoActivity(b *testing.B) {
	d := mustServiceDemo(b, servicesConfig(1))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range d.Services() {
			for range d.Activity(i) {
				n++
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// The NDJSON the demo sends decodes, through the server's own decoder, to
// the events it was written from.
func TestAppendActivityNDJSON(t *testing.T) {
	t.Parallel()
	d := mustServiceDemo(t, servicesConfig(5))
	for i := range d.Services() {
		want := d.AllActivity(i)
		if len(want) == 0 {
			continue
		}
		var body []byte
		for j := range want {
			body = ingest.AppendActivityNDJSON(body, &want[j])
		}
		b, err := ingest.DecodeActivity(body, ingest.FormatNDJSON, ingest.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Errors) > 0 {
			t.Fatalf("service %d: %d events rejected, first: %+v", i, len(b.Errors), b.Errors[0])
		}
		if len(b.Activities) != len(want) {
			t.Fatalf("service %d: decoded %d of %d events", i, len(b.Activities), len(want))
		}
		for j := range want {
			got := b.Activities[j]
			if !got.Time.Equal(want[j].Time) {
				t.Fatalf("event %s: time %s, want %s", want[j].ID, got.Time, want[j].Time)
			}
			got.Time = want[j].Time
			if !reflect.DeepEqual(got, want[j]) {
				t.Fatalf("event decodes as\n%+v\nwant\n%+v", got, want[j])
			}
		}
	}
}
