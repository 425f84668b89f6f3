package usage

import (
	"time"
)

// ActivityKind is what an activity event of a service reports.
type ActivityKind int

const (
	ActivityMessage ActivityKind = iota + 1 // a user sent a message
	ActivityFeature                         // a user used a feature
	ActivityUsers                           // the service's user counts (a gauge)
	ActivityStorage                         // the service's attachment storage (a gauge)
	ActivityUser                            // something happened to one user's account
)

var activityKinds = enum[ActivityKind]{what: "an activity type", field: "type", first: ActivityMessage,
	names: []string{"message", "feature", "users", "storage", "user"}}

func (k ActivityKind) String() string { return activityKinds.name(k) }

// ParseActivityKind parses an activity kind name, ignoring case.
func ParseActivityKind(s string) (ActivityKind, error) { return activityKinds.parse(s) }

// Feature is a billable feature of the platform.
type Feature int

const (
	FeatureSecureMessagingGateway Feature = iota + 1
	FeatureSecureMessagingPlus
	FeatureDataLeakPrevention
	FeatureSecureLargeFiles
	FeatureSecureForms
)

// NumFeatures is the number of features; Feature values run from 1 to it.
const NumFeatures = 5

var features = enum[Feature]{what: "a feature", field: "feature", first: FeatureSecureMessagingGateway,
	names: []string{"SecureMessagingGateway", "SecureMessagingPlus", "DataLeakPrevention", "SecureLargeFiles", "SecureForms"}}

func (f Feature) String() string { return features.name(f) }

// ParseFeature parses a feature name, ignoring case.
func ParseFeature(s string) (Feature, error) { return features.parse(s) }

// UserEvent is what happened to a user's account.
type UserEvent int

const (
	UserCreated UserEvent = iota + 1
	UserRegistered
	UserLogin
	UserDisabled
	UserEnabled
	UserInvited
)

var userEvents = enum[UserEvent]{what: "a user event", field: "event", first: UserCreated,
	names: []string{"created", "registered", "login", "disabled", "enabled", "invited"}}

func (e UserEvent) String() string { return userEvents.name(e) }

// ParseUserEvent parses a user event name, ignoring case.
func ParseUserEvent(s string) (UserEvent, error) { return userEvents.parse(s) }

// UserStatus is whether a user's account is enabled. Users are disabled,
// never deleted.
type UserStatus int

const (
	UserActive UserStatus = iota + 1
	UserDisabledStatus
)

var userStatuses = enum[UserStatus]{what: "a user status", field: "status", first: UserActive, names: []string{"Active", "Disabled"}}

func (s UserStatus) String() string { return userStatuses.name(s) }

// ParseUserStatus parses Active or Disabled, ignoring case.
func ParseUserStatus(s string) (UserStatus, error) { return userStatuses.parse(s) }

// UserGroupType is the kind of a user: only enabled professional users are
// billable; guests are free.
type UserGroupType int

const (
	GroupProfessional UserGroupType = iota + 1
	GroupGuest
)

var groupTypes = enum[UserGroupType]{what: "a user group type", field: "groupType", first: GroupProfessional,
	names: []string{"Professional", "Guest"}}

func (g UserGroupType) String() string { return groupTypes.name(g) }

// ParseUserGroupType parses Professional or Guest, ignoring case.
func ParseUserGroupType(s string) (UserGroupType, error) { return groupTypes.parse(s) }

// UserCounts are a service's user numbers by kind, reported together as a
// gauge.
type UserCounts struct {
	Total, Pro, Guest, Disabled, Unregistered int64
}

// Activity is one event of a service's activity. Its ID is the idempotency
// key within the service. Which fields matter depends on Kind; the others are
// zero.
type Activity struct {
	ID   string
	Time time.Time
	Kind ActivityKind
	// User is the sender of a message, the user of a feature, or the user a
	// user event is about.
	User GUID

	// ActivityMessage: the recipients that are users of the service (external
	// recipients are not kept), and the attachments sent.
	Recipients      []GUID
	Attachments     int64
	AttachmentBytes int64

	Feature Feature // ActivityFeature

	Users        UserCounts // ActivityUsers
	StorageBytes int64      // ActivityStorage

	// ActivityUser: the event, and the account's details as of it; empty
	// and zero fields leave what earlier events set.
	UserEvent UserEvent
	Email     string
	FirstName string
	LastName  string
	GroupName string
	Status    UserStatus
	GroupType UserGroupType
	GroupGUID GUID
	// InvitedBy is the user who sent the invitation, on invited and
	// registered events; it counts an invitation sent or accepted for them.
	InvitedBy GUID
}

// Names reports whether the activity makes its User known to the service:
// user events, messages sent and features used do; a user who only received
// messages or sent invitations is not listed until they do something.
func (a *Activity) Names() bool {
	return !a.User.IsZero() && (a.Kind == ActivityUser || a.Kind == ActivityMessage || a.Kind == ActivityFeature)
}

// ServiceTotals is the usage of one service over a period: counters summed
// over the period, gauges as last reported before its (exclusive) end.
type ServiceTotals struct {
	Users        UserCounts         // gauge
	StorageBytes int64              // gauge
	Messages     int64              // counter: messages sent
	Attachments  int64              // counter: attachments sent
	Features     [NumFeatures]int64 // counter: uses of each feature, by Feature-1
}

// UserUsage is one user's account as of the (exclusive) end of a period and
// their usage within it.
type UserUsage struct {
	User      GUID
	Email     string
	FirstName string
	LastName  string
	GroupName string
	Status    UserStatus // Active unless a later event disabled the user
	GroupType UserGroupType
	GroupGUID GUID

	CreatedOn      time.Time // first created event; zero when none
	RegisteredOn   time.Time // first registered event
	LastLogin      time.Time
	InvitedBy      GUID   // from the latest invited event naming an inviter
	InvitedByEmail string // the inviter's email as of the period's end

	// Latest times before the end of the period.
	LastMsgSent      time.Time
	LastMsgRetrieved time.Time // the latest message received (usaged has no retrieval events)
	LastActivity     time.Time // the latest login, registration, message sent or feature use

	// Sums over the period.
	MessagesSent        int64
	MessagesReceived    int64
	AttachmentsCount    int64
	AttachmentsSize     int64
	InvitationsSent     int64
	InvitationsAccepted int64
}

// ApplyAccount folds a user event about u.User into its account details.
// Events must be applied in order of (Time, ID).
func (u *UserUsage) ApplyAccount(a *Activity) {
	if a.Kind != ActivityUser {
		return
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&u.Email, a.Email)
	set(&u.FirstName, a.FirstName)
	set(&u.LastName, a.LastName)
	set(&u.GroupName, a.GroupName)
	if a.Status != 0 {
		u.Status = a.Status
	}
	if a.GroupType != 0 {
		u.GroupType = a.GroupType
	}
	if !a.GroupGUID.IsZero() {
		u.GroupGUID = a.GroupGUID
	}
	switch a.UserEvent {
	case UserCreated:
		if u.CreatedOn.IsZero() {
			u.CreatedOn = a.Time
		}
	case UserRegistered:
		if u.RegisteredOn.IsZero() {
			u.RegisteredOn = a.Time
		}
		u.LastActivity = Later(u.LastActivity, a.Time)
	case UserLogin:
		u.LastLogin = a.Time
		u.LastActivity = Later(u.LastActivity, a.Time)
	case UserDisabled:
		u.Status = UserDisabledStatus
	case UserEnabled:
		u.Status = UserActive
	case UserInvited:
		if !a.InvitedBy.IsZero() {
			u.InvitedBy = a.InvitedBy
		}
	}
	if u.Status == 0 {
		u.Status = UserActive
	}
}

// Later returns the later of a and b.
func Later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// PeriodType is the length of a report's period.
type PeriodType int

const (
	Daily PeriodType = iota + 1
	Monthly
)

var periodTypes = enum[PeriodType]{what: "a period type", field: "periodType", first: Daily, names: []string{"Daily", "Monthly"}}

func (p PeriodType) String() string { return periodTypes.name(p) }

// ParsePeriodType parses Daily or Monthly, ignoring case.
func ParsePeriodType(s string) (PeriodType, error) { return periodTypes.parse(s) }

// Period is a UTC day or calendar month.
type Period struct {
	Type  PeriodType
	Start time.Time // midnight UTC starting the day or month
}

// PeriodOf returns the period of type pt containing t (its time of day, and
// for months its day, are ignored).
func PeriodOf(pt PeriodType, t time.Time) Period {
	t = t.UTC()
	y, m, d := t.Date()
	if pt == Monthly {
		d = 1
	}
	return Period{Type: pt, Start: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// End returns the exclusive end of the period.
func (p Period) End() time.Time {
	if p.Type == Monthly {
		return p.Start.AddDate(0, 1, 0)
	}
	return p.Start.AddDate(0, 0, 1)
}

// Periods returns the periods of type pt from from to to, excluded, oldest
// first: the periods of a series (store.Reports.ServiceSeries). from and to
// must each start a period of type pt, to not before from; otherwise it
// fails with a KindInvalid error.
func Periods(pt PeriodType, from, to time.Time) ([]Period, error) {
	if pt != Daily && pt != Monthly {
		return nil, Errorf(KindInvalid, "step", "a series is Daily or Monthly, got %d", pt)
	}
	if !PeriodOf(pt, from).Start.Equal(from) || to.Before(from) || !PeriodOf(pt, to).Start.Equal(to) {
		return nil, Errorf(KindInvalid, "from", "a %s series runs from the start of a period to the start of a later one: got %s to %s", pt, from, to)
	}
	var ps []Period
	for p := PeriodOf(pt, from); p.Start.Before(to); p = PeriodOf(pt, p.End()) {
		ps = append(ps, p)
	}
	return ps, nil
}
