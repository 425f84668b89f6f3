package clickhouse

// Import: the history of an embedded store, moved into an empty cluster
// database. The embedded store keeps counts, not events, so what moves is
// its hourly groups (as count blocks of "migration" batches, with their
// published rows), its clients' latest names, the activity of its services
// as it kept it (the counters of every service's and user's UTC days, the
// gauge reports and the user events, into imported_activity, where the
// reports start their fold) and its dedupe records within the window (as
// committed claims, under the same seed, so that an event sent again after
// the move is still a duplicate). The journals get nothing: raw events and
// activity start at the migration.
//
// Every write is deterministic in the source: the batch ids are hashes of
// the source's seed and of the chunk they name, the rows of a block are
// sorted, and a claim is only set where none is. A run that stopped halfway
// is finished by running it again, its blocks deduplicated by ClickHouse.
// The keeper's migration node (the source's seed) is what lets that second
// run into a database that is no longer empty.

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-zookeeper/zk"
	"github.com/zeebo/xxh3"

	"github.com/usaged/usaged/usage"
)

// ErrNotEmpty is the error (wrapped, with what the database holds) of an
// Import into a database that has data not written by an import of the
// same source.
var ErrNotEmpty = errors.New("the cluster database is not empty")

// ImportConfig configures an Import.
type ImportConfig struct {
	// Seed is the seed that keyed the hashes of the source's dedupe
	// records. It becomes the cluster's, so that the claim of an event id
	// is the key of its migrated record.
	Seed uint64
	// DedupeFrom is the start of the dedupe window: records of events
	// before it are not imported.
	DedupeFrom time.Time
	// Now is the clock the claims' expiry counts from; default time.Now.
	Now func() time.Time
	// BlockRows bounds the rows of one block; default 100,000. A second
	// run of an import must use the same value, or its blocks differ from
	// the first run's and are not recognised.
	BlockRows int
}

// ImportStats counts what an Import wrote.
type ImportStats struct {
	Groups   int // hourly groups
	Activity int // records of services' activity: days of counters, gauge reports, user events
	Batches  int // migration batches (blocks with their published rows)
	Names    int // client names
	Claims   int // committed claims of dedupe records within the window, of events and of activity
	Expired  int // dedupe records before the window, not imported
}

// Importer writes the history of another store into a cluster database, in
// the order of its methods: Group, ClientName, EventClaim, the records of
// services' activity (ServiceDay, UserDay, Gauge, UserEvent) and
// ActivityClaim in any order and any number, then Finish. It is not safe
// for concurrent use.
type Importer struct {
	s     *Store
	cfg   ImportConfig
	stats ImportStats

	// The hourly groups of the organization and month being gathered, and
	// the number of chunks of them already written.
	org    string
	month  int
	groups []usage.Row
	chunk  int
	// orgsDone are the organizations whose groups have all been seen.
	orgsDone map[string]bool

	names     []clientName
	nameChunk int
	claims    []claim

	// The activity records of the service and kind being gathered, and
	// the number of chunks of each service and kind already written.
	service     usage.GUID
	stateKind   uint8
	state       []stateRow
	stateChunks map[stateChunk]int
}

// The kinds of imported_activity's rows.
const (
	stateServiceDay = 1
	stateUserDay    = 2
	stateGauge      = 3
	stateUserEvent  = 4
)

// stateRow is a row of imported_activity, but for its service and batch.
type stateRow struct {
	user  string
	time  int64 // Unix s
	nanos uint32
	id    string
	body  string
}

type stateChunk struct {
	service usage.GUID
	kind    uint8
}

type clientName struct{ org, client, name string }

// importClaimsPerCall bounds the claims set in one round trip.
const importClaimsPerCall = claimCallSize

// Import starts an import into the store's database, which must be empty
// or hold only an earlier import of the same source (its seed), finished or
// not. It sets the cluster's seed to cfg.Seed. Nothing else may write to
// the database until Finish has returned.
func (s *Store) Import(ctx context.Context, cfg ImportConfig) (*Importer, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BlockRows <= 0 {
		cfg.BlockRows = 100_000
	}
	marker := s.root + "/migration"
	seed := binary.BigEndian.AppendUint64(nil, cfg.Seed)
	data, _, err := s.keeper.Get(marker)
	switch {
	case err == nil && string(data) != hex.EncodeToString(seed):
		return nil, fmt.Errorf("%w: it holds an import of another store (seed %s, this store's is %x): import into a fresh database",
			ErrNotEmpty, data, seed)
	case err == nil:
		// Another run of this import: nothing but it may have written.
		// Once nodes have taken events, the blocks of a run could fall out
		// of the deduplication window and count twice.
		held, err := s.holds(ctx, []string{"events", "activity"}, false)
		if err != nil {
			return nil, err
		}
		if len(held) > 0 {
			return nil, fmt.Errorf("%w: this store was imported into database %s, and usaged has recorded events in it since (%s): the import is done",
				ErrNotEmpty, s.cfg.Database, strings.Join(held, ", "))
		}
	case errors.Is(err, zk.ErrNoNode):
		held, err := s.holds(ctx, []string{"events", "event_counts", "client_hour_counts", "client_day_counts", "client_names", "activity", "imported_activity", "published"}, true)
		if err != nil {
			return nil, err
		}
		if len(held) > 0 {
			return nil, fmt.Errorf("%w: database %s has %s: import into a fresh database", ErrNotEmpty, s.cfg.Database, strings.Join(held, ", "))
		}
		if _, err := s.keeper.Create(marker, []byte(hex.EncodeToString(seed)), 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return nil, unavailable(err, "keeper %v: create %s", s.cfg.Keeper, marker)
		}
	default:
		return nil, unavailable(err, "keeper %v: read %s", s.cfg.Keeper, marker)
	}
	if err := s.setSeed(seed); err != nil {
		return nil, err
	}
	return &Importer{s: s, cfg: cfg, orgsDone: map[string]bool{}, stateChunks: map[stateChunk]int{}}, nil
}

// holds names what the database holds: rows in tables, batch records in
// the keeper, and, with claims, claims.
func (s *Store) holds(ctx context.Context, tables []string, claims bool) ([]string, error) {
	var held []string
	for _, table := range tables {
		var n uint64
		err := s.read(ctx, "what the database holds", func(ctx context.Context, r driver.Conn) error {
			return r.QueryRow(ctx, "SELECT count() FROM "+s.cfg.Database+"."+table).Scan(&n)
		})
		if err != nil {
			return nil, err
		}
		if n > 0 {
			held = append(held, fmt.Sprintf("%d rows in %s", n, table))
		}
	}
	batches, _, err := s.keeper.Children(s.root + "/batches")
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return nil, unavailable(err, "keeper %v: list %s/batches", s.cfg.Keeper, s.root)
	}
	if len(batches) > 0 {
		held = append(held, fmt.Sprintf("%d batch records in the keeper", len(batches)))
	}
	if claims {
		key, err := s.anyClaim(ctx)
		if err != nil {
			return nil, err
		}
		if key != "" {
			held = append(held, "claims in Redis (such as "+key+")")
		}
	}
	return held, nil
}

// anyClaim returns the key of a claim of the store, "" when it has none.
func (s *Store) anyClaim(ctx context.Context) (string, error) {
	var keys []string
	var err error
	for cursor := uint64(0); ; {
		keys, cursor, err = s.claims.Scan(ctx, cursor, s.claimPrefix()+"*", 1000).Result()
		if err != nil {
			return "", unavailable(err, "claims %s", s.cfg.Claims)
		}
		if len(keys) > 0 {
			return keys[0], nil
		}
		if cursor == 0 {
			return "", nil
		}
	}
}

// setSeed makes seed the cluster's. A seed already there is replaced: the
// database is empty (checked before, or this is a second run of the same
// import), so no claim was made under it.
func (s *Store) setSeed(seed []byte) error {
	path := s.root + "/seed"
	for {
		old, stat, err := s.keeper.Get(path)
		switch {
		case errors.Is(err, zk.ErrNoNode):
			_, err = s.keeper.Create(path, seed, 0, zk.WorldACL(zk.PermAll))
			if errors.Is(err, zk.ErrNodeExists) {
				continue
			}
		case err == nil && string(old) != string(seed):
			_, err = s.keeper.Set(path, seed, stat.Version)
			if errors.Is(err, zk.ErrBadVersion) {
				continue
			}
		}
		if err != nil {
			return unavailable(err, "keeper %v: set %s", s.cfg.Keeper, path)
		}
		return nil
	}
}

// Group adds one hourly group of the source: r.Date is its UTC hour, r's
// organization and dimensions name it. Groups of one organization must come
// together, in ascending hours (as pebble's Export gives them); the blocks
// are written as each organization's month is complete.
func (im *Importer) Group(ctx context.Context, r usage.Row) error {
	month := r.Date.Year()*100 + int(r.Date.Month())
	if r.OrganizationID != im.org || month != im.month {
		if err := im.flushGroups(ctx); err != nil {
			return err
		}
		switch {
		case r.OrganizationID == im.org && month < im.month:
			return fmt.Errorf("clickhouse import: groups of organization %q out of order: %s after month %d", r.OrganizationID, r.Date, im.month)
		case r.OrganizationID != im.org && im.orgsDone[r.OrganizationID]:
			return fmt.Errorf("clickhouse import: groups of organization %q do not come together", r.OrganizationID)
		case r.OrganizationID != im.org:
			im.orgsDone[im.org] = true
		}
		im.org, im.month, im.chunk = r.OrganizationID, month, 0
	}
	im.groups = append(im.groups, r)
	if len(im.groups) == im.cfg.BlockRows {
		return im.flushGroups(ctx)
	}
	return nil
}

// ClientName adds the latest name of a client.
func (im *Importer) ClientName(ctx context.Context, orgID, clientID, name string) error {
	im.names = append(im.names, clientName{orgID, clientID, name})
	if len(im.names) == im.cfg.BlockRows {
		return im.flushNames(ctx)
	}
	return nil
}

// EventClaim adds the dedupe record of an event of organization orgID at
// hour, whose id hashes to hash (the embedded store's 12 bytes, keyed by
// ImportConfig.Seed). A record before the dedupe window is skipped.
func (im *Importer) EventClaim(ctx context.Context, orgID string, hash [12]byte, hour time.Time) error {
	return im.claim(ctx, 'e', orgID, hash, hour)
}

// ActivityClaim adds the dedupe record of an activity event of service at
// hour, as EventClaim does for events.
func (im *Importer) ActivityClaim(ctx context.Context, service usage.GUID, hash [12]byte, hour time.Time) error {
	return im.claim(ctx, 'a', service.String(), hash, hour)
}

// claim adds the dedupe record of an event of kind ('e' or 'a') in scope.
func (im *Importer) claim(ctx context.Context, kind byte, scope string, hash [12]byte, hour time.Time) error {
	from := im.cfg.DedupeFrom.Truncate(time.Hour)
	if hour.Before(from) {
		im.stats.Expired++
		return nil
	}
	c := im.s.hashClaim(kind, scope, hash)
	c.hour, c.from = hour.Unix(), from.Unix()
	c.expiry = claimExpiry(hour, im.cfg.DedupeFrom, im.cfg.Now()) // as a claim committed now
	im.claims = append(im.claims, c)
	if len(im.claims) == importClaimsPerCall {
		return im.flushClaims(ctx)
	}
	return nil
}

// Finish writes what is still gathered and returns what the import wrote.
func (im *Importer) Finish(ctx context.Context) (ImportStats, error) {
	for _, flush := range []func(context.Context) error{im.flushGroups, im.flushNames, im.flushState, im.flushClaims} {
		if err := flush(ctx); err != nil {
			return im.stats, err
		}
	}
	return im.stats, nil
}

// batchID names the migration batch of a chunk: a hash of the source's
// seed and of the chunk's name, so that a second run writes the same blocks.
func (im *Importer) batchID(name string) string {
	b := xxh3.HashString128Seed("migration\x00"+name, im.cfg.Seed).Bytes()
	return hex.EncodeToString(b[:])
}

// flushGroups writes the gathered groups as one migration batch: its
// event_counts block, its client rollups and its published rows.
func (im *Importer) flushGroups(ctx context.Context) error {
	if len(im.groups) == 0 {
		return nil
	}
	rows := im.groups
	slices.SortFunc(rows, func(a, b usage.Row) int {
		return cmp.Or(a.Date.Compare(b.Date), strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.UserID, b.UserID),
			strings.Compare(a.TemplateURI, b.TemplateURI), strings.Compare(a.HTTPMethod, b.HTTPMethod), strings.Compare(a.Platform, b.Platform))
	})
	batch := im.batchID(fmt.Sprintf("groups\x00%s\x00%d\x00%d", im.org, im.month, im.chunk))
	block := make([][]any, len(rows))
	for i, r := range rows {
		block[i] = append([]any{r.OrganizationID, r.Date, r.ClientID, r.UserID, r.TemplateURI, r.HTTPMethod, r.Platform, batch},
			countValues(&r.Counts)...)
	}
	if err := im.s.insert(ctx, "event_counts", "org_id, hour, client_id, user_id, template, method, platform, batch_id, "+countColumns, block); err != nil {
		return err
	}
	groups := map[clientGroup]*usage.Counts{}
	hours := map[time.Time]bool{}
	for _, r := range rows {
		k := clientGroup{im.org, r.Date.Unix(), r.ClientID}
		if groups[k] == nil {
			groups[k] = &usage.Counts{}
		}
		groups[k].Add(r.Counts)
		hours[r.Date] = true
	}
	if err := im.s.writeClientRollups(ctx, batch, groups); err != nil {
		return err
	}
	published := make([]time.Time, 0, len(hours))
	for h := range hours {
		published = append(published, h)
	}
	slices.SortFunc(published, time.Time.Compare)
	block = make([][]any, len(published))
	for i, h := range published {
		block[i] = []any{"e:" + im.org, h, batch}
	}
	if err := im.s.insert(ctx, "published", "scope, hour, batch_id", block); err != nil {
		return err
	}
	im.stats.Groups += len(rows)
	im.stats.Batches++
	im.groups = im.groups[:0]
	im.chunk++
	return nil
}

// flushNames writes the gathered client names as one block. Their seq is
// 0: any name an event brings after the migration replaces them.
func (im *Importer) flushNames(ctx context.Context) error {
	if len(im.names) == 0 {
		return nil
	}
	slices.SortFunc(im.names, func(a, b clientName) int {
		return cmp.Or(strings.Compare(a.org, b.org), strings.Compare(a.client, b.client))
	})
	batch := im.batchID(fmt.Sprintf("names\x00%d", im.nameChunk))
	block := make([][]any, len(im.names))
	for i, n := range im.names {
		block[i] = []any{n.org, n.client, n.name, uint64(0), batch}
	}
	if err := im.s.insert(ctx, "client_names", "org_id, client_id, client_name, seq, batch_id", block); err != nil {
		return err
	}
	im.stats.Names += len(im.names)
	im.names = im.names[:0]
	im.nameChunk++
	return nil
}

// ServiceDay adds the counters of service on the UTC day that starts at
// day: the sum of what its accepted activity of the day counts for the
// service (usage.Activity.Tally).
func (im *Importer) ServiceDay(ctx context.Context, service usage.GUID, day time.Time, t usage.ServiceTally) error {
	if err := wholeDay(day); err != nil {
		return err
	}
	return im.addState(ctx, service, stateServiceDay, stateRow{time: day.Unix(), body: encodeServiceTally(t)})
}

// UserDay adds the tally of user t.User of service on the UTC day that
// starts at day: the sums of the tallies of its accepted activity of the
// day, their latest times, and Named if any of it named the user.
func (im *Importer) UserDay(ctx context.Context, service usage.GUID, day time.Time, t usage.UserTally) error {
	if err := wholeDay(day); err != nil {
		return err
	}
	return im.addState(ctx, service, stateUserDay, stateRow{user: t.User.String(), time: day.Unix(), body: encodeUserTally(t)})
}

// Gauge adds an accepted gauge report of service (kind usage.ActivityUsers
// or usage.ActivityStorage).
func (im *Importer) Gauge(ctx context.Context, service usage.GUID, a usage.Activity) error {
	if !a.Gauge() {
		return fmt.Errorf("clickhouse import: activity %q of service %s is a %s, not a gauge report", a.ID, service, a.Kind)
	}
	return im.addState(ctx, service, stateGauge, stateOf(a))
}

// UserEvent adds an accepted user event of service (kind
// usage.ActivityUser) for its account details: what it counts for its users
// is in their UserDay.
func (im *Importer) UserEvent(ctx context.Context, service usage.GUID, a usage.Activity) error {
	if a.Kind != usage.ActivityUser {
		return fmt.Errorf("clickhouse import: activity %q of service %s is a %s, not a user event", a.ID, service, a.Kind)
	}
	r := stateOf(a)
	r.user = a.User.String()
	return im.addState(ctx, service, stateUserEvent, r)
}

func wholeDay(day time.Time) error {
	if day.UnixNano()%int64(24*time.Hour) != 0 {
		return fmt.Errorf("clickhouse import: a day of activity starts at midnight UTC, got %s", day)
	}
	return nil
}

// stateOf is the row of an imported gauge report or user event.
func stateOf(a usage.Activity) stateRow {
	return stateRow{time: unixSeconds(a.Time), nanos: uint32(a.Time.Nanosecond()), id: a.ID, body: encodeActivity(a)}
}

// addState gathers a record of service's activity, writing the records
// gathered before it when they are of another service or kind.
func (im *Importer) addState(ctx context.Context, service usage.GUID, kind uint8, r stateRow) error {
	if service != im.service || kind != im.stateKind {
		if err := im.flushState(ctx); err != nil {
			return err
		}
		im.service, im.stateKind = service, kind
	}
	im.state = append(im.state, r)
	if len(im.state) == im.cfg.BlockRows {
		return im.flushState(ctx)
	}
	return nil
}

// flushState writes the gathered activity records as one migration
// batch: its block of imported_activity and its published row, at the
// hour of its first record, so that the reports read it.
func (im *Importer) flushState(ctx context.Context) error {
	if len(im.state) == 0 {
		return nil
	}
	rows := im.state
	slices.SortFunc(rows, func(a, b stateRow) int {
		return cmp.Or(strings.Compare(a.user, b.user), cmp.Compare(a.time, b.time), cmp.Compare(a.nanos, b.nanos), strings.Compare(a.id, b.id))
	})
	k := stateChunk{im.service, im.stateKind}
	batch := im.batchID(fmt.Sprintf("activity\x00%s\x00%d\x00%d", k.service, k.kind, im.stateChunks[k]))
	service := im.service.String()
	block := make([][]any, len(rows))
	first := rows[0].time
	for i, r := range rows {
		block[i] = []any{batch, service, k.kind, r.user, unixTime(r.time), r.nanos, r.id, r.body}
		first = min(first, r.time)
	}
	if err := im.s.insert(ctx, "imported_activity", "batch_id, service, kind, user_guid, time, nanos, activity_id, body", block); err != nil {
		return err
	}
	if err := im.s.insert(ctx, "published", "scope, hour, batch_id", [][]any{{"a:" + service, unixTime(first - first%3600), batch}}); err != nil {
		return err
	}
	im.stats.Activity += len(rows)
	im.stats.Batches++
	im.state = im.state[:0]
	im.stateChunks[k]++
	return nil
}

// flushClaims writes the gathered claims as committed ("c|" and their
// hour), each only where its id has no value (so a second run changes
// nothing).
func (im *Importer) flushClaims(ctx context.Context) error {
	if len(im.claims) == 0 {
		return nil
	}
	if _, err := im.s.writeClaims(ctx, "c|", im.claims, time.Now()); err != nil {
		return fmt.Errorf("claims %s: set %d claims: %w", im.s.cfg.Claims, len(im.claims), err)
	}
	im.stats.Claims += len(im.claims)
	im.claims = im.claims[:0]
	return nil
}

// ClientDayTotals returns the counts of every organization's clients per
// UTC day as each table the queries read keeps them, summed over published
// batches and ordered by organization, day and client, by table:
// "event_counts" (the hourly counts of every group), "client_hour_counts"
// and "client_day_counts" (the client rollups). An import is checked
// against its source with them.
func (s *Store) ClientDayTotals(ctx context.Context) (map[string][]usage.Row, error) {
	const sums = "sum(requests), sum(status_2xx), sum(status_3xx), sum(status_4xx), sum(status_5xx), sum(status_429)"
	db := s.cfg.Database
	out := map[string][]usage.Row{}
	for table, query := range map[string]string{
		"event_counts": "SELECT org_id, toDate(hour) AS day, client_id, " + sums + " FROM " + db + ".event_counts" +
			" WHERE (concat('e:', org_id), hour, batch_id) IN (SELECT scope, hour, batch_id FROM " + db + ".published)",
		"client_hour_counts": "SELECT org_id, toDate(hour) AS day, client_id, " + sums + " FROM " + db + ".client_hour_counts" +
			" WHERE (concat('e:', org_id), hour, batch_id) IN (SELECT scope, hour, batch_id FROM " + db + ".published)",
		"client_day_counts": "SELECT org_id, day, client_id, " + sums + " FROM " + db + ".client_day_counts" +
			" WHERE (concat('e:', org_id), batch_id) IN (SELECT scope, batch_id FROM " + db + ".published)",
	} {
		rows, err := s.totals(ctx, query+" GROUP BY org_id, day, client_id ORDER BY org_id, day, client_id")
		if err != nil {
			return nil, err
		}
		out[table] = rows
	}
	return out, nil
}

func (s *Store) totals(ctx context.Context, query string) ([]usage.Row, error) {
	var out []usage.Row
	err := s.read(ctx, "the totals per client and day", func(ctx context.Context, r driver.Conn) error {
		out = out[:0]
		rows, err := r.Query(ctx, query)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var row usage.Row
			var c [6]uint64
			if err := rows.Scan(&row.OrganizationID, &row.Date, &row.ClientID, &c[0], &c[1], &c[2], &c[3], &c[4], &c[5]); err != nil {
				return err
			}
			row.Date = row.Date.UTC()
			row.Counts = usage.Counts{Requests: int64(c[0]), Status200: int64(c[1]), Status300: int64(c[2]),
				Status400: int64(c[3]), Status500: int64(c[4]), Status429: int64(c[5])}
			out = append(out, row)
		}
		return rows.Err()
	})
	return out, err
}
