package clickhouse

import (
	"encoding/json"
	"time"

	"github.com/usaged/usaged/usage"
)

// activityBody is how an activity event is kept in the activity journal's
// body column: JSON with short names, zero fields left out. It holds the
// whole event, so that a reader needs no other column; the time is in Unix
// nanoseconds.
type activityBody struct {
	ID              string            `json:"i"`
	Time            int64             `json:"t"`
	Kind            int               `json:"k"`
	User            *usage.GUID       `json:"u,omitempty"`
	Recipients      []usage.GUID      `json:"r,omitempty"`
	Attachments     int64             `json:"a,omitempty"`
	AttachmentBytes int64             `json:"ab,omitempty"`
	Feature         int               `json:"f,omitempty"`
	Users           *usage.UserCounts `json:"n,omitempty"`
	StorageBytes    int64             `json:"s,omitempty"`
	UserEvent       int               `json:"ue,omitempty"`
	Email           string            `json:"e,omitempty"`
	FirstName       string            `json:"fn,omitempty"`
	LastName        string            `json:"ln,omitempty"`
	GroupName       string            `json:"gn,omitempty"`
	Status          int               `json:"st,omitempty"`
	GroupType       int               `json:"gt,omitempty"`
	GroupGUID       *usage.GUID       `json:"gg,omitempty"`
	InvitedBy       *usage.GUID       `json:"ib,omitempty"`
}

// encodeActivity returns the journal body of a.
func encodeActivity(a usage.Activity) string {
	guid := func(g usage.GUID) *usage.GUID {
		if g.IsZero() {
			return nil
		}
		return &g
	}
	b := activityBody{
		ID: a.ID, Time: a.Time.UnixNano(), Kind: int(a.Kind), User: guid(a.User),
		Recipients: a.Recipients, Attachments: a.Attachments, AttachmentBytes: a.AttachmentBytes,
		Feature: int(a.Feature), StorageBytes: a.StorageBytes, UserEvent: int(a.UserEvent),
		Email: a.Email, FirstName: a.FirstName, LastName: a.LastName, GroupName: a.GroupName,
		Status: int(a.Status), GroupType: int(a.GroupType), GroupGUID: guid(a.GroupGUID), InvitedBy: guid(a.InvitedBy),
	}
	if a.Users != (usage.UserCounts{}) {
		b.Users = &a.Users
	}
	out, err := json.Marshal(b)
	if err != nil {
		panic("clickhouse store: encode activity: " + err.Error()) // only plain fields: cannot fail
	}
	return string(out)
}

// decodeActivity returns the activity event of a journal body, its time in
// UTC to the nanosecond.
func decodeActivity(body string) (usage.Activity, error) {
	var b activityBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		return usage.Activity{}, err
	}
	a := usage.Activity{
		ID: b.ID, Time: time.Unix(0, b.Time).UTC(), Kind: usage.ActivityKind(b.Kind),
		Recipients: b.Recipients, Attachments: b.Attachments, AttachmentBytes: b.AttachmentBytes,
		Feature: usage.Feature(b.Feature), StorageBytes: b.StorageBytes, UserEvent: usage.UserEvent(b.UserEvent),
		Email: b.Email, FirstName: b.FirstName, LastName: b.LastName, GroupName: b.GroupName,
		Status: usage.UserStatus(b.Status), GroupType: usage.UserGroupType(b.GroupType),
	}
	for dst, src := range map[*usage.GUID]*usage.GUID{&a.User: b.User, &a.GroupGUID: b.GroupGUID, &a.InvitedBy: b.InvitedBy} {
		if src != nil {
			*dst = *src
		}
	}
	if b.Users != nil {
		a.Users = *b.Users
	}
	return a, nil
}

// tallyBody is how an imported day of counters is kept in the body column
// of imported_activity: a service's (usage.ServiceTally) or a user's
// (usage.UserTally, whose User is the row's user_guid). JSON with short
// names, zero fields left out; times in Unix nanoseconds, 0 for none.
type tallyBody struct {
	Messages            int64                     `json:"m,omitempty"`
	Features            *[usage.NumFeatures]int64 `json:"f,omitempty"`
	Named               bool                      `json:"n,omitempty"`
	Sent                int64                     `json:"s,omitempty"`
	Received            int64                     `json:"r,omitempty"`
	Attachments         int64                     `json:"a,omitempty"`
	AttachmentBytes     int64                     `json:"ab,omitempty"`
	InvitationsSent     int64                     `json:"is,omitempty"`
	InvitationsAccepted int64                     `json:"ia,omitempty"`
	LastSent            int64                     `json:"ls,omitempty"`
	LastReceived        int64                     `json:"lr,omitempty"`
	LastActive          int64                     `json:"la,omitempty"`
}

func encodeTally(b tallyBody) string {
	out, err := json.Marshal(b)
	if err != nil {
		panic("clickhouse store: encode tally: " + err.Error()) // only plain fields: cannot fail
	}
	return string(out)
}

// encodeServiceTally returns the body of a service's day of counters.
func encodeServiceTally(t usage.ServiceTally) string {
	b := tallyBody{Messages: t.Messages, Attachments: t.Attachments}
	if t.Features != ([usage.NumFeatures]int64{}) {
		b.Features = &t.Features
	}
	return encodeTally(b)
}

// decodeServiceTally returns the service's day of counters of a body.
func decodeServiceTally(body string) (usage.ServiceTally, error) {
	var b tallyBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		return usage.ServiceTally{}, err
	}
	t := usage.ServiceTally{Messages: b.Messages, Attachments: b.Attachments}
	if b.Features != nil {
		t.Features = *b.Features
	}
	return t, nil
}

// encodeUserTally returns the body of a user's day, t.User left out.
func encodeUserTally(t usage.UserTally) string {
	return encodeTally(tallyBody{
		Named: t.Named, Sent: t.Sent, Received: t.Received, Attachments: t.Attachments, AttachmentBytes: t.AttachmentBytes,
		InvitationsSent: t.InvitationsSent, InvitationsAccepted: t.InvitationsAccepted,
		LastSent: nanosOrZero(t.LastSent), LastReceived: nanosOrZero(t.LastReceived), LastActive: nanosOrZero(t.LastActive),
	})
}

// decodeUserTally returns the user's day of a body, for user.
func decodeUserTally(user usage.GUID, body string) (usage.UserTally, error) {
	var b tallyBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		return usage.UserTally{}, err
	}
	return usage.UserTally{
		User: user, Named: b.Named, Sent: b.Sent, Received: b.Received, Attachments: b.Attachments, AttachmentBytes: b.AttachmentBytes,
		InvitationsSent: b.InvitationsSent, InvitationsAccepted: b.InvitationsAccepted,
		LastSent: timeOrZero(b.LastSent), LastReceived: timeOrZero(b.LastReceived), LastActive: timeOrZero(b.LastActive),
	}, nil
}

func nanosOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
