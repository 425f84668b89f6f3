// Package store defines what usaged needs from a storage backend: durable,
// deduplicated recording of usage events with their counts, aggregate queries
// over those counts, the registry of organizations and OAuth clients, and the
// services of the service-usage reports with their activity.
//
// Backends live in subpackages named after their engine (store/pebble). Every
// backend passes the conformance suite in store/storetest. No backend type or
// encoding crosses this interface: it speaks only the usage domain.
package store

import (
	"context"
	"time"

	"github.com/usaged/usaged/usage"
)

// Store is a complete storage backend. All methods are safe for concurrent use.
//
// A backend that can no longer write safely (a full disk, a failed WAL or
// log write) fails every later write with an error of kind
// usage.KindUnavailable until it is reopened, rather than panic or block.
// A backend may also keep a reserve of disk space: below it, the writes that
// add data (Append, AppendActivity, the Put methods of Registry and
// Services, PutExecution of a queued execution) fail with
// usage.KindUnavailable, while deletions, ExpireDedupe and the updates that
// finish or cancel an execution proceed.
type Store interface {
	Events
	Registry
	Executions
	Services
	// Close flushes and releases the backend. Calls after Close return errors.
	Close() error
}

// Events records usage events and answers queries over their counts.
type Events interface {
	// Append records events and returns one outcome per event, in order.
	//
	// An event is a Duplicate when an event with the same ID was already
	// recorded for the same OrganizationID and that record's event time is at
	// or after dedupeFrom; an ID repeated within events counts as recorded at
	// its first occurrence. Every other event is Accepted: it is recorded and
	// its counts (usage.CountsFor(Status)) are added to the group of its
	// organization, UTC hour, client, user, template, method and platform.
	//
	// Events must already be valid (see the ingest package): Append does not
	// check fields, times or organization access.
	//
	// Atomicity and durability: when Append returns a nil error, every Accepted
	// event, its dedupe record and its counts are on stable storage together;
	// a crash at any moment leaves either all or none of one call's effects.
	// On a non-nil error nothing of the call may be assumed recorded, and the
	// caller must not acknowledge any of its events. Accepted events are
	// visible to Query as soon as Append returns.
	Append(ctx context.Context, events []usage.Event, dedupeFrom time.Time) ([]usage.Outcome, error)

	// Query answers q, which must be normalized (usage.Query.Normalize): the
	// interval is whole hours, start inclusive, end exclusive. Rows are the
	// groups with at least one request, ordered by usage.CompareRows. When q
	// groups by client, rows carry the latest client name recorded with events.
	// A query with more than q.MaxRows groups fails with a usage.KindInvalid
	// error naming the limit; it is never silently truncated.
	Query(ctx context.Context, q usage.Query) ([]usage.Row, error)

	// ExpireDedupe forgets dedupe records whose event time is before t. It
	// never changes counts. Backends may also expire records on their own.
	ExpireDedupe(ctx context.Context, before time.Time) error

	// ClientNames returns every client ID with at least one recorded event
	// in the organization, mapped to the latest client name recorded with
	// its events ("" when none was). An organization without events has an
	// empty map.
	ClientNames(ctx context.Context, orgID string) (map[string]string, error)
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

// Services keeps the registry of the service-usage reports (partners,
// resellers, collections, services and API keys) and the activity of
// services. The registry is small: callers load it whole and keep it in
// memory, so it has only Put and list methods. Put methods create or replace
// by GUID (by Digest for keys) and are durable when they return.
type Services interface {
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

	// AppendActivity records activity events of service and returns one
	// outcome per event, in order. An event is a Duplicate when an event with
	// the same ID was already recorded for the same service with an event
	// time at or after dedupeFrom (backends may compare whole hours, as
	// Append does), or occurs earlier in events; otherwise it
	// is Accepted and recorded. Events must already be valid (see the ingest
	// package). Atomicity and durability are those of Events.Append: on a nil
	// error every accepted event is on stable storage, together, and visible
	// to the reports below.
	AppendActivity(ctx context.Context, service usage.GUID, events []usage.Activity, dedupeFrom time.Time) ([]usage.Outcome, error)

	// ServiceTotals reports service's usage in [from, to), both midnight UTC:
	// the counters summed over the accepted events with times in the range;
	// each gauge (the user counts, the storage) as carried by the latest
	// event before to, ties in time going to the greatest ID; zero when there
	// is none. A service without activity has zero totals.
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
	// of to) and its
	// usage in [from, to): messages sent with their attachments and bytes by
	// the sender, received by each recipient, invitations sent and accepted
	// by the inviter (invited and registered events naming InvitedBy), and
	// the latest message sent, received and activity before to. When only is
	// not zero, just that user is reported (none if unknown).
	ServiceUsers(ctx context.Context, service usage.GUID, from, to time.Time, only usage.GUID) ([]usage.UserUsage, error)
}
