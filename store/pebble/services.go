package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/usaged/usaged/usage"
)

// The service-usage side of the store. The registry is a handful of JSON
// records per service, loaded whole by its callers. Activity is kept in four
// families keyed by the service's 16-byte GUID (see keys.go): daily service
// counters, gauge reports, user events and daily per-user counters. Counters
// are read, added to and rewritten under mu, within the same batch as the
// events' dedupe records, so a batch's effects are atomic and its reads see
// every earlier batch; activity is far rarer than API events, so the reads
// cost little and spare a second merge format.

// Registry record kinds, the byte after famServices.
const (
	regPartner    = 'p'
	regReseller   = 'r'
	regCollection = 'c'
	regService    = 's'
	regAPIKey     = 'k'
)

func regKey(kind byte, id []byte) []byte {
	return append([]byte{famServices, kind}, id...)
}

func putReg[T any](d *DB, kind byte, id []byte, v T) error {
	return d.put(regKey(kind, id), v)
}

func listReg[T any](d *DB, kind byte) ([]T, error) {
	var out []T
	err := d.live(func() error {
		lo := []byte{famServices, kind}
		it, err := d.db.NewIter(&pebbledb.IterOptions{LowerBound: lo, UpperBound: []byte{famServices, kind + 1}})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			var v T
			if err := json.Unmarshal(it.Value(), &v); err != nil {
				it.Close()
				return err
			}
			out = append(out, v)
		}
		return it.Close()
	})
	return out, err
}

// PutPartner implements store.ServiceRegistry.
func (d *DB) PutPartner(_ context.Context, p usage.Partner) error {
	return putReg(d, regPartner, p.GUID[:], p)
}

// Partners implements store.ServiceRegistry.
func (d *DB) Partners(context.Context) ([]usage.Partner, error) {
	return listReg[usage.Partner](d, regPartner)
}

// PutReseller implements store.ServiceRegistry.
func (d *DB) PutReseller(_ context.Context, r usage.Reseller) error {
	return putReg(d, regReseller, r.GUID[:], r)
}

// Resellers implements store.ServiceRegistry.
func (d *DB) Resellers(context.Context) ([]usage.Reseller, error) {
	return listReg[usage.Reseller](d, regReseller)
}

// PutCollection implements store.ServiceRegistry.
func (d *DB) PutCollection(_ context.Context, c usage.Collection) error {
	return putReg(d, regCollection, c.GUID[:], c)
}

// Collections implements store.ServiceRegistry.
func (d *DB) Collections(context.Context) ([]usage.Collection, error) {
	return listReg[usage.Collection](d, regCollection)
}

// PutService implements store.ServiceRegistry.
func (d *DB) PutService(_ context.Context, s usage.Service) error {
	return putReg(d, regService, s.GUID[:], s)
}

// Services implements store.ServiceRegistry.
func (d *DB) Services(context.Context) ([]usage.Service, error) {
	return listReg[usage.Service](d, regService)
}

// PutAPIKey implements store.ServiceRegistry.
func (d *DB) PutAPIKey(_ context.Context, k usage.APIKey) error {
	return putReg(d, regAPIKey, k.Digest[:], k)
}

// APIKeys implements store.ServiceRegistry.
func (d *DB) APIKeys(context.Context) ([]usage.APIKey, error) {
	return listReg[usage.APIKey](d, regAPIKey)
}

// DeleteAPIKey implements store.ServiceRegistry.
func (d *DB) DeleteAPIKey(_ context.Context, digest [32]byte) error {
	key := regKey(regAPIKey, digest[:])
	if err := d.health.err(); err != nil {
		return err
	}
	return d.live(func() error {
		_, closer, err := d.db.Get(key)
		if errors.Is(err, pebbledb.ErrNotFound) {
			return usage.ErrNotFound
		}
		if err != nil {
			return err
		}
		closer.Close()
		return d.db.Delete(key, pebbledb.Sync)
	})
}

// dedupeScope is the dictionary string that stands for a service in dedupe
// records, which are keyed by an interned scope. It starts with a NUL byte,
// which no organization id can hold, so a service never shares the dedupe
// records of an organization.
func dedupeScope(service usage.GUID) string { return serviceScopePrefix + service.String() }

// serviceScopePrefix starts every dedupeScope.
const serviceScopePrefix = "\x00service/"

// Value layouts, as uvarints in this order.
const (
	// 'a': per service per day.
	dayMessages = iota
	dayAttachments
	dayFeatures // NumFeatures values follow
	dayLen      = dayFeatures + usage.NumFeatures
)

const (
	// 'w': per user per day. Times are Unix nanoseconds, 0 for none; they
	// merge by maximum, the rest by sum.
	uNamed = iota // events that name the user (usage.Activity.Names)
	uSent
	uReceived
	uAttachments
	uAttachmentBytes
	uInvitesSent
	uInvitesAccepted
	uLastSent // first time field
	uLastReceived
	uLastActive
	userLen
)

type dayVec [dayLen]uint64
type userVec [userLen]uint64

func (v *userVec) add(o *userVec) {
	for i := range v {
		if i >= uLastSent {
			v[i] = max(v[i], o[i])
		} else {
			v[i] += o[i]
		}
	}
}

// addTally adds an activity's tally for the user of the vector.
func (v *userVec) addTally(t *usage.UserTally) {
	if t.Named {
		v[uNamed]++
	}
	v[uSent] += uint64(t.Sent)
	v[uReceived] += uint64(t.Received)
	v[uAttachments] += uint64(t.Attachments)
	v[uAttachmentBytes] += uint64(t.AttachmentBytes)
	v[uInvitesSent] += uint64(t.InvitationsSent)
	v[uInvitesAccepted] += uint64(t.InvitationsAccepted)
	v[uLastSent] = max(v[uLastSent], nanosOrZero(t.LastSent))
	v[uLastReceived] = max(v[uLastReceived], nanosOrZero(t.LastReceived))
	v[uLastActive] = max(v[uLastActive], nanosOrZero(t.LastActive))
}

// tally returns the vector as the sum of the tallies of a user's day.
func (v *userVec) tally() usage.UserTally {
	return usage.UserTally{
		Sent: int64(v[uSent]), Received: int64(v[uReceived]),
		Attachments: int64(v[uAttachments]), AttachmentBytes: int64(v[uAttachmentBytes]),
		InvitationsSent: int64(v[uInvitesSent]), InvitationsAccepted: int64(v[uInvitesAccepted]),
		LastSent: fromNanos(v[uLastSent]), LastReceived: fromNanos(v[uLastReceived]), LastActive: fromNanos(v[uLastActive]),
	}
}

// add adds an activity's service counters.
func (v *dayVec) add(t *usage.ServiceTally) {
	v[dayMessages] += uint64(t.Messages)
	v[dayAttachments] += uint64(t.Attachments)
	for f, n := range t.Features {
		v[dayFeatures+f] += uint64(n)
	}
}

// tally returns the vector as the sum of the tallies of a service's day.
func (v *dayVec) tally() usage.ServiceTally {
	t := usage.ServiceTally{Messages: int64(v[dayMessages]), Attachments: int64(v[dayAttachments])}
	for f := range usage.NumFeatures {
		t.Features[f] = int64(v[dayFeatures+f])
	}
	return t
}

func encodeVec(dst []byte, v []uint64) []byte {
	for _, x := range v {
		dst = binary.AppendUvarint(dst, x)
	}
	return dst
}

// decodeVec reads len(v) uvarints into v.
func decodeVec(b []byte, v []uint64) error {
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return errCorrupt
		}
		v[i], b = x, b[n:]
	}
	return nil
}

func nanos(t time.Time) uint64 { return uint64(max(t.UnixNano(), 0)) }

// nanosOrZero is nanos, and 0 for the zero time, which a tally carries for
// a time it does not set.
func nanosOrZero(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return nanos(t)
}

func dayNumber(t time.Time) uint32 { return uint32(max(t.Unix(), 0) / 86400) }

func svcKey(fam byte, service usage.GUID) []byte {
	return append([]byte{fam}, service[:]...)
}

func serviceDayKey(service usage.GUID, day uint32) []byte {
	return binary.BigEndian.AppendUint32(svcKey(famServiceDay, service), day)
}

func userDayKey(service, user usage.GUID, day uint32) []byte {
	b := append(svcKey(famUserDay, service), user[:]...)
	return binary.BigEndian.AppendUint32(b, day)
}

// Gauge kinds, the byte after the service in 'b' keys.
const (
	gaugeUsers   = 1
	gaugeStorage = 2
)

func gaugeKey(service usage.GUID, kind byte, t time.Time, id string) []byte {
	b := append(svcKey(famGauge, service), kind)
	b = binary.BigEndian.AppendUint64(b, nanos(t))
	return append(b, id...)
}

func userEventKey(service, user usage.GUID, t time.Time, id string) []byte {
	b := append(svcKey(famUserEvent, service), user[:]...)
	b = binary.BigEndian.AppendUint64(b, nanos(t))
	return append(b, id...)
}

// userEventRecord is a stored user event: the account fields of
// usage.Activity, times implied by the key.
type userEventRecord struct {
	Event     usage.UserEvent     `json:"e"`
	Email     string              `json:"m,omitempty"`
	FirstName string              `json:"f,omitempty"`
	LastName  string              `json:"l,omitempty"`
	GroupName string              `json:"g,omitempty"`
	Status    usage.UserStatus    `json:"s,omitempty"`
	GroupType usage.UserGroupType `json:"t,omitempty"`
	GroupGUID usage.GUID          `json:"gg,omitzero"`
	InvitedBy usage.GUID          `json:"i,omitzero"`
}

// AppendActivity implements store.ActivityAppender.
func (d *DB) AppendActivity(ctx context.Context, service usage.GUID, events []usage.Activity, dedupeFrom time.Time) ([]usage.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.writable(int64(len(events)) * eventBytes); err != nil {
		return nil, err
	}
	outs := make([]usage.Outcome, len(events))
	b := d.db.NewBatch()
	defer d.guard(b.Close)
	fromHour := hourOf(dedupeFrom)

	d.lock()
	if err := d.usable(); err != nil {
		d.mu.Unlock()
		return nil, err
	}
	scope := d.dict.intern(kindOrg, dedupeScope(service), b)
	inBatch := make(map[idKey]struct{}, len(events))
	days := make(map[uint32]*dayVec)
	users := make(map[userDay]*userVec)
	userOf := func(u usage.GUID, t time.Time) *userVec {
		k := userDay{u, dayNumber(t)}
		v := users[k]
		if v == nil {
			v = new(userVec)
			users[k] = v
		}
		return v
	}
	var (
		tallies []usage.UserTally
		entry   []byte // the arrival log's entry
	)
	for i := range events {
		ev := &events[i]
		id := d.eventID(scope, ev.ID)
		if _, dup := inBatch[id]; dup {
			outs[i] = usage.Duplicate
			continue
		}
		hour := hourOf(ev.Time)
		dup, err := d.seen(&id, hour, fromHour)
		if err != nil {
			err = d.fail(err)
			d.mu.Unlock()
			return nil, err
		}
		if dup {
			outs[i] = usage.Duplicate
			continue
		}
		inBatch[id] = struct{}{}
		entry = d.addRecord(entry, &id, hour)

		dv := days[dayNumber(ev.Time)]
		if dv == nil {
			dv = new(dayVec)
			days[dayNumber(ev.Time)] = dv
		}
		var st usage.ServiceTally
		tallies, st = ev.Tally(tallies[:0])
		dv.add(&st)
		for j := range tallies {
			userOf(tallies[j].User, ev.Time).addTally(&tallies[j])
		}
		switch ev.Kind {
		case usage.ActivityUsers:
			c := ev.Users
			b.Set(gaugeKey(service, gaugeUsers, ev.Time, ev.ID), encodeVec(nil, []uint64{uint64(c.Total), uint64(c.Pro), uint64(c.Guest), uint64(c.Disabled), uint64(c.Unregistered)}), nil)
		case usage.ActivityStorage:
			b.Set(gaugeKey(service, gaugeStorage, ev.Time, ev.ID), encodeVec(nil, []uint64{uint64(ev.StorageBytes)}), nil)
		case usage.ActivityUser:
			rec, err := json.Marshal(userEventRecord{
				Event: ev.UserEvent, Email: ev.Email, FirstName: ev.FirstName, LastName: ev.LastName,
				GroupName: ev.GroupName, Status: ev.Status, GroupType: ev.GroupType, GroupGUID: ev.GroupGUID, InvitedBy: ev.InvitedBy,
			})
			if err != nil {
				d.mu.Unlock()
				return nil, err
			}
			b.Set(userEventKey(service, ev.User, ev.Time, ev.ID), rec, nil)
		}
	}

	d.logRecords(b, entry)

	// Fold the batch's counters into the stored ones. Keys go in sorted
	// order, as in Append.
	dayKeys := make([]uint32, 0, len(days))
	for k := range days {
		dayKeys = append(dayKeys, k)
	}
	slices.Sort(dayKeys)
	for _, day := range dayKeys {
		v := days[day]
		key := serviceDayKey(service, day)
		var old dayVec
		if err := d.getVec(key, old[:]); err != nil {
			err = d.fail(err)
			d.mu.Unlock()
			return nil, err
		}
		for i := range old {
			old[i] += v[i]
		}
		if old != (dayVec{}) {
			b.Set(key, encodeVec(nil, old[:]), nil)
		}
	}
	userKeys := make([]userDay, 0, len(users))
	for k := range users {
		userKeys = append(userKeys, k)
	}
	slices.SortFunc(userKeys, func(a, b userDay) int {
		if c := bytes.Compare(a.user[:], b.user[:]); c != 0 {
			return c
		}
		return int(a.day) - int(b.day)
	})
	for _, k := range userKeys {
		key := userDayKey(service, k.user, k.day)
		var old userVec
		if err := d.getVec(key, old[:]); err != nil {
			err = d.fail(err)
			d.mu.Unlock()
			return nil, err
		}
		old.add(users[k])
		b.Set(key, encodeVec(nil, old[:]), nil)
	}

	if err := d.applyInTurn(b); err != nil {
		return nil, err
	}
	return outs, nil
}

type userDay struct {
	user usage.GUID
	day  uint32
}

// getVec reads the vector at key into v, leaving v zero when there is none.
func (d *DB) getVec(key []byte, v []uint64) error {
	return d.guard(func() error {
		val, closer, err := d.db.Get(key)
		if errors.Is(err, pebbledb.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		defer closer.Close()
		return decodeVec(val, v)
	})
}

// ServiceTotals implements store.Reports.
func (d *DB) ServiceTotals(ctx context.Context, service usage.GUID, from, to time.Time) (usage.ServiceTotals, error) {
	var tot usage.ServiceTotals
	err := d.live(func() error {
		if err := d.scanDays(ctx, service, from, to, func(_ uint32, v *dayVec) { tot.AddTally(v.tally()) }); err != nil {
			return err
		}
		var users [5]uint64
		if err := d.lastGauge(ctx, service, gaugeUsers, to, users[:]); err != nil {
			return err
		}
		tot.Users = userCounts(users)
		var storage [1]uint64
		if err := d.lastGauge(ctx, service, gaugeStorage, to, storage[:]); err != nil {
			return err
		}
		tot.StorageBytes = int64(storage[0])
		return nil
	})
	return tot, err
}

// scanDays calls fn with the number and the counters of every day of
// service's in [from, to) that has any, in order.
func (d *DB) scanDays(ctx context.Context, service usage.GUID, from, to time.Time, fn func(day uint32, v *dayVec)) error {
	it, err := d.db.NewIterWithContext(ctx, &pebbledb.IterOptions{
		LowerBound: serviceDayKey(service, dayNumber(from)),
		UpperBound: serviceDayKey(service, dayNumber(to)),
	})
	if err != nil {
		return err
	}
	var v dayVec
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 1+16+4 {
			it.Close()
			return errCorrupt
		}
		if err := decodeVec(it.Value(), v[:]); err != nil {
			it.Close()
			return err
		}
		fn(binary.BigEndian.Uint32(k[17:]), &v)
	}
	return it.Close()
}

// userCounts is the value of a gaugeUsers report.
func userCounts(v [5]uint64) usage.UserCounts {
	return usage.UserCounts{Total: int64(v[0]), Pro: int64(v[1]), Guest: int64(v[2]), Disabled: int64(v[3]), Unregistered: int64(v[4])}
}

// ServiceSeries implements store.Reports: one scan of the service's days
// over the range and one iterator for each gauge, rather than one
// ServiceTotals, and three iterators, per period.
func (d *DB) ServiceSeries(ctx context.Context, service usage.GUID, from, to time.Time, step usage.PeriodType) ([]usage.ServiceTotals, error) {
	periods, err := usage.Periods(step, from, to)
	if err != nil {
		return nil, err
	}
	first := usage.PeriodOf(step, from)
	// index returns the period of the series that holds t.
	index := func(t time.Time) int {
		if step == usage.Monthly {
			y0, m0, _ := first.Start.Date()
			y, m, _ := t.UTC().Date()
			return (y-y0)*12 + int(m-m0)
		}
		return int((t.Unix() - first.Start.Unix()) / (24 * 60 * 60))
	}
	out := make([]usage.ServiceTotals, len(periods))
	err = d.live(func() error {
		add := func(day uint32, v *dayVec) { out[index(time.Unix(int64(day)*24*60*60, 0))].AddTally(v.tally()) }
		if err := d.scanDays(ctx, service, from, to, add); err != nil {
			return err
		}
		var users [5]uint64
		if err := d.gaugeSeries(ctx, service, gaugeUsers, first, len(out), users[:], func(i int) { out[i].Users = userCounts(users) }); err != nil {
			return err
		}
		var storage [1]uint64
		return d.gaugeSeries(ctx, service, gaugeStorage, first, len(out), storage[:], func(i int) { out[i].StorageBytes = int64(storage[0]) })
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// gaugeSeries reads a gauge as of the end of every period of a series
// that starts at first and has n periods: for each, it reads into v the
// latest report before the period's end, as lastGauge does, and calls set
// with the period's index. One iterator seeks from end to end, rather than
// reading every report between them, which may be many a day.
func (d *DB) gaugeSeries(ctx context.Context, service usage.GUID, kind byte, first usage.Period, n int, v []uint64, set func(int)) error {
	end := first.Start
	for range n {
		end = usage.PeriodOf(first.Type, end).End()
	}
	it, err := d.db.NewIterWithContext(ctx, &pebbledb.IterOptions{
		LowerBound: append(svcKey(famGauge, service), kind),
		UpperBound: gaugeKey(service, kind, end, ""),
	})
	if err != nil {
		return err
	}
	per, key := first, append(svcKey(famGauge, service), kind)
	prefix := len(key)
	for i := range n {
		clear(v)
		key = binary.BigEndian.AppendUint64(key[:prefix], nanos(per.End())) // gaugeKey without an id
		if it.SeekLT(key) {
			if err := decodeVec(it.Value(), v); err != nil {
				it.Close()
				return err
			}
		}
		set(i)
		per = usage.PeriodOf(per.Type, per.End())
	}
	return it.Close()
}

// lastGauge reads into v the latest report of a gauge before to: the
// greatest key below (time of to), which orders by time and then by id.
func (d *DB) lastGauge(ctx context.Context, service usage.GUID, kind byte, to time.Time, v []uint64) error {
	lo := append(svcKey(famGauge, service), kind)
	it, err := d.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: lo, UpperBound: gaugeKey(service, kind, to, "")})
	if err != nil {
		return err
	}
	if it.Last() {
		if err := decodeVec(it.Value(), v); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// ServiceUsers implements store.Reports.
func (d *DB) ServiceUsers(ctx context.Context, service usage.GUID, from, to time.Time, only usage.GUID) ([]usage.UserUsage, error) {
	var out []usage.UserUsage
	err := d.live(func() error {
		fromDay, toDay := dayNumber(from), dayNumber(to)
		lo, hi := svcKey(famUserDay, service), svcKey(famUserDay, service)
		if only.IsZero() {
			hi = append(hi, bytes.Repeat([]byte{0xff}, 17)...)
		} else {
			lo = append(lo, only[:]...)
			hi = append(append(hi, only[:]...), 0xff, 0xff, 0xff, 0xff, 0xff)
		}
		it, err := d.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		var cur *usage.UserUsage
		var named uint64
		flush := func() {
			if cur != nil && named > 0 {
				out = append(out, *cur)
			}
			cur, named = nil, 0
		}
		var v userVec
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()
			if len(k) != 1+16+16+4 {
				it.Close()
				return errCorrupt
			}
			var user usage.GUID
			copy(user[:], k[17:33])
			day := binary.BigEndian.Uint32(k[33:])
			if cur == nil || cur.User != user {
				flush()
				cur = &usage.UserUsage{User: user, Status: usage.UserActive}
			}
			if day >= toDay {
				continue
			}
			if err := decodeVec(it.Value(), v[:]); err != nil {
				it.Close()
				return err
			}
			named += v[uNamed]
			t := v.tally()
			cur.AddTally(&t, day >= fromDay)
		}
		flush()
		if err := it.Close(); err != nil {
			return err
		}
		for i := range out {
			if err := d.foldAccount(ctx, service, &out[i], to); err != nil {
				return err
			}
		}
		for i := range out {
			u := &out[i]
			if u.InvitedBy.IsZero() {
				continue
			}
			inviter := usage.UserUsage{User: u.InvitedBy}
			if err := d.foldAccount(ctx, service, &inviter, to); err != nil {
				return err
			}
			u.InvitedByEmail = inviter.Email
		}
		return nil
	})
	return out, err
}

func fromNanos(n uint64) time.Time {
	if n == 0 || n > math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

// foldAccount applies u.User's user events before to, in (time, id) order,
// which is their key order.
func (d *DB) foldAccount(ctx context.Context, service usage.GUID, u *usage.UserUsage, to time.Time) error {
	lo := append(svcKey(famUserEvent, service), u.User[:]...)
	it, err := d.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: lo, UpperBound: userEventKey(service, u.User, to, "")})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		a, err := userEvent(it.Key(), it.Value())
		if err != nil {
			it.Close()
			return err
		}
		u.ApplyAccount(&a)
	}
	return it.Close()
}

// userEvent returns the activity of a stored user event: its key (the
// service, the user, the time and the ID) and its record.
func userEvent(k, val []byte) (usage.Activity, error) {
	const head = 1 + 16 + 16 + 8
	if len(k) < head {
		return usage.Activity{}, errCorrupt
	}
	var rec userEventRecord
	if err := json.Unmarshal(val, &rec); err != nil {
		return usage.Activity{}, err
	}
	a := usage.Activity{
		Kind: usage.ActivityUser, Time: fromNanos(binary.BigEndian.Uint64(k[head-8:])), ID: string(k[head:]),
		UserEvent: rec.Event, Email: rec.Email, FirstName: rec.FirstName, LastName: rec.LastName, GroupName: rec.GroupName,
		Status: rec.Status, GroupType: rec.GroupType, GroupGUID: rec.GroupGUID, InvitedBy: rec.InvitedBy,
	}
	copy(a.User[:], k[17:33])
	return a, nil
}

// gaugeReport returns the activity of a stored gauge report: its key (the
// service, the gauge, the time and the ID) and its value.
func gaugeReport(k, val []byte) (usage.Activity, error) {
	const head = 1 + 16 + 1 + 8
	if len(k) < head {
		return usage.Activity{}, errCorrupt
	}
	a := usage.Activity{Time: fromNanos(binary.BigEndian.Uint64(k[head-8:])), ID: string(k[head:])}
	switch k[17] {
	case gaugeUsers:
		var v [5]uint64
		if err := decodeVec(val, v[:]); err != nil {
			return a, err
		}
		a.Kind, a.Users = usage.ActivityUsers, userCounts(v)
	case gaugeStorage:
		var v [1]uint64
		if err := decodeVec(val, v[:]); err != nil {
			return a, err
		}
		a.Kind, a.StorageBytes = usage.ActivityStorage, int64(v[0])
	default:
		return a, errCorrupt
	}
	return a, nil
}
