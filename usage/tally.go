package usage

import (
	"strings"
	"time"
)

// The counting rules of service activity, as pure functions, so that every
// store backend counts alike: which accepted activity adds to which
// counter of its service and of which user (Tally), how a report sums them
// (ServiceTotals.AddTally, UserUsage.AddTally), which gauge report stands
// (Gauge, Supersedes, ServiceTotals.ApplyGauge) and how user events fold into an
// account (UserUsage.ApplyAccount).

// ServiceTally is what one accepted activity adds to its service's counters.
type ServiceTally struct {
	Messages    int64              // messages sent
	Attachments int64              // attachments sent
	Features    [NumFeatures]int64 // uses of each feature, by Feature-1
}

// UserTally is what one accepted activity adds to one user's counters, and
// the latest times it carries for them.
type UserTally struct {
	User GUID
	// Named is whether the activity makes User known to the service
	// (Activity.Names): a user is reported once an activity names them.
	Named bool

	Sent                int64 // messages sent
	Received            int64 // messages received
	Attachments         int64 // attachments sent
	AttachmentBytes     int64 // bytes of the attachments sent
	InvitationsSent     int64 // invited events naming User as inviter
	InvitationsAccepted int64 // registered events naming User as inviter

	LastSent     time.Time // a message sent
	LastReceived time.Time // a message received
	LastActive   time.Time // a login, registration, message sent or feature use
}

// IsZero reports whether t adds nothing to its user.
func (t *UserTally) IsZero() bool { return *t == UserTally{User: t.User} }

// Tally returns what a, once accepted, adds to its service's counters, and
// appends to dst what it adds to each user, the others' untouched:
//
//   - a message counts one message and its attachments for the service; one
//     message sent with its attachments and bytes for the sender, whose last
//     message sent and last activity it is; one message received for each
//     recipient, whose last message received it is;
//   - a feature use counts one use of the feature (1 to NumFeatures) for the
//     service, and is its user's last activity;
//   - a login or registration is its user's last activity; an invited event
//     naming an inviter counts an invitation sent for the inviter, a
//     registered event naming one an invitation accepted;
//   - gauges (ActivityUsers, ActivityStorage) count nothing: the latest
//     report stands (see Supersedes);
//   - an activity that names its user (Activity.Names) marks them Named.
//
// The sender or user comes first, then the recipients in order, then the
// inviter; a user may appear more than once (a sender among the recipients).
// Users to whom a adds nothing are left out.
func (a *Activity) Tally(dst []UserTally) ([]UserTally, ServiceTally) {
	var svc ServiceTally
	own := UserTally{User: a.User, Named: a.Names()}
	switch a.Kind {
	case ActivityMessage:
		svc.Messages, svc.Attachments = 1, a.Attachments
		own.Sent, own.Attachments, own.AttachmentBytes = 1, a.Attachments, a.AttachmentBytes
		own.LastSent, own.LastActive = a.Time, a.Time
	case ActivityFeature:
		if a.Feature >= 1 && a.Feature <= NumFeatures {
			svc.Features[a.Feature-1] = 1
		}
		own.LastActive = a.Time
	case ActivityUser:
		if a.UserEvent == UserLogin || a.UserEvent == UserRegistered {
			own.LastActive = a.Time
		}
	}
	if !own.IsZero() {
		dst = append(dst, own)
	}
	if a.Kind == ActivityMessage {
		for _, r := range a.Recipients {
			dst = append(dst, UserTally{User: r, Received: 1, LastReceived: a.Time})
		}
	}
	if a.Kind == ActivityUser && !a.InvitedBy.IsZero() {
		switch a.UserEvent {
		case UserInvited:
			dst = append(dst, UserTally{User: a.InvitedBy, InvitationsSent: 1})
		case UserRegistered:
			dst = append(dst, UserTally{User: a.InvitedBy, InvitationsAccepted: 1})
		}
	}
	return dst, svc
}

// AddTally adds an activity's service counters to t.
func (t *ServiceTotals) AddTally(s ServiceTally) {
	t.Messages += s.Messages
	t.Attachments += s.Attachments
	for i, n := range s.Features {
		t.Features[i] += n
	}
}

// ApplyGauge sets the gauge that a reports (ActivityUsers or
// ActivityStorage) to its value; other kinds change nothing. Of a period's
// reports, the one to apply is the latest before its end (Supersedes).
func (t *ServiceTotals) ApplyGauge(a *Activity) {
	switch a.Kind {
	case ActivityUsers:
		t.Users = a.Users
	case ActivityStorage:
		t.StorageBytes = a.StorageBytes
	}
}

// Gauge reports whether a is a gauge report (ActivityUsers or
// ActivityStorage): of a gauge's reports, the latest stands (Supersedes)
// rather than each adding to a counter.
func (a *Activity) Gauge() bool { return a.Kind == ActivityUsers || a.Kind == ActivityStorage }

// Supersedes reports whether the gauge report a stands over b, a report of
// the same gauge: a is later, or at the same time with the greater ID.
func (a *Activity) Supersedes(b *Activity) bool {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c > 0
	}
	return strings.Compare(a.ID, b.ID) > 0
}

// AddTally adds to u, whose User is t.User, an accepted activity's tally
// for them: the latest times whenever the activity is before the report's
// end, the sums only when it is within the report's period (inPeriod).
func (u *UserUsage) AddTally(t *UserTally, inPeriod bool) {
	u.LastMsgSent = Later(u.LastMsgSent, t.LastSent)
	u.LastMsgRetrieved = Later(u.LastMsgRetrieved, t.LastReceived)
	u.LastActivity = Later(u.LastActivity, t.LastActive)
	if !inPeriod {
		return
	}
	u.MessagesSent += t.Sent
	u.MessagesReceived += t.Received
	u.AttachmentsCount += t.Attachments
	u.AttachmentsSize += t.AttachmentBytes
	u.InvitationsSent += t.InvitationsSent
	u.InvitationsAccepted += t.InvitationsAccepted
}
