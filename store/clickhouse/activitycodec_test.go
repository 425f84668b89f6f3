package clickhouse

import (
	"reflect"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

func TestActivityCodecRoundTrips(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 5, 123456789, time.UTC)
	f := func(a usage.Activity) {
		t.Helper()
		got, err := decodeActivity(encodeActivity(a))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("decoded %+v, want %+v", got, a)
		}
	}
	f(usage.Activity{ID: "m", Time: at, Kind: usage.ActivityMessage, User: usage.NewGUID(),
		Recipients: []usage.GUID{usage.NewGUID(), usage.NewGUID()}, Attachments: 2, AttachmentBytes: 300})
	f(usage.Activity{ID: "f", Time: at, Kind: usage.ActivityFeature, User: usage.NewGUID(), Feature: usage.FeatureSecureForms})
	f(usage.Activity{ID: "u", Time: at, Kind: usage.ActivityUsers, Users: usage.UserCounts{Total: 5, Pro: 3, Guest: 2}})
	f(usage.Activity{ID: "s", Time: at, Kind: usage.ActivityStorage, StorageBytes: 1 << 40})
	f(usage.Activity{ID: "e", Time: at, Kind: usage.ActivityUser, User: usage.NewGUID(), UserEvent: usage.UserInvited,
		Email: "a@b.c", FirstName: "A", LastName: "B", GroupName: "G", Status: usage.UserDisabledStatus,
		GroupType: usage.GroupGuest, GroupGUID: usage.NewGUID(), InvitedBy: usage.NewGUID()})
	if _, err := decodeActivity("{"); err == nil {
		t.Error("a malformed body decoded")
	}
}

func TestTallyCodecRoundTrips(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 5, 123456789, time.UTC)
	service := func(v usage.ServiceTally) {
		t.Helper()
		got, err := decodeServiceTally(encodeServiceTally(v))
		if err != nil || got != v {
			t.Errorf("decoded %+v, %v; want %+v", got, err, v)
		}
	}
	service(usage.ServiceTally{})
	service(usage.ServiceTally{Messages: 3, Attachments: 1 << 40})
	service(usage.ServiceTally{Features: [usage.NumFeatures]int64{0, 2, 0, 0, 7}})
	user := func(v usage.UserTally) {
		t.Helper()
		got, err := decodeUserTally(v.User, encodeUserTally(v))
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Errorf("decoded %+v, %v; want %+v", got, err, v)
		}
	}
	u := usage.NewGUID()
	user(usage.UserTally{User: u})
	user(usage.UserTally{User: u, Named: true, Sent: 1, Received: 2, Attachments: 3, AttachmentBytes: 4, InvitationsSent: 5, InvitationsAccepted: 6,
		LastSent: at, LastReceived: at.Add(time.Nanosecond), LastActive: at.Add(time.Hour)})
	user(usage.UserTally{User: u, LastActive: at})
	if _, err := decodeUserTally(u, "{"); err == nil {
		t.Error("a malformed body decoded")
	}
}
