package storetest

import (
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// testAccounts checks the account of a user, and the counters their user
// events give them and their inviter, over small sequences of events whose
// results are written out by hand from the contract of store.Reports: the
// randomized oracle states the same rules in code, and these cases keep
// both honest.
func testAccounts(t *testing.T, b UsageBackend) {
	day := base.AddDate(0, 0, 3)
	at := func(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }
	user, inviter, group1, group2 := usage.GUID{0xa1}, usage.GUID{0xa2}, usage.GUID{0xa3}, usage.GUID{0xa4}
	ev := func(id string, h int, e usage.UserEvent, set func(a *usage.Activity)) usage.Activity {
		a := usage.Activity{ID: id, Time: at(h), Kind: usage.ActivityUser, User: user, UserEvent: e}
		if set != nil {
			set(&a)
		}
		return a
	}
	// The report is of the day: events at or after its end (hour 24) do not
	// count.
	from, to := day, at(24)
	cases := []struct {
		name   string
		events []usage.Activity
		want   usage.UserUsage // of user
	}{
		{
			name: "details replace earlier ones, empty ones keep them",
			events: []usage.Activity{
				ev("1", 1, usage.UserCreated, func(a *usage.Activity) {
					a.Email, a.FirstName, a.LastName, a.GroupName = "ann@example.com", "Ann", "Lee", "Sales"
					a.GroupType, a.GroupGUID = usage.GroupProfessional, group1
				}),
				ev("2", 2, usage.UserLogin, func(a *usage.Activity) { a.FirstName, a.GroupGUID = "Anna", group2 }),
				ev("3", 3, usage.UserLogin, nil),
				ev("4", 24, usage.UserLogin, func(a *usage.Activity) { a.Email = "late@example.com" }), // at the end: not counted
			},
			want: usage.UserUsage{
				User: user, Email: "ann@example.com", FirstName: "Anna", LastName: "Lee", GroupName: "Sales",
				Status: usage.UserActive, GroupType: usage.GroupProfessional, GroupGUID: group2,
				CreatedOn: at(1), LastLogin: at(3), LastActivity: at(3),
			},
		},
		{
			name: "the first created and registered events count, every registration is activity",
			events: []usage.Activity{
				ev("1", 1, usage.UserCreated, nil),
				ev("2", 2, usage.UserCreated, nil),
				ev("3", 3, usage.UserRegistered, nil),
				ev("4", 4, usage.UserRegistered, nil),
			},
			want: usage.UserUsage{User: user, Status: usage.UserActive, CreatedOn: at(1), RegisteredOn: at(3), LastActivity: at(4)},
		},
		{
			name: "disabled and enabled set the status, whatever status they carry",
			events: []usage.Activity{
				ev("1", 1, usage.UserCreated, func(a *usage.Activity) { a.Status = usage.UserDisabledStatus }),
				ev("2", 2, usage.UserEnabled, func(a *usage.Activity) { a.Status = usage.UserDisabledStatus }),
				ev("3", 3, usage.UserDisabled, func(a *usage.Activity) { a.Status = usage.UserActive }),
			},
			want: usage.UserUsage{User: user, Status: usage.UserDisabledStatus, CreatedOn: at(1)},
		},
		{
			name: "a carried status stands until an event sets another",
			events: []usage.Activity{
				ev("1", 1, usage.UserDisabled, nil),
				ev("2", 2, usage.UserLogin, func(a *usage.Activity) { a.Status = usage.UserActive }),
				ev("3", 3, usage.UserLogin, nil),
			},
			want: usage.UserUsage{User: user, Status: usage.UserActive, LastLogin: at(3), LastActivity: at(3)},
		},
		{
			name: "events at the same time apply in ID order, whatever the order they came in",
			events: []usage.Activity{
				ev("b", 5, usage.UserLogin, func(a *usage.Activity) { a.Email = "b@example.com" }),
				ev("a", 5, usage.UserLogin, func(a *usage.Activity) { a.Email = "a@example.com"; a.LastName = "A" }),
			},
			want: usage.UserUsage{User: user, Email: "b@example.com", LastName: "A", Status: usage.UserActive, LastLogin: at(5), LastActivity: at(5)},
		},
		{
			name: "the latest invitation naming an inviter stands, with the inviter's email at the end",
			events: []usage.Activity{
				{ID: "i1", Time: at(0), Kind: usage.ActivityUser, User: inviter, UserEvent: usage.UserCreated, Email: "old@example.com"},
				ev("1", 1, usage.UserInvited, func(a *usage.Activity) { a.InvitedBy = inviter }),
				ev("2", 2, usage.UserInvited, nil), // names no inviter: InvitedBy stays
				ev("3", 3, usage.UserRegistered, func(a *usage.Activity) { a.InvitedBy = inviter }),
				{ID: "i2", Time: at(4), Kind: usage.ActivityUser, User: inviter, UserEvent: usage.UserLogin, Email: "new@example.com"},
				{ID: "i3", Time: at(25), Kind: usage.ActivityUser, User: inviter, UserEvent: usage.UserLogin, Email: "later@example.com"},
			},
			want: usage.UserUsage{
				User: user, Status: usage.UserActive, RegisteredOn: at(3), LastActivity: at(3),
				InvitedBy: inviter, InvitedByEmail: "new@example.com",
			},
		},
	}
	s := b.Open(t)
	defer s.Close()
	for i, c := range cases {
		svc := usage.GUID{0xac, byte(i)}
		if _, err := s.AppendActivity(t.Context(), svc, c.events, longAgo); err != nil {
			t.Fatalf("%s: AppendActivity: %v", c.name, err)
		}
		got, err := s.ServiceUsers(t.Context(), svc, from, to, user)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: ServiceUsers = %d users, %v; want the user", c.name, len(got), err)
		}
		if d := firstDiff(got[0], c.want); d != "" {
			t.Errorf("%s: %s", c.name, d)
		}
	}

	// The inviter of the last case: one invitation sent and one accepted
	// within the day, its account from its own events.
	svc := usage.GUID{0xac, byte(len(cases) - 1)}
	got, err := s.ServiceUsers(t.Context(), svc, from, to, inviter)
	if err != nil || len(got) != 1 {
		t.Fatalf("ServiceUsers(inviter) = %d users, %v; want the inviter", len(got), err)
	}
	want := usage.UserUsage{
		User: inviter, Email: "new@example.com", Status: usage.UserActive, CreatedOn: at(0), LastLogin: at(4), LastActivity: at(4),
		InvitationsSent: 1, InvitationsAccepted: 1,
	}
	if d := firstDiff(got[0], want); d != "" {
		t.Errorf("inviter: %s", d)
	}
}
