package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// fakeActivities records activity with the dedupe semantics of
// store.ActivityAppender.AppendActivity and nothing else: the real stores are held
// to the whole contract by the conformance suite.
type fakeActivities struct {
	store.EventAppender // unused by activity ingest; nil, so that a use fails loudly

	mu   sync.Mutex
	ids  map[usage.GUID]map[string]time.Time // event times by service and id
	kept []usage.Activity
	err  error // returned by AppendActivity when set
}

func (s *fakeActivities) AppendActivity(_ context.Context, service usage.GUID, events []usage.Activity, dedupeFrom time.Time) ([]usage.Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.ids == nil {
		s.ids = make(map[usage.GUID]map[string]time.Time)
	}
	ids := s.ids[service]
	if ids == nil {
		ids = make(map[string]time.Time)
		s.ids[service] = ids
	}
	outs := make([]usage.Outcome, len(events))
	inBatch := make(map[string]bool)
	for i, a := range events {
		t, ok := ids[a.ID]
		if inBatch[a.ID] || ok && !t.Before(dedupeFrom) {
			outs[i] = usage.Duplicate
			continue
		}
		inBatch[a.ID] = true
		ids[a.ID] = a.Time
		s.kept = append(s.kept, a)
	}
	return outs, nil
}

func mustActivityPipeline(tb testing.TB) (*ingest.Pipeline, *fakeActivities) {
	tb.Helper()
	fake := &fakeActivities{}
	p, err := ingest.New(ingest.Config{Store: fake, Services: fake, Now: func() time.Time { return now }})
	if err != nil {
		tb.Fatal(err)
	}
	return p, fake
}

// mustDecodeActivity decodes body or fails the test.
func mustDecodeActivity(tb testing.TB, body string, f ingest.Format) *ingest.ActivityBatch {
	tb.Helper()
	b, err := ingest.DecodeActivity([]byte(body), f, ingest.Limits{})
	if err != nil {
		tb.Fatalf("DecodeActivity(%q): %v", body, err)
	}
	return b
}

var (
	service = mustGUID("6f1c2a7e-0d3b-4f5a-9c8e-1b2d3e4f5a60")
	alice   = mustGUID("a11ce000-0000-4000-8000-000000000001")
	bob     = mustGUID("b0b00000-0000-4000-8000-000000000002")
)

func mustGUID(s string) usage.GUID {
	g, err := usage.ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// act returns a valid activity event of type typ, with its required
// properties, then the kv pairs (name, raw JSON value) replacing or adding
// properties; an empty value removes the property.
func act(typ string, kv ...string) string {
	props := [][2]string{{"id", `"a1"`}, {"time", `"2026-06-15T11:00:00Z"`}, {"type", fmt.Sprintf("%q", typ)}}
	switch typ {
	case "message":
		props = append(props, [2]string{"userGuid", `"a11ce000-0000-4000-8000-000000000001"`})
	case "feature":
		props = append(props, [2]string{"userGuid", `"a11ce000-0000-4000-8000-000000000001"`}, [2]string{"feature", `"SecureForms"`})
	case "users":
		props = append(props, [2]string{"total", "3"}, [2]string{"pro", "2"}, [2]string{"guest", "1"}, [2]string{"disabled", "0"}, [2]string{"unregistered", "0"})
	case "storage":
		props = append(props, [2]string{"bytes", "100"})
	case "user":
		props = append(props, [2]string{"userGuid", `"a11ce000-0000-4000-8000-000000000001"`}, [2]string{"event", `"login"`})
	}
	for i := 0; i+1 < len(kv); i += 2 {
		j := 0
		for j < len(props) && props[j][0] != kv[i] {
			j++
		}
		if j == len(props) {
			props = append(props, [2]string{kv[i], ""})
		}
		props[j][1] = kv[i+1]
	}
	var b strings.Builder
	b.WriteString("{")
	for _, p := range props {
		if p[1] == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%q:%s", p[0], p[1])
	}
	b.WriteString("}")
	return b.String()
}

func TestActivityOutcomes(t *testing.T) {
	f := func(event, code, inMessage string) {
		t.Helper()
		p, fake := mustActivityPipeline(t)
		res, err := ingestActivity(t.Context(), p, service, mustDecodeActivity(t, "["+event+"]", ingest.FormatJSON))
		if err != nil {
			t.Fatal(err)
		}
		if code == "" {
			if res.Accepted != 1 || len(res.Errors) != 0 || len(fake.kept) != 1 {
				t.Fatalf("%s: got %+v, want it accepted", event, res)
			}
			return
		}
		if res.Rejected != 1 || len(res.Errors) != 1 || res.Accepted+res.Duplicates != 0 {
			t.Fatalf("%s: got %+v, want one rejection", event, res)
		}
		e := res.Errors[0]
		if e.Code != code || !strings.Contains(e.Message, inMessage) {
			t.Fatalf("%s: got %s %q, want %s with %q", event, e.Code, e.Message, code, inMessage)
		}
		// The error names the event whenever its id is a good one.
		wantID := ""
		if strings.Contains(event, `"id":"a1"`) {
			wantID = "a1"
		}
		if e.ID != wantID {
			t.Fatalf("%s: error names id %q, want %q", event, e.ID, wantID)
		}
	}
	const (
		missing = ingest.CodeMissingField
		invalid = ingest.CodeInvalidField
	)
	zero := `"00000000-0000-0000-0000-000000000000"`
	long := func(n int) string { return `"` + strings.Repeat("x", n) + `"` }
	email := func(n int) string { return `"` + strings.Repeat("x", n-len("@example.com")) + `@example.com"` }

	// Properties every type has.
	for _, typ := range []string{"message", "feature", "users", "storage", "user"} {
		f(act(typ), "", "")
		f(act(typ, "id", ""), missing, "id is required")
		f(act(typ, "time", ""), missing, "time is required")
	}
	f(act("message", "id", `""`), missing, "id is required")
	f(act("message", "id", `null`), missing, "id is required")
	f(act("message", "id", `7`), invalid, "id must be a string, got 7")
	f(act("message", "id", long(128)), "", "")
	f(act("message", "id", long(129)), invalid, "id is 129 bytes long; the limit is 128")
	f(act("message", "id", `"a\u0007"`), invalid, `id "a\a" holds control characters`)
	f(act("message", "id", "\"a\xff\""), invalid, `holds control characters or invalid UTF-8`)
	f(act("message", "time", `"yesterday"`), invalid, `time "yesterday" is not an RFC 3339 date-time`)
	f(act("message", "time", `"2026-06-15T11:00:00"`), invalid, `time "2026-06-15T11:00:00" is not an RFC 3339`)
	f(act("message", "time", `1781521200`), invalid, "time must be a string, got 1781521200")
	f(act("message", "time", `"2026-06-15T13:00:00.5+02:00"`), "", "")
	f(act("message", "time", `"2026-06-15T11:00:00+24:00"`), invalid, `time "2026-06-15T11:00:00+24:00" is not an RFC 3339 date-time`)
	f(act("message", "time", `"2026-06-15T11:00:00-23:60"`), invalid, `time "2026-06-15T11:00:00-23:60" is not an RFC 3339 date-time`)
	f(act("message", "time", `"2026-05-01T00:00:00Z"`), ingest.CodeOutsideWindow, "time 2026-05-01T00:00:00Z is before the dedupe window, which starts at 2026-05-11T12:00:00Z")
	f(act("message", "time", `"2026-06-15T12:06:00Z"`), ingest.CodeInFuture, "time 2026-06-15T12:06:00Z is more than 5m0s ahead")
	f(act("message", "time", `"2026-06-15T12:04:00Z"`), "", "")
	f(act("message", "time", `"1969-12-31T23:00:00Z"`), invalid, "time 1969-12-31T23:00:00Z is before 1970-01-01")
	f(act("message", "type", ""), missing, "type is required")
	f(act("message", "type", `null`), missing, "type is required")
	f(act("message", "type", `"x"`), invalid, `type "x" is not an activity type: use one of message, feature, users, storage, user`)
	f(act("message", "type", `["message"]`), invalid, `type must be a string, got ["message"]`)
	f(act("message", "type", long(300)), invalid, `type "xxxx`)
	f(act("message", "type", `"MESSAGE"`), "", "")
	f(act("storage", "type", `"Storage"`), "", "")
	// A property the type does not have is rejected, naming the field the
	// client most likely meant, since it would otherwise be dropped unseen.
	unknown := ingest.CodeUnknownField
	f(act("message", "colour", `"blue"`), unknown, "colour is not a field of message events: use id, time, type, userGuid, recipients, attachments, attachmentBytes")
	f(act("message", "userGUID", `"a11ce000-0000-4000-8000-000000000002"`), unknown, "userGUID is not a field of message events: did you mean userGuid?")
	f(act("message", "attachmentbyte", `5`), unknown, "did you mean attachmentBytes?")
	f(act("message", "recipient", `[]`), unknown, "did you mean recipients?")
	f(act("feature", "Feature", `"SecureForms"`), unknown, "did you mean feature?")
	f(act("users", "guests", `1`), unknown, "guests is not a field of users events: did you mean guest?")
	f(act("user", "first_name", `"Ann"`), unknown, "did you mean firstName?")
	f(act("user", "ID", `"a1"`), unknown, "ID is not a field of user events: did you mean id?")
	f(act("storage", "byte", `100`), unknown, "did you mean bytes?")
	f(act("message", "Time", `"2026-06-15T11:00:00Z"`), unknown, "did you mean time?")
	// Without a valid type, against the fields of every type.
	f(act("x", "emial", `"a@b.c"`), unknown, "emial is not a field of activity events: did you mean email?")
	// An unknown property is reported before the problems it explains.
	f(act("message", "userGuid", "", "userID", `"a11ce000-0000-4000-8000-000000000002"`), unknown, "did you mean userGuid?")
	f(act("message", "id", "", "Id", `"a1"`), unknown, "did you mean id?")
	// A field of another type is as unknown to this one, unless null.
	f(act("storage", "userGuid", `"a11ce000-0000-4000-8000-000000000002"`), unknown, "userGuid is not a field of storage events: use id, time, type, bytes")
	f(act("message", "bytes", `100`), unknown, "bytes is not a field of message events")
	f(act("user", "feature", `"SecureForms"`), unknown, "feature is not a field of user events")
	f(act("storage", "userGuid", `null`), "", "")

	// message
	f(act("message", "userGuid", ""), missing, "userGuid is required")
	f(act("message", "userGuid", `""`), missing, "userGuid is required")
	f(act("message", "userGuid", `"bob"`), invalid, `userGuid "bob" is not a GUID`)
	f(act("message", "userGuid", `5`), invalid, "userGuid must be a string, got 5")
	f(act("message", "userGuid", zero), invalid, "userGuid 00000000-0000-0000-0000-000000000000 is the zero GUID")
	f(act("message", "userGuid", `"{A11CE000-0000-4000-8000-000000000001}"`), "", "")
	f(act("message", "userGuid", `"a11ce000000040008000000000000001"`), "", "")
	f(act("message", "recipients", `null`), "", "")
	f(act("message", "recipients", `[]`), "", "")
	f(act("message", "recipients", `["b0b00000-0000-4000-8000-000000000002","(b0b00000-0000-4000-8000-000000000002)","x@partner.example"]`), "", "")
	f(act("message", "recipients", email(320)), invalid, "recipients must be an array of strings")
	f(act("message", "recipients", `["`+strings.Trim(email(320), `"`)+`"]`), "", "")
	f(act("message", "recipients", `["`+strings.Trim(email(321), `"`)+`"]`), invalid, "recipients[0]")
	f(act("message", "recipients", `["x@partner.example","bob"]`), invalid, `recipients[1] "bob" is neither a user GUID nor an e-mail address`)
	f(act("message", "recipients", `["x@partner.example",5]`), invalid, "recipients[1] must be a string, got 5")
	f(act("message", "recipients", `[null]`), invalid, "recipients[0] must be a string, got null")
	f(act("message", "recipients", `["a@b@c"]`), invalid, `recipients[0] "a@b@c"`)
	f(act("message", "recipients", `["@partner.example"]`), invalid, "recipients[0]")
	f(act("message", "recipients", `["x@"]`), invalid, "recipients[0]")
	f(act("message", "recipients", `[""]`), invalid, "recipients[0]")
	f(act("message", "recipients", `["x\t@partner.example"]`), invalid, "recipients[0]")
	f(act("message", "recipients", `[`+zero+`]`), invalid, "recipients[0] 00000000-0000-0000-0000-000000000000 is the zero GUID")
	for _, name := range []string{"attachments", "attachmentBytes"} {
		f(act("message", name, `0`), "", "")
		f(act("message", name, `null`), "", "")
		f(act("message", name, `-1`), invalid, name+" -1 must not be negative")
		f(act("message", name, `1.5`), invalid, name+" must be an integer, got 1.5")
		f(act("message", name, `2.0`), invalid, name+" must be an integer, got 2.0")
		f(act("message", name, `1e3`), invalid, name+" must be an integer, got 1e3")
		f(act("message", name, `"3"`), invalid, name+` must be an integer, got "3"`)
		f(act("message", name, `true`), invalid, name+" must be an integer, got true")
		f(act("message", name, `99999999999999999999`), invalid, name+" 99999999999999999999 is more than the limit")
		f(act("message", name, `-99999999999999999999`), invalid, name+" -99999999999999999999 must not be negative")
	}
	f(act("message", "attachments", `10000`), "", "")
	f(act("message", "attachments", `10001`), invalid, "attachments 10001 is more than the limit of 10000")
	f(act("message", "attachmentBytes", `1125899906842624`), "", "")
	f(act("message", "attachmentBytes", `1125899906842625`), invalid, "attachmentBytes 1125899906842625 is more than the limit of 1125899906842624")
	// The first problem in a fixed order is named, wherever it stands in the object.
	f(`{"attachments":-1,"userGuid":"x","type":"message","time":"2026-06-15T11:00:00Z","id":"a1"}`, invalid, `userGuid "x"`)

	// feature
	f(act("feature", "userGuid", ""), missing, "userGuid is required")
	f(act("feature", "userGuid", `"x"`), invalid, `userGuid "x" is not a GUID`)
	f(act("feature", "feature", ""), missing, "feature is required")
	f(act("feature", "feature", `"Foo"`), invalid, `feature "Foo" is not a feature: use one of SecureMessagingGateway, SecureMessagingPlus, DataLeakPrevention, SecureLargeFiles, SecureForms`)
	f(act("feature", "feature", `3`), invalid, "feature must be a string, got 3")
	f(act("feature", "feature", long(300)), invalid, `feature "xxxx`)
	for _, name := range []string{"SecureMessagingGateway", "securemessagingplus", "DATALEAKPREVENTION", "SecureLargeFiles", "SecureForms"} {
		f(act("feature", "feature", `"`+name+`"`), "", "")
	}

	// users
	for _, name := range []string{"total", "pro", "guest", "disabled", "unregistered"} {
		f(act("users", name, ""), missing, name+" is required")
		f(act("users", name, `null`), missing, name+" is required")
		f(act("users", name, `-1`), invalid, name+" -1 must not be negative")
		f(act("users", name, `"2"`), invalid, name+` must be an integer, got "2"`)
		f(act("users", name, `1000000000`), "", "")
		f(act("users", name, `1000000001`), invalid, name+" 1000000001 is more than the limit of 1000000000")
	}

	// storage
	f(act("storage", "bytes", ""), missing, "bytes is required")
	f(act("storage", "bytes", `0`), "", "")
	f(act("storage", "bytes", `1152921504606846976`), "", "")
	f(act("storage", "bytes", `1152921504606846977`), invalid, "bytes 1152921504606846977 is more than the limit of 1152921504606846976")
	f(act("storage", "bytes", `-5`), invalid, "bytes -5 must not be negative")
	f(act("storage", "bytes", `1.5`), invalid, "bytes must be an integer, got 1.5")

	// user
	f(act("user", "event", ""), missing, "event is required")
	f(act("user", "event", `"deleted"`), invalid, `event "deleted" is not a user event: use one of created, registered, login, disabled, enabled, invited`)
	for _, name := range []string{"created", "registered", "LOGIN", "Disabled", "enabled", "invited"} {
		f(act("user", "event", `"`+name+`"`), "", "")
	}
	f(act("user", "userGuid", ""), missing, "userGuid is required")
	f(act("user", "userGuid", zero), invalid, "zero GUID")
	f(act("user", "status", `"Active"`), "", "")
	f(act("user", "status", `"disabled"`), "", "")
	f(act("user", "status", `"Gone"`), invalid, `status "Gone" is not a user status: use one of Active, Disabled`)
	f(act("user", "groupType", `"professional"`), "", "")
	f(act("user", "groupType", `"Guest"`), "", "")
	f(act("user", "groupType", `"Admin"`), invalid, `groupType "Admin" is not a user group type: use one of Professional, Guest`)
	f(act("user", "groupGuid", `"6e000000-0000-4000-8000-0000000000aa"`), "", "")
	f(act("user", "groupGuid", zero), "", "") // the zero GUID is "none"
	f(act("user", "groupGuid", `"x"`), invalid, `groupGuid "x" is not a GUID`)
	f(act("user", "invitedBy", `"b0b00000-0000-4000-8000-000000000002"`), "", "")
	f(act("user", "invitedBy", `"x"`), invalid, `invitedBy "x" is not a GUID`)
	f(act("user", "email", email(320)), "", "")
	f(act("user", "email", email(321)), invalid, "email is 321 bytes long; the limit is 320")
	f(act("user", "email", `"a\nb@c"`), invalid, `email "a\nb@c" holds control characters`)
	for _, name := range []string{"firstName", "lastName", "groupName"} {
		f(act("user", name, `"Zoë Ünal"`), "", "")
		f(act("user", name, `""`), "", "")
		f(act("user", name, long(256)), "", "")
		f(act("user", name, long(257)), invalid, name+" is 257 bytes long; the limit is 256")
		f(act("user", name, `"a\u0001"`), invalid, name+` "a\x01" holds control characters`)
		f(act("user", name, `5`), invalid, name+" must be a string, got 5")
	}
}

// TestDecodeActivityValues pins what each property becomes, on a body with
// every type of event.
func TestDecodeActivityValues(t *testing.T) {
	body, err := os.ReadFile("testdata/activity.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	b := mustDecodeActivity(t, string(body), ingest.FormatNDJSON)
	if len(b.Errors) != 0 {
		t.Fatalf("errors: %+v", b.Errors)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	group := mustGUID("6e000000-0000-4000-8000-0000000000aa")
	want := []usage.Activity{
		{ID: "u-1", Time: at("2026-06-15T08:00:00Z"), Kind: usage.ActivityUser, User: alice, UserEvent: usage.UserCreated,
			Email: "alice@example.com", FirstName: "Alice", LastName: "Liddell", GroupName: "Sales",
			Status: usage.UserActive, GroupType: usage.GroupProfessional, GroupGUID: group},
		{ID: "u-2", Time: at("2026-06-15T08:01:00Z"), Kind: usage.ActivityUser, User: bob, UserEvent: usage.UserInvited,
			Email: "bob@example.com", GroupType: usage.GroupGuest, InvitedBy: alice},
		{ID: "u-3", Time: at("2026-06-15T06:30:00Z"), Kind: usage.ActivityUser, User: bob, UserEvent: usage.UserRegistered, InvitedBy: alice},
		{ID: "u-4", Time: at("2026-06-15T09:00:00.25Z"), Kind: usage.ActivityUser, User: alice, UserEvent: usage.UserLogin},
		{ID: "m-1", Time: at("2026-06-15T09:05:00Z"), Kind: usage.ActivityMessage, User: alice, Recipients: []usage.GUID{bob},
			Attachments: 2, AttachmentBytes: 1 << 20},
		{ID: "m-2", Time: at("2026-06-15T09:06:00Z"), Kind: usage.ActivityMessage, User: bob},
		{ID: "f-1", Time: at("2026-06-15T09:07:00Z"), Kind: usage.ActivityFeature, User: alice, Feature: usage.FeatureSecureLargeFiles},
		{ID: "g-1", Time: at("2026-06-15T10:00:00Z"), Kind: usage.ActivityUsers, Users: usage.UserCounts{Total: 2, Pro: 1, Guest: 1}},
		{ID: "s-1", Time: at("2026-06-15T10:00:00Z"), Kind: usage.ActivityStorage, StorageBytes: 1 << 20},
		{ID: "u-5", Time: at("2026-06-15T10:30:00Z"), Kind: usage.ActivityUser, User: bob, UserEvent: usage.UserDisabled, Status: usage.UserDisabledStatus},
	}
	if len(b.Activities) != len(want) {
		t.Fatalf("%d activities, want %d", len(b.Activities), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(b.Activities[i], want[i]) {
			t.Errorf("activity %d:\n got %+v\nwant %+v", i, b.Activities[i], want[i])
		}
		if b.Index[i] != i {
			t.Errorf("activity %d has index %d", i, b.Index[i])
		}
		if b.Activities[i].Time.Location() != time.UTC {
			t.Errorf("activity %d: time %v is not in UTC", i, b.Activities[i].Time)
		}
	}

	// A recipient listed twice in any of its forms receives the message once.
	b = mustDecodeActivity(t, "["+act("message", "recipients", `["b0b00000-0000-4000-8000-000000000002","{B0B00000-0000-4000-8000-000000000002}","a11ce000000040008000000000000001"]`)+"]", ingest.FormatJSON)
	if got := b.Activities[0].Recipients; !reflect.DeepEqual(got, []usage.GUID{bob, alice}) {
		t.Fatalf("recipients %v, want bob then alice once each", got)
	}
	// So does one among many, past the point where a map takes over.
	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf(`"%032x"`, i%40+1))
	}
	b = mustDecodeActivity(t, "["+act("message", "recipients", "["+strings.Join(many, ",")+"]")+"]", ingest.FormatJSON)
	if got := b.Activities[0].Recipients; len(got) != 40 || got[0] != mustGUID(fmt.Sprintf("%032x", 1)) || got[39] != mustGUID(fmt.Sprintf("%032x", 40)) {
		t.Fatalf("%d recipients %v, want 40 in order of first mention", len(got), got)
	}
}

func TestDecodeActivityForms(t *testing.T) {
	good, other := act("storage"), act("storage", "id", `"a2"`)
	type elementError struct {
		index int
		code  string
		in    string
	}
	f := func(body string, format ingest.Format, activities []int, errs ...elementError) {
		t.Helper()
		b := mustDecodeActivity(t, body, format)
		if !reflect.DeepEqual(b.Index, activities) || len(b.Activities) != len(activities) || len(b.Errors) != len(errs) || b.Len() != len(activities)+len(errs) {
			t.Fatalf("DecodeActivity(%q): activities at %v, errors %+v; want activities at %v and %d errors", body, b.Index, b.Errors, activities, len(errs))
		}
		for i, want := range errs {
			got := b.Errors[i]
			if got.Index != want.index || got.Code != want.code || !strings.Contains(got.Message, want.in) {
				t.Fatalf("DecodeActivity(%q): error %d is %+v, want index %d, %s with %q", body, i, got, want.index, want.code, want.in)
			}
		}
	}
	f("["+good+","+other+"]", ingest.FormatJSON, []int{0, 1})
	f(`{"events":[`+good+`]}`, ingest.FormatJSON, []int{0})
	f(`{"events":[]}`, ingest.FormatJSON, []int{})
	f(`[]`, ingest.FormatJSON, []int{})
	f(good+"\n"+other+"\n", ingest.FormatNDJSON, []int{0, 1})
	f(good+"\r\n\n  \n"+other, ingest.FormatNDJSON, []int{0, 1})
	f(`[1,`+good+`,"x",{"events":[]},null,`+other+`]`, ingest.FormatJSON, []int{1, 5},
		elementError{0, ingest.CodeMalformed, "event 0 is number, not a JSON object"},
		elementError{2, ingest.CodeMalformed, "event 2 is string"},
		elementError{3, ingest.CodeUnknownField, "events is not a field of activity events: did you mean event?"},
		elementError{4, ingest.CodeMalformed, "event 4 is null"})
	f(good+"\n{not json\n\n[]\n"+other+"\n"+`{"id":"a3"}`, ingest.FormatNDJSON, []int{0, 3},
		elementError{1, ingest.CodeMalformed, "line 2 is not valid JSON"},
		elementError{2, ingest.CodeMalformed, "event 2 is array"},
		elementError{4, ingest.CodeMissingField, "time is required"})

	bad := func(body string, format ingest.Format) {
		t.Helper()
		if _, err := ingest.DecodeActivity([]byte(body), format, ingest.Limits{}); usage.KindOf(err) != usage.KindInvalid {
			t.Fatalf("DecodeActivity(%q) = %v, want an invalid-body error", body, err)
		}
	}
	bad("", ingest.FormatJSON)
	bad("[", ingest.FormatJSON)
	bad(good+"\n"+other, ingest.FormatJSON)
	bad(`{"event":[]}`, ingest.FormatJSON)
	bad(`{"events":{}}`, ingest.FormatJSON)
	bad(`"x"`, ingest.FormatJSON)
	bad("", ingest.FormatNDJSON)
	bad("\n \r\n", ingest.FormatNDJSON)
}

func TestIngestActivityGzip(t *testing.T) {
	plain, err := os.ReadFile("testdata/activity.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(plain)
	zw.Close()
	body, err := ingest.ReadBody(&zb, "gzip", ingest.DefaultMaxBody)
	if err != nil {
		t.Fatal(err)
	}
	p, fake := mustActivityPipeline(t)
	res, err := ingestActivity(t.Context(), p, service, mustDecodeActivity(t, string(body), ingest.FormatNDJSON))
	if err != nil || res.Accepted != 10 || res.Rejected != 0 || len(fake.kept) != 10 {
		t.Fatalf("gzip body: %+v, %v", res, err)
	}
}

func TestIngestActivityDuplicates(t *testing.T) {
	p, fake := mustActivityPipeline(t)
	body := act("feature") + "\n" + act("feature") + "\n" + act("storage", "id", `"a2"`)
	ingestBody := func(svc usage.GUID) ingest.Result {
		t.Helper()
		res, err := ingestActivity(t.Context(), p, svc, mustDecodeActivity(t, body, ingest.FormatNDJSON))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := ingestBody(service); res.Accepted != 2 || res.Duplicates != 1 || res.Rejected != 0 {
		t.Fatalf("first batch: %+v, want 2 accepted and the repeated id counted once", res)
	}
	if res := ingestBody(service); res.Accepted != 0 || res.Duplicates != 3 {
		t.Fatalf("second batch: %+v, want all duplicates", res)
	}
	// Ids are the idempotency keys within one service only.
	if res := ingestBody(alice); res.Accepted != 2 || res.Duplicates != 1 {
		t.Fatalf("another service: %+v, want 2 accepted", res)
	}
	if len(fake.kept) != 4 {
		t.Fatalf("store kept %d activities, want 4", len(fake.kept))
	}
}

func TestIngestActivityResult(t *testing.T) {
	p, fake := mustActivityPipeline(t)
	// Decode errors come first in the batch, window errors later: the
	// result lists them by index.
	body := "[" + act("storage", "time", `"2020-01-01T00:00:00Z"`) + `,{"type":"storage"},` + act("storage", "id", `"a3"`) + "]"
	res, err := ingestActivity(t.Context(), p, service, mustDecodeActivity(t, body, ingest.FormatJSON))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Rejected != 2 || len(res.Errors) != 2 ||
		res.Errors[0].Index != 0 || res.Errors[0].Code != ingest.CodeOutsideWindow ||
		res.Errors[1].Index != 1 || res.Errors[1].Code != ingest.CodeMissingField {
		t.Fatalf("result %+v", res)
	}

	// All good: errors is an empty list, not null, for clients that iterate it.
	res, err = ingestActivity(t.Context(), p, service, mustDecodeActivity(t, "[]", ingest.FormatJSON))
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := json.Marshal(res); string(j) != `{"accepted":0,"duplicates":0,"rejected":0,"errors":[],"errorsOmitted":0}` {
		t.Fatalf("empty result marshals as %s", j)
	}

	// A store failure acknowledges nothing.
	fake.err = errors.New("disk on fire")
	b := mustDecodeActivity(t, "["+act("users", "id", `"a4"`)+"]", ingest.FormatJSON)
	if res, err := ingestActivity(t.Context(), p, service, b); !errors.Is(err, fake.err) || res.Accepted != 0 || res.Errors != nil {
		t.Fatalf("store failure: %+v, %v", res, err)
	}
}

func TestIngestActivityMisconfigured(t *testing.T) {
	fake := &fakeActivities{}
	p, err := ingest.New(ingest.Config{Store: fake})
	if err != nil {
		t.Fatal(err)
	}
	b := mustDecodeActivity(t, "["+act("storage")+"]", ingest.FormatJSON)
	if _, err := ingestActivity(t.Context(), p, service, b); err == nil {
		t.Fatal("IngestActivity without an activity store succeeded")
	}
	p, _ = mustActivityPipeline(t)
	if _, err := ingestActivity(t.Context(), p, usage.GUID{}, b); err == nil {
		t.Fatal("IngestActivity for the zero service succeeded")
	}
}

// BenchmarkDecodeActivity measures decoding an NDJSON body of 5,000
// activity events of every type.
func BenchmarkDecodeActivity(b *testing.B) {
	fixture, err := os.ReadFile("testdata/activity.ndjson")
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat(fixture, 500)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ingest.DecodeActivity(body, ingest.FormatNDJSON, ingest.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "events/s")
}
