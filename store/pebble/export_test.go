package pebble_test

import (
	"context"
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

func TestExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dirs{}.open(t, t.TempDir())
	defer db.Close()
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	evs := []usage.Event{
		{ID: "1", Time: h.Add(time.Minute), OrganizationID: "o1", ClientID: "c1", ClientName: "one", TemplateURI: "a", HTTPMethod: "GET", Status: 200},
		{ID: "2", Time: h.Add(2 * time.Minute), OrganizationID: "o1", ClientID: "c1", ClientName: "uno", TemplateURI: "a", HTTPMethod: "GET", Status: 429},
		{ID: "1", Time: h.Add(3 * time.Minute), OrganizationID: "o1", ClientID: "c1", TemplateURI: "a", HTTPMethod: "GET", Status: 200}, // duplicate
		{ID: "1", Time: h.Add(25 * time.Hour), OrganizationID: "o2", ClientID: "c2", UserID: "u", Platform: "p", TemplateURI: "b", HTTPMethod: "PUT", Status: 503},
	}
	if _, err := db.Append(ctx, evs, h.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if active, err := db.HasActivity(ctx); err != nil || active {
		t.Fatalf("HasActivity = %v, %v before any activity", active, err)
	}
	service := usage.NewGUID()
	if _, err := db.AppendActivity(ctx, service, []usage.Activity{{ID: "a1", Time: h, Kind: usage.ActivityStorage, StorageBytes: 5}}, h.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	var groups, days []usage.Row
	var names [][3]string
	var records []pebble.DedupeRecord
	err := db.Export(ctx, pebble.ExportVisitor{
		Groups:      func(r usage.Row) error { groups = append(groups, r); return nil },
		ClientDays:  func(r usage.Row) error { days = append(days, r); return nil },
		ClientNames: func(o, c, n string) error { names = append(names, [3]string{o, c, n}); return nil },
		Dedupe:      func(r pebble.DedupeRecord) error { records = append(records, r); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := []usage.Row{
		{Date: h, OrganizationID: "o1", ClientID: "c1", TemplateURI: "a", HTTPMethod: "GET",
			Counts: usage.Counts{Requests: 2, Status200: 1, Status400: 1, Status429: 1}},
		{Date: h.Add(25 * time.Hour), OrganizationID: "o2", ClientID: "c2", UserID: "u", TemplateURI: "b", HTTPMethod: "PUT", Platform: "p",
			Counts: usage.Counts{Requests: 1, Status500: 1}},
	}
	if !reflect.DeepEqual(groups, wantGroups) {
		t.Errorf("groups\n got %+v\nwant %+v", groups, wantGroups)
	}
	wantDays := []usage.Row{
		{Date: h.Truncate(24 * time.Hour), OrganizationID: "o1", ClientID: "c1", Counts: wantGroups[0].Counts},
		{Date: h.Add(24 * time.Hour).Truncate(24 * time.Hour), OrganizationID: "o2", ClientID: "c2", Counts: wantGroups[1].Counts},
	}
	if !reflect.DeepEqual(days, wantDays) {
		t.Errorf("client days\n got %+v\nwant %+v", days, wantDays)
	}
	if want := [][3]string{{"o1", "c1", "uno"}, {"o2", "c2", ""}}; !reflect.DeepEqual(names, want) {
		t.Errorf("names = %q, want %q", names, want)
	}

	hash := func(id string) (b [12]byte) {
		x := xxh3.HashString128Seed(id, db.Seed())
		binary.BigEndian.PutUint64(b[:8], x.Hi)
		binary.BigEndian.PutUint32(b[8:], uint32(x.Lo))
		return b
	}
	want := map[pebble.DedupeRecord]bool{
		{OrganizationID: "o1", Hash: hash("1"), Hour: h}:                     true,
		{OrganizationID: "o1", Hash: hash("2"), Hour: h}:                     true,
		{OrganizationID: "o2", Hash: hash("1"), Hour: h.Add(25 * time.Hour)}: true,
		{Service: service, Hash: hash("a1"), Hour: h}:                        true,
	}
	if len(records) != len(want) {
		t.Errorf("dedupe records = %+v, want %d", records, len(want))
	}
	for _, r := range records {
		if !want[r] {
			t.Errorf("dedupe record %+v not expected among %+v", r, want)
		}
	}
	if active, err := db.HasActivity(ctx); err != nil || !active {
		t.Fatalf("HasActivity = %v, %v after activity", active, err)
	}
}

func TestExportActivity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dirs{}.open(t, t.TempDir())
	defer db.Close()
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	next := day.AddDate(0, 0, 1)
	service, u1, u2 := usage.GUID{0xaa}, usage.GUID{1}, usage.GUID{2}
	msg := usage.Activity{ID: "m", Time: day.Add(10 * time.Hour), Kind: usage.ActivityMessage, User: u1, Recipients: []usage.GUID{u2}, Attachments: 2, AttachmentBytes: 100}
	users := usage.Activity{ID: "g", Time: day.Add(12 * time.Hour), Kind: usage.ActivityUsers, Users: usage.UserCounts{Total: 3, Pro: 2}}
	storage := usage.Activity{ID: "s", Time: next.Add(time.Hour + time.Nanosecond), Kind: usage.ActivityStorage, StorageBytes: 7}
	registered := usage.Activity{ID: "r", Time: next.Add(2 * time.Hour), Kind: usage.ActivityUser, User: u2, UserEvent: usage.UserRegistered,
		Email: "b@example.com", Status: usage.UserActive, InvitedBy: u1}
	acts := []usage.Activity{msg, msg, {ID: "f", Time: day.Add(11 * time.Hour), Kind: usage.ActivityFeature, User: u1, Feature: usage.FeatureSecureForms},
		storage, users, registered}
	if _, err := db.AppendActivity(ctx, service, acts, day.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	type dayOf[T any] struct {
		service usage.GUID
		day     time.Time
		v       T
	}
	var (
		days       []dayOf[usage.ServiceTally]
		userDays   []dayOf[usage.UserTally]
		gauges     []usage.Activity
		userEvents []usage.Activity
	)
	err := db.Export(ctx, pebble.ExportVisitor{
		ServiceDays: func(s usage.GUID, d time.Time, v usage.ServiceTally) error {
			days = append(days, dayOf[usage.ServiceTally]{s, d, v})
			return nil
		},
		UserDays: func(s usage.GUID, d time.Time, v usage.UserTally) error {
			userDays = append(userDays, dayOf[usage.UserTally]{s, d, v})
			return nil
		},
		Gauges: func(s usage.GUID, a usage.Activity) error {
			if s != service {
				t.Errorf("gauge report %q of service %s, want %s", a.ID, s, service)
			}
			gauges = append(gauges, a)
			return nil
		},
		UserEvents: func(s usage.GUID, a usage.Activity) error {
			if s != service {
				t.Errorf("user event %q of service %s, want %s", a.ID, s, service)
			}
			userEvents = append(userEvents, a)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The message once (its second copy is a duplicate), the feature; the
	// other kinds count nothing for the service.
	wantDays := []dayOf[usage.ServiceTally]{{service, day, usage.ServiceTally{Messages: 1, Attachments: 2, Features: [usage.NumFeatures]int64{4: 1}}}}
	if !reflect.DeepEqual(days, wantDays) {
		t.Errorf("service days\n got %+v\nwant %+v", days, wantDays)
	}
	wantUsers := []dayOf[usage.UserTally]{
		{service, day, usage.UserTally{User: u1, Named: true, Sent: 1, Attachments: 2, AttachmentBytes: 100, LastSent: msg.Time, LastActive: day.Add(11 * time.Hour)}},
		{service, next, usage.UserTally{User: u1, InvitationsAccepted: 1}},
		{service, day, usage.UserTally{User: u2, Received: 1, LastReceived: msg.Time}},
		{service, next, usage.UserTally{User: u2, Named: true, LastActive: registered.Time}},
	}
	if !reflect.DeepEqual(userDays, wantUsers) {
		t.Errorf("user days\n got %+v\nwant %+v", userDays, wantUsers)
	}
	if want := []usage.Activity{users, storage}; !reflect.DeepEqual(gauges, want) {
		t.Errorf("gauges\n got %+v\nwant %+v", gauges, want)
	}
	if want := []usage.Activity{registered}; !reflect.DeepEqual(userEvents, want) {
		t.Errorf("user events\n got %+v\nwant %+v", userEvents, want)
	}
}
