package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/usaged/usaged/usage"
)

// Key layout. Every key starts with a one-byte prefix naming its family;
// integers are big-endian so that byte order is numeric order, and each family
// leads with the interned organization so that one organization's rows are
// contiguous.
//
//	'd' org day hash[12]                         → hour of day            dedupe record
//	'f' org hour client user template method plat → counts, measures     every dimension, per hour
//	'h' org hour client                           → counts, measures     per client, per hour
//	'y' org day client                            → counts, measures     per client, per day
//	's' kind string                               → uint32 id            dictionary
//	'n' org client                                → client name          latest name seen in events, "" too
//	'o' organization id                           → JSON                 registry
//	'c' client id                                 → JSON                 registry
//	'i' len(org) org limit id                     → JSON                 usage limits (registry.go)
//	'm' name                                      → bytes                store metadata
//	'e' execution id                              → JSON                 execution record
//	'r' execution id 0x00 chunk                   → rows                 execution result rows
//	'g' kind id                                   → JSON                 service-usage registry (services.go)
//	'a' service day                               → uvarints             service counters, per day
//	'b' service gauge time id                     → uvarints             gauge reports
//	'u' service user time id                      → JSON                 user events
//	'w' service user day                          → uvarints             per-user counters, per day
//	'l' seq                                       → (org day hash)…      arrival log of dedupe records (dedupe.go)
//	'k' endpoint id                               → JSON                 webhook endpoint (webhooks.go)
//	'v' endpoint id 0x00 time id                  → JSON                 webhook delivery, its log newest last
//	'q' time id                                   → JSON                 pending notification (the outbox)
//	'p' notification id                           → 'q' key, or 0x00 time  index of pending notifications by id; delivered ones for 40 days
//	'x' key                                       → value                the commit watcher's own state (store.StateChange)
//
// Dedupe records lead with their event day so that new records land near each
// other and settled days are never rewritten by compactions; expiry is then a
// range deletion per organization. Hours and days count from the Unix epoch. Dimension values are interned to
// uint32 ids (0 is the empty string), which keeps counter keys at 29 bytes
// however long template URIs and client ids are.
//
// Executions are keyed by their opaque id, which must not be empty nor hold a
// 0x00 byte: the 0x00 after the id in 'r' keys ends it, so that the rows of
// one execution are exactly the range ['r' id 0x00, 'r' id 0x01) and never
// take in those of an id it is a prefix of. Rows are stored rowsPerChunk to a
// key, the chunk number a big-endian uint32, so that a page of rows reads only
// the chunks it overlaps. They are not per organization: executions are looked
// up by id, and listed only by the sweeps that expire and resume them.
//
// Webhook deliveries and pending notifications are keyed by big-endian Unix
// nanoseconds and then their id, so that an endpoint's log pages newest first
// by iterating backwards and the outbox hands out its oldest first. A
// notification's 'q' and 'p' keys are written and deleted in one batch; a
// usage commit may add them to its own batch (addNotifications), so that the
// notifications its counts cause are durable exactly when the counts are.
//
// Service activity is keyed by the raw 16-byte service and user GUIDs, and
// times by big-endian Unix nanoseconds, so that a gauge's latest report before
// a time is one reverse step and a user's events replay in (time, id) order.
// Its dedupe records share the 'd' family, under a scope interned like an
// organization (see dedupeScope).
const (
	famDedupe     = 'd'
	famFull       = 'f'
	famClientHour = 'h'
	famClientDay  = 'y'
	famDict       = 's'
	famName       = 'n'
	famOrg        = 'o'
	famClient     = 'c'
	famLimit      = 'i'
	famMeta       = 'm'
	famExec       = 'e'
	famRows       = 'r'
	famServices   = 'g'
	famServiceDay = 'a'
	famGauge      = 'b'
	famUserEvent  = 'u'
	famUserDay    = 'w'
	famWebhook    = 'k'
	famDelivery   = 'v'
	famOutbox     = 'q'
	famPending    = 'p'
	famWatcher    = 'x'
)

const (
	hashLen   = 12 // bytes of the 128-bit event id hash kept: collisions stay below 1e-11 at 1e9 events per organization
	dedupeLen = 1 + 4 + 2 + hashLen
	fullLen   = 1 + 4 + 4 + 4*5
	rollupLen = 1 + 4 + 4 + 4
)

// fullKey is a decoded 'f' key.
type fullKey struct {
	org, hour                                uint32
	client, user, template, method, platform uint32
}

func (k *fullKey) encode(dst []byte) []byte {
	dst = append(dst, famFull)
	for _, v := range [...]uint32{k.org, k.hour, k.client, k.user, k.template, k.method, k.platform} {
		dst = binary.BigEndian.AppendUint32(dst, v)
	}
	return dst
}

func decodeFull(b []byte) (fullKey, bool) {
	if len(b) != fullLen || b[0] != famFull {
		return fullKey{}, false
	}
	u := func(i int) uint32 { return binary.BigEndian.Uint32(b[1+4*i:]) }
	return fullKey{u(0), u(1), u(2), u(3), u(4), u(5), u(6)}, true
}

// rollupKey is a decoded 'h' or 'y' key; bucket is an hour or a day.
type rollupKey struct {
	fam                 byte
	org, bucket, client uint32
}

func (k *rollupKey) encode(dst []byte) []byte {
	dst = append(dst, k.fam)
	dst = binary.BigEndian.AppendUint32(dst, k.org)
	dst = binary.BigEndian.AppendUint32(dst, k.bucket)
	return binary.BigEndian.AppendUint32(dst, k.client)
}

func decodeRollup(b []byte) (rollupKey, bool) {
	if len(b) != rollupLen {
		return rollupKey{}, false
	}
	return rollupKey{b[0], binary.BigEndian.Uint32(b[1:]), binary.BigEndian.Uint32(b[5:]), binary.BigEndian.Uint32(b[9:])}, true
}

// prefix returns fam org bucket, the start of a range scan.
func prefix(fam byte, org, bucket uint32) []byte {
	b := []byte{fam}
	b = binary.BigEndian.AppendUint32(b, org)
	return binary.BigEndian.AppendUint32(b, bucket)
}

// idKey identifies an event id within an organization: the interned
// organization and a keyed hash of the id.
type idKey struct {
	org  uint32
	hash [hashLen]byte
}

// dedupeKey encodes the record of id at event day.
func dedupeKey(dst []byte, id *idKey, day uint16) []byte {
	dst = append(dst, famDedupe)
	dst = binary.BigEndian.AppendUint32(dst, id.org)
	dst = binary.BigEndian.AppendUint16(dst, day)
	return append(dst, id.hash[:]...)
}

func decodeDedupe(b []byte) (idKey, bool) {
	var k idKey
	if len(b) != dedupeLen || b[0] != famDedupe {
		return k, false
	}
	k.org = binary.BigEndian.Uint32(b[1:])
	copy(k.hash[:], b[7:])
	return k, true
}

// dedupePrefix is 'd' org day, the bound of a range of records.
func dedupePrefix(org uint32, day uint16) []byte {
	b := []byte{famDedupe}
	b = binary.BigEndian.AppendUint32(b, org)
	return binary.BigEndian.AppendUint16(b, day)
}

func nameKey(org, client uint32) []byte {
	b := []byte{famName}
	b = binary.BigEndian.AppendUint32(b, org)
	return binary.BigEndian.AppendUint32(b, client)
}

// execKey is the key of execution id's record.
func execKey(id string) []byte {
	return append([]byte{famExec}, id...)
}

// rowsKey is the key of chunk n of execution id's rows.
func rowsKey(id string, n uint32) []byte {
	b := make([]byte, 0, 1+len(id)+1+4)
	b = append(b, famRows)
	b = append(b, id...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, n)
}

// rowsEnd is the exclusive upper bound of execution id's rows.
func rowsEnd(id string) []byte {
	b := make([]byte, 0, 1+len(id)+1)
	b = append(b, famRows)
	b = append(b, id...)
	return append(b, 1)
}

func dictKey(kind byte, s string) []byte {
	return append([]byte{famDict, kind}, s...)
}

// A counts value ('f', 'h' and 'y' keys) is the group's counts as six
// uvarints, followed by its measures (usage.Measures.AppendBinary) unless
// they are zero. Values written before measures were kept are the six
// uvarints alone and read as zero measures; so does a group whose events
// carried no measurements, which keeps its value as small as before.

// encodeCounts appends c as six uvarints.
func encodeCounts(dst []byte, c *usage.Counts) []byte {
	for _, v := range [...]int64{c.Requests, c.Status200, c.Status300, c.Status400, c.Status500, c.Status429} {
		dst = binary.AppendUvarint(dst, uint64(v))
	}
	return dst
}

// encodeValue appends the value of a group with counts c and measures m.
func encodeValue(dst []byte, c *usage.Counts, m *usage.Measures) []byte {
	dst = encodeCounts(dst, c)
	if m.IsZero() {
		return dst
	}
	// Measures built by AddEvent, Merge and UnmarshalBinary keep the
	// invariants AppendBinary checks: it does not fail on them.
	out, err := m.AppendBinary(dst)
	if err != nil {
		return dst
	}
	return out
}

var errCorrupt = errors.New("pebble store: corrupt counts value")

// addCounts decodes six uvarints from b, adds them to c and returns the
// rest of b, the encoded measures if any. It does not look at them: a query
// that asks for no measure pays nothing for them.
func addCounts(c *usage.Counts, b []byte) ([]byte, error) {
	var vs [6]int64
	for i := range vs {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errCorrupt
		}
		vs[i] = int64(v)
		b = b[n:]
	}
	c.Add(usage.Counts{Requests: vs[0], Status200: vs[1], Status300: vs[2], Status400: vs[3], Status500: vs[4], Status429: vs[5]})
	return b, nil
}

// addValue adds the value b to c and m, decoding its measures, if any,
// into scratch.
func addValue(c *usage.Counts, m, scratch *usage.Measures, b []byte) error {
	rest, err := addCounts(c, b)
	if err != nil || len(rest) == 0 {
		return err
	}
	if err := scratch.UnmarshalBinary(rest); err != nil {
		return fmt.Errorf("%w: %w", errCorrupt, err)
	}
	m.Merge(scratch)
	return nil
}
