package usage

import (
	"reflect"
	"testing"
	"time"
)

func TestTally(t *testing.T) {
	at := time.Date(2026, 3, 11, 9, 0, 0, 0, time.UTC)
	sender, r1, r2, inviter := GUID{1}, GUID{2}, GUID{3}, GUID{4}
	f := func(a Activity, wantUsers []UserTally, wantSvc ServiceTally) {
		t.Helper()
		a.Time = at
		users, svc := a.Tally(nil)
		if !reflect.DeepEqual(users, wantUsers) || svc != wantSvc {
			t.Fatalf("Tally(%v %v) =\n %+v, %+v\nwant\n %+v, %+v", a.Kind, a.UserEvent, users, svc, wantUsers, wantSvc)
		}
	}
	f(Activity{Kind: ActivityMessage, User: sender, Recipients: []GUID{r1, r2}, Attachments: 2, AttachmentBytes: 300},
		[]UserTally{
			{User: sender, Named: true, Sent: 1, Attachments: 2, AttachmentBytes: 300, LastSent: at, LastActive: at},
			{User: r1, Received: 1, LastReceived: at},
			{User: r2, Received: 1, LastReceived: at},
		},
		ServiceTally{Messages: 1, Attachments: 2})
	f(Activity{Kind: ActivityFeature, User: sender, Feature: 2},
		[]UserTally{{User: sender, Named: true, LastActive: at}},
		ServiceTally{Features: [NumFeatures]int64{0, 1}})
	f(Activity{Kind: ActivityFeature, User: sender, Feature: NumFeatures + 1}, // unknown: the user is active, no feature counts
		[]UserTally{{User: sender, Named: true, LastActive: at}}, ServiceTally{})
	f(Activity{Kind: ActivityUsers, Users: UserCounts{Total: 5}}, nil, ServiceTally{})
	f(Activity{Kind: ActivityStorage, StorageBytes: 10}, nil, ServiceTally{})
	f(Activity{Kind: ActivityUser, User: sender, UserEvent: UserCreated},
		[]UserTally{{User: sender, Named: true}}, ServiceTally{})
	f(Activity{Kind: ActivityUser, User: sender, UserEvent: UserLogin},
		[]UserTally{{User: sender, Named: true, LastActive: at}}, ServiceTally{})
	f(Activity{Kind: ActivityUser, User: sender, UserEvent: UserInvited, InvitedBy: inviter},
		[]UserTally{{User: sender, Named: true}, {User: inviter, InvitationsSent: 1}}, ServiceTally{})
	f(Activity{Kind: ActivityUser, User: sender, UserEvent: UserRegistered, InvitedBy: inviter},
		[]UserTally{{User: sender, Named: true, LastActive: at}, {User: inviter, InvitationsAccepted: 1}}, ServiceTally{})
	f(Activity{Kind: ActivityUser, User: sender, UserEvent: UserLogin, InvitedBy: inviter}, // only invitations count for the inviter
		[]UserTally{{User: sender, Named: true, LastActive: at}}, ServiceTally{})
}

func TestSupersedes(t *testing.T) {
	at := time.Date(2026, 3, 11, 9, 0, 0, 0, time.UTC)
	f := func(aID string, aTime time.Time, bID string, bTime time.Time, want bool) {
		t.Helper()
		a, b := Activity{ID: aID, Time: aTime}, Activity{ID: bID, Time: bTime}
		if got := a.Supersedes(&b); got != want {
			t.Fatalf("(%s at %s).Supersedes(%s at %s) = %v", aID, aTime, bID, bTime, got)
		}
	}
	f("a", at.Add(time.Nanosecond), "b", at, true)
	f("b", at, "a", at.Add(time.Nanosecond), false)
	f("b", at, "a", at, true)
	f("a", at, "b", at, false)
	f("a", at, "a", at, false)
}

func TestGauge(t *testing.T) {
	for k := ActivityMessage; k <= ActivityUser; k++ {
		a := Activity{Kind: k}
		if want := k == ActivityUsers || k == ActivityStorage; a.Gauge() != want {
			t.Errorf("%v: Gauge() = %v, want %v", k, a.Gauge(), want)
		}
	}
}

func TestUserUsageAddTally(t *testing.T) {
	early, late := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var u UserUsage
	u.AddTally(&UserTally{Sent: 1, Received: 2, Attachments: 3, AttachmentBytes: 4, InvitationsSent: 5, InvitationsAccepted: 6, LastSent: late, LastReceived: late, LastActive: late}, false)
	u.AddTally(&UserTally{Sent: 1, Received: 2, Attachments: 3, AttachmentBytes: 4, InvitationsSent: 5, InvitationsAccepted: 6, LastSent: early, LastActive: early}, true)
	want := UserUsage{LastMsgSent: late, LastMsgRetrieved: late, LastActivity: late,
		MessagesSent: 1, MessagesReceived: 2, AttachmentsCount: 3, AttachmentsSize: 4, InvitationsSent: 5, InvitationsAccepted: 6}
	if u != want {
		t.Fatalf("AddTally: %+v, want %+v", u, want)
	}
}
