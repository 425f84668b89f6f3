// Package store defines what usaged needs from storage, as two contracts
// with lifecycles of their own, so that a backend may implement one without
// the other:
//
//   - Usage: deduplicated recording of API request events and of services'
//     activity, with the counts and reports derived from them. It grows with
//     traffic and is written on every ingest.
//   - Metadata: organizations and OAuth clients, the service-usage registry
//     (partners, resellers, collections, services, API keys), usage limits
//     and asynchronous query executions with their rows. It is small and
//     written rarely.
//
// Each contract is made of small interfaces, and each consumer declares the
// narrowest one it uses. What only some engines can offer (disk usage, a
// failed state, dedupe expiry) is an optional interface below, found by type
// assertion.
//
// Backends live in subpackages named after their engine (store/pebble,
// store/memory); store/open opens the one a location names. Every backend
// passes the conformance suites in store/storetest (RunUsage, RunMetadata)
// for the contracts it implements. No backend type or encoding crosses these
// interfaces: they speak only the usage domain, and the counting rules of
// activity are the usage package's (usage.Activity.Tally).
//
// All methods of every interface here are safe for concurrent use.
//
// A backend that can no longer write safely (a full disk, a failed WAL or
// log write) fails every later write with an error of kind
// usage.KindUnavailable until it is reopened, rather than panic or block.
// A backend may also keep a reserve of disk space: below it, the writes that
// add data (Append, AppendActivity, the Put methods, PutExecution of a queued
// execution) fail with usage.KindUnavailable, while deletions, dedupe expiry
// and the updates that finish or cancel an execution proceed.
package store

import (
	"context"
	"time"

	"github.com/usaged/usaged/usage"
)

// Usage is the usage half of a backend: events and activity, recorded
// exactly once, and the counts and reports over them.
//
// # Exactly once
//
// Append and AppendActivity deduplicate by an idempotency key:
//
//   - the key is the event ID within its organization (usage.Event.ID and
//     OrganizationID) for Append, and the activity ID within its service
//     (usage.Activity.ID and the service GUID) for AppendActivity; the same
//     ID in two organizations, or two services, is two events;
//   - the window: an event is a Duplicate when an event with its key was
//     recorded with an event time at or after dedupeFrom, or occurs earlier
//     in the same call; otherwise it is Accepted. A backend may compare
//     whole UTC hours (both times truncated to the hour), never coarser. A
//     key recorded only before dedupeFrom is forgotten for that call: the
//     event is Accepted and counted again. The caller chooses dedupeFrom
//     (ingest: now minus its dedupe window); a backend may forget records
//     older than every window in use (see DedupeExpirer);
//   - concurrent calls: of two calls carrying the same key, at the same time
//     and to any node of a distributed backend, exactly one reports the event
//     Accepted and the other Duplicate; never both Accepted. A Duplicate may
//     be answered before the call that reports Accepted has returned or
//     committed, so a Duplicate means "another call has this key", not "this
//     key is durable": the key is durable once that call returns without
//     error, and should that call fail instead, a later call with the key
//     may be Accepted (see below);
//   - an acknowledged call (nil error): every Accepted event, its key and
//     its counts are on stable storage, and a crash loses none of them; they
//     are visible to Query, ClientNames and the reports once the call
//     returns;
//   - a failed call (non-nil error): nothing of it may be assumed recorded
//     or not recorded, and the caller acknowledges none of its events. A
//     retry with the same keys is safe: each event counts once in all, and
//     the retry reports as Duplicate only those the failed call did record
//     (a key is never kept without its counts: a backend that reserves keys
//     before writing counts either completes the write or releases them).
//
// The embedded backend (store/pebble) gives more, which other backends need
// not: one call's effects are atomic, a crash leaving all or none of them;
// calls are serialized, so a Duplicate is answered only for a key that an
// earlier call has applied, though possibly before that call's sync to disk
// has finished (a sync that fails puts the store in its failed state, see
// Health).
type Usage interface {
	EventAppender
	EventQuerier
	ActivityAppender
	Reports
	// Close flushes and releases the backend. Calls after Close return
	// errors.
	Close() error
}

// EventAppender records API request events.
type EventAppender interface {
	// Append records events and returns one outcome per event, in order,
	// deduplicated as the Usage contract says ("Exactly once"). An Accepted
	// event's counts (usage.CountsFor(Status)) are added to the group of its
	// organization, UTC hour, client, user, template, method and platform,
	// and its client name becomes the client's latest.
	//
	// Events must already be valid (see the ingest package): Append does not
	// check fields, times or organization access.
	Append(ctx context.Context, events []usage.Event, dedupeFrom time.Time) ([]usage.Outcome, error)
}

// EventQuerier answers queries over the counts of API request events.
type EventQuerier interface {
	// Query answers q, which must be normalized (usage.Query.Normalize): the
	// interval is whole hours, start inclusive, end exclusive. Rows are the
	// groups with at least one request, ordered by usage.CompareRows. When q
	// groups by client, rows carry the latest client name recorded with events.
	// A query with more than q.MaxRows groups fails with a usage.KindInvalid
	// error naming the limit; it is never silently truncated.
	Query(ctx context.Context, q usage.Query) ([]usage.Row, error)

	// ClientNames returns every client ID with at least one recorded event
	// in the organization, mapped to the latest client name recorded with
	// its events ("" when none was). An organization without events has an
	// empty map.
	ClientNames(ctx context.Context, orgID string) (map[string]string, error)
}

// ActivityAppender records the activity of services.
type ActivityAppender interface {
	// AppendActivity records activity events of service and returns one
	// outcome per event, in order, deduplicated as the Usage contract says
	// ("Exactly once"). Accepted events count as usage.Activity.Tally says
	// for the reports. Events must already be valid (see the ingest
	// package).
	AppendActivity(ctx context.Context, service usage.GUID, events []usage.Activity, dedupeFrom time.Time) ([]usage.Outcome, error)
}

// Reports answers the service-usage reports over recorded activity.
type Reports interface {
	// ServiceTotals reports service's usage in [from, to), both midnight UTC:
	// the counters (usage.ServiceTally) summed over the accepted events with
	// times in the range; each gauge (the user counts, the storage) as
	// carried by the latest event before to, ties in time going to the
	// greatest ID (usage.Activity.Supersedes); zero when there is none. A
	// service without activity has zero totals.
	ServiceTotals(ctx context.Context, service usage.GUID, from, to time.Time) (usage.ServiceTotals, error)

	// ServiceSeries reports service's usage in each period of type step
	// (usage.Daily or usage.Monthly) from from, included, to to, excluded,
	// oldest first: for each, what ServiceTotals reports over the period.
	// from and to must each start a period of that type (midnight UTC; for
	// Monthly the first of a month), to not before from; otherwise it fails
	// with usage.KindInvalid. It reads the range once, so a year of days
	// costs about what one ServiceTotals over the year does.
	ServiceSeries(ctx context.Context, service usage.GUID, from, to time.Time, step usage.PeriodType) ([]usage.ServiceTotals, error)

	// ServiceUsers reports the users of service known before to
	// (usage.Activity.Names), ordered by GUID, each with its account as of to
	// (Status Active, then usage.UserUsage.ApplyAccount over its user events
	// before to, in (Time, ID) order; InvitedByEmail the inviter's email as
	// of to) and its usage (usage.UserUsage.AddTally of every accepted
	// event's usage.UserTally before to, the sums only of those in [from,
	// to)): messages sent with their attachments and bytes by the sender,
	// received by each recipient, invitations sent and accepted by the
	// inviter (invited and registered events naming InvitedBy), and the
	// latest message sent, received and activity before to. When only is
	// not zero, just that user is reported (none if unknown).
	ServiceUsers(ctx context.Context, service usage.GUID, from, to time.Time, only usage.GUID) ([]usage.UserUsage, error)
}

// Metadata is the metadata half of a backend: the registries and the query
// executions. Every write is durable when it returns.
type Metadata interface {
	Registry
	ServiceRegistry
	Limits
	Executions
	// Close flushes and releases the backend. Calls after Close return
	// errors.
	Close() error
}

// Executions keeps asynchronous query executions and their result rows
// durably: what PutExecution or FinishExecution stored survives a crash once
// they return. A record reads back as it was stored, every field of
// usage.Execution included (ResultBytes too: the query service rebuilds each
// organization's usage of its limits from the records when it starts),
// except that times are in UTC to the millisecond at least and Error.Err,
// the cause meant for logs, is not kept.
type Executions interface {
	// PutExecution creates or replaces the record of e by e.ID, leaving any
	// stored rows of e untouched.
	PutExecution(ctx context.Context, e usage.Execution) error
	// FinishExecution stores rows as e's result and replaces its record
	// with e, atomically: a reader sees either the old record and no rows,
	// or e and all of rows. e.RowCount must equal len(rows).
	FinishExecution(ctx context.Context, e usage.Execution, rows []usage.Row) error
	// Execution returns the record with id, or an error of kind
	// usage.KindNotFound.
	Execution(ctx context.Context, id string) (usage.Execution, error)
	// ExecutionRows returns up to limit rows of execution id starting at
	// offset (0-based), in the order they were stored. An offset at or past
	// the end returns no rows; a missing execution returns an error of kind
	// usage.KindNotFound.
	ExecutionRows(ctx context.Context, id string, offset, limit int) ([]usage.Row, error)
	// ExecutionsBy calls fn with every stored record, in no particular
	// order, until fn returns false.
	ExecutionsBy(ctx context.Context, fn func(usage.Execution) bool) error
	// DeleteExecution removes the record of id and its rows; deleting a
	// missing execution is not an error.
	DeleteExecution(ctx context.Context, id string) error
}

// Registry keeps organizations and OAuth clients.
type Registry interface {
	// PutOrganization creates or replaces an organization by ID.
	PutOrganization(ctx context.Context, o usage.Organization) error
	// Organization returns the organization with id, or an error of kind
	// usage.KindNotFound.
	Organization(ctx context.Context, id string) (usage.Organization, error)
	// Organizations lists all organizations ordered by ID.
	Organizations(ctx context.Context) ([]usage.Organization, error)

	// PutClient creates or replaces a client by (OrganizationID, ID).
	PutClient(ctx context.Context, c usage.Client) error
	// Client returns the client with id in any organization, or an error of
	// kind usage.KindNotFound. Client IDs are unique across organizations.
	Client(ctx context.Context, id string) (usage.Client, error)
	// Clients lists the clients of an organization ordered by ID.
	Clients(ctx context.Context, orgID string) ([]usage.Client, error)
	// DeleteClient removes a client; deleting a missing client returns an
	// error of kind usage.KindNotFound.
	DeleteClient(ctx context.Context, orgID, id string) error
}

// Limits keeps the usage limits of organizations (usage.Limit), each by
// its ID within its organization. A limit reads back as it was stored,
// every field included, except that times are in UTC to the millisecond at
// least. Callers validate limits (usage.Limit.Normalize) before they put
// them: a store does not.
type Limits interface {
	// PutLimit creates or replaces the limit l.ID of organization
	// l.OrganizationID. The same ID in two organizations is two limits.
	PutLimit(ctx context.Context, l usage.Limit) error
	// UpdateLimit replaces the limit l.ID of organization l.OrganizationID
	// only if the stored one is at version, checked and replaced in one
	// step: of updates made at once from the same version exactly one
	// succeeds, and the others are errors of kind usage.KindConflict. A
	// missing limit, or one of another organization, is an error of kind
	// usage.KindNotFound. Nothing changes unless it succeeds.
	UpdateLimit(ctx context.Context, l usage.Limit, version int64) error
	// Limit returns the limit id of organization orgID, or an error of
	// kind usage.KindNotFound, also when the limit belongs to another
	// organization.
	Limit(ctx context.Context, orgID, id string) (usage.Limit, error)
	// Limits lists the limits of organization orgID ordered by ID; none
	// is an empty list, not an error.
	Limits(ctx context.Context, orgID string) ([]usage.Limit, error)
	// DeleteLimit removes the limit id of organization orgID; a missing
	// limit, or one of another organization, is an error of kind
	// usage.KindNotFound and changes nothing.
	DeleteLimit(ctx context.Context, orgID, id string) error
}

// ServiceRegistry keeps the registry of the service-usage reports: partners,
// resellers, collections, services and API keys. It is small: callers load
// it whole and keep it in memory, so it has only Put and list methods. Put
// methods create or replace by GUID (by Digest for keys); lists are in no
// particular order.
type ServiceRegistry interface {
	PutPartner(ctx context.Context, p usage.Partner) error
	Partners(ctx context.Context) ([]usage.Partner, error)
	PutReseller(ctx context.Context, r usage.Reseller) error
	Resellers(ctx context.Context) ([]usage.Reseller, error)
	PutCollection(ctx context.Context, c usage.Collection) error
	Collections(ctx context.Context) ([]usage.Collection, error)
	PutService(ctx context.Context, s usage.Service) error
	Services(ctx context.Context) ([]usage.Service, error)
	PutAPIKey(ctx context.Context, k usage.APIKey) error
	APIKeys(ctx context.Context) ([]usage.APIKey, error)
	// DeleteAPIKey removes a key; a missing key is an error of kind
	// usage.KindNotFound.
	DeleteAPIKey(ctx context.Context, digest [32]byte) error
}

// EventLister is implemented by a Usage backend that keeps the raw events
// it accepted (a journal), for debugging a count: which events made it.
// Callers find it by type assertion; the embedded backend keeps only
// counts and does not implement it.
type EventLister interface {
	// ListEvents returns, in order, up to p.Limit accepted events of
	// p.OrganizationID with times in p.Interval (start inclusive, end
	// exclusive) that match p.ClientIDs, p.UserIDs, p.TemplateURIs and
	// p.HTTPMethods (each, when not empty, a set of allowed values), and
	// the cursor of the page after them ("" when there is none). The order
	// is by time, then client, then event ID; p.After, a cursor from an
	// earlier page of the same listing, starts after the last event of
	// that page. Duplicates are never listed: each listed event is counted
	// once in Query. The events carry every field they were accepted with,
	// their times to the nanosecond.
	ListEvents(ctx context.Context, p EventPage) ([]usage.Event, string, error)
}

// EventPage selects a page of raw events for EventLister.
type EventPage struct {
	OrganizationID string
	Interval       usage.Interval
	ClientIDs      []string
	UserIDs        []string
	TemplateURIs   []string
	HTTPMethods    []string
	// After is the cursor returned with the previous page, "" for the first.
	// It is opaque to callers; a malformed one is a usage.KindInvalid error
	// on field "cursor".
	After string
	// Limit is the page size, 1 or more.
	Limit int
}

// DedupeExpirer is implemented by a Usage backend whose dedupe records are
// expired by its caller rather than by the engine itself (a TTL). Callers
// find it by type assertion; a backend without it expires on its own or
// keeps every record.
type DedupeExpirer interface {
	// ExpireDedupe forgets dedupe records, of events and of activity,
	// whose event time is before before. It never changes counts.
	ExpireDedupe(ctx context.Context, before time.Time) error
}

// Health is implemented by a backend that can fail while running (a full
// disk, a failed log write) and then refuse writes until reopened; a server
// reports it on its health check and restarts.
type Health interface {
	// Failed returns nil while the backend accepts writes, and once it has
	// failed an error of kind usage.KindUnavailable whose cause
	// (errors.Unwrap) says why. A failed backend stays failed until it is
	// opened again.
	Failed() error
	// FailedC returns a channel that is closed when the backend fails.
	FailedC() <-chan struct{}
}

// DiskUser is implemented by a backend that keeps its data on a local disk.
type DiskUser interface {
	// DiskUsage returns the bytes the backend occupies on disk.
	DiskUsage() uint64
	// FreeDiskBytes returns the free space of the filesystem holding the
	// data, and false when it is not known.
	FreeDiskBytes() (int64, bool)
}

// Webhooks keeps organizations' webhook endpoints and the log of deliveries
// to them. A Metadata backend implements it; callers find it by type
// assertion. Every write is durable when it returns.
type Webhooks interface {
	// PutWebhook creates or replaces an endpoint by (OrganizationID, ID).
	// Endpoint IDs are unique across organizations. It does not validate
	// e (see usage.WebhookEndpoint.Validate).
	PutWebhook(ctx context.Context, e usage.WebhookEndpoint) error
	// Webhook returns endpoint id of organization orgID, or an error of
	// kind usage.KindNotFound, also when id is another organization's.
	Webhook(ctx context.Context, orgID, id string) (usage.WebhookEndpoint, error)
	// Webhooks lists the endpoints of an organization ordered by ID.
	Webhooks(ctx context.Context, orgID string) ([]usage.WebhookEndpoint, error)
	// DeleteWebhook removes an endpoint and its deliveries; a missing
	// endpoint, or another organization's, is an error of kind
	// usage.KindNotFound.
	DeleteWebhook(ctx context.Context, orgID, id string) error

	// AppendDelivery records one attempt. Deliveries are kept per
	// endpoint, the newest MaxDeliveriesPerEndpoint of them: appending
	// beyond that forgets the oldest (by Time, then ID). An endpoint that
	// does not exist keeps none: the record is dropped without error.
	AppendDelivery(ctx context.Context, d usage.Delivery) error
	// Deliveries returns up to limit deliveries of endpoint endpointID of
	// organization orgID, newest first (by Time, then ID, both
	// descending), and the cursor of the next page ("" when there is
	// none). after is "" for the first page or the cursor of the previous
	// one; a malformed cursor is a usage.KindInvalid error on field
	// "after". An endpoint of another organization has none.
	Deliveries(ctx context.Context, orgID, endpointID, after string, limit int) ([]usage.Delivery, string, error)
	// Delivery returns delivery id of the endpoint, or an error of kind
	// usage.KindNotFound.
	Delivery(ctx context.Context, orgID, endpointID, id string) (usage.Delivery, error)
	// NotificationDeliveries returns every kept delivery of notification
	// notificationID to endpoint endpointID, oldest first: the delivery
	// worker rebuilds its retry schedule from them.
	NotificationDeliveries(ctx context.Context, endpointID, notificationID string) ([]usage.Delivery, error)
}

// MaxDeliveriesPerEndpoint bounds the delivery log of one endpoint.
const MaxDeliveriesPerEndpoint = 1000

// CommitWatcher is a Usage backend that shows one watcher every event it
// accepts as it commits, and writes what the watcher returns (Effects: the
// notifications it found and changes to state of its own) in the same
// commit as those events' counts (the embedded one, which is also an
// Outbox); callers find it by type assertion. The usage limits' evaluator
// is the watcher (package limiteval): its state is the minutes of rolling
// windows, which the counts by the hour cannot give back.
type CommitWatcher interface {
	// WatchCommits runs start while no append commits, so that what start
	// reads from the backend (its state included) is all that was
	// committed before, writes the Effects start returns, durably, and
	// unless either fails makes fn see, from the next commit on, the events
	// each append accepts (never a duplicate), in order, one commit at a
	// time. Neither may call the backend's appends or HoldCommits.
	WatchCommits(start func(state StateReader) (Effects, error), fn func(accepted []*usage.Event) Effects) error
	// HoldCommits runs fn while no append commits, so that what fn reads
	// from the backend is exactly what the watcher has seen so far, and
	// writes the Effects it returns, durably, before the next commit.
	HoldCommits(fn func(state StateReader) (Effects, error)) error
}

// Effects is what a commit watcher has a commit write beside the counts.
type Effects struct {
	Notifications []usage.Notification // into the outbox, as AppendNotifications
	State         []StateChange        // applied in order
}

// Empty reports whether e writes nothing.
func (e *Effects) Empty() bool { return len(e.Notifications) == 0 && len(e.State) == 0 }

// StateChange sets a key of the watcher's own state to Value, or deletes it
// when Value is nil. Keys are the watcher's: the backend keeps them apart
// from everything else it stores.
type StateChange struct {
	Key, Value []byte
}

// StateReader calls fn with every key of the watcher's state that begins
// with prefix, and its value, in key order; both are valid only during the
// call. It stops at fn's first error and returns it.
type StateReader func(prefix []byte, fn func(key, value []byte) error) error

// Outbox keeps notifications until they are delivered: a Usage backend
// that can write them in the same commit as the counts that cause them
// implements it (the embedded one), and so does the metadata store that a
// cluster's nodes share (store/postgres), which they all write to and
// deliver from; callers find it by type assertion. Every write is durable
// when it returns.
type Outbox interface {
	// AppendNotifications adds notifications to the outbox, pending; a
	// notification whose ID is pending already is left as it is. One
	// marked done is forgotten, and appended again it is pending again
	// (receivers deduplicate by its ID); a backend may instead remember it
	// as done for a while, and then appended again it stays done.
	AppendNotifications(ctx context.Context, ns []usage.Notification) error
	// PendingNotifications returns up to limit pending notifications,
	// oldest first (by Time, then ID). A backend shared by several nodes
	// leases what it returns to the caller's node for a while: the same
	// node reads them again, another does not until the lease ends.
	PendingNotifications(ctx context.Context, limit int) ([]usage.Notification, error)
	// MarkNotificationsDone takes the notifications with ids out of the
	// pending ones for good: they are never returned again. Unknown ids
	// are ignored.
	MarkNotificationsDone(ctx context.Context, ids []string) error
}

// OutboxWatcher is an Outbox that says when it has new notifications to
// deliver, so that the delivery worker need not wait for its next look;
// callers find it by type assertion.
type OutboxWatcher interface {
	// WatchOutbox has fn called after every write that adds pending
	// notifications (a commit whose watcher returned some, or
	// AppendNotifications), once the write is durable and with no lock
	// of the backend held, so that fn may read the outbox; fn must not
	// block. A later call replaces fn; nil stops the calls.
	WatchOutbox(fn func())
}
