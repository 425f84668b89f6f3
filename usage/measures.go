package usage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Latency and traffic measures of a group of events: what AddEvent adds for
// one accepted event, merged by addition into hour, day and month buckets as
// the counts are (Measures, Latency).
//
// Durations are kept in a histogram of logarithmic buckets in the manner of
// DDSketch: bucket i holds the whole milliseconds from lo(i) to lo(i+1)-1 and
// answers for all of them with one representative r(i), chosen so that
// |r(i) − v| ≤ v/100 for every v in the bucket. A bucket ends about
// 1.01/0.99 ≈ 1.0202 times where it starts (DDSketch's γ for a relative
// accuracy of 1 %), so the 2^63 possible durations fit in 2,051 buckets,
// about 35 per doubling. Bucket boundaries are fixed, so merging two
// histograms adds counts index by index: exact, associative and commutative,
// which the stores need, since they fold hours into days and months in
// whatever order their rows come, and the embedded store and the cluster
// must answer alike. A t-digest is not: its centroids depend on the order
// values and digests were merged in, and its error is bounded in rank, not in
// the value read. An HDR histogram merges exactly too, but its log-linear
// buckets need nearly twice as many for the same 1 % bound (64 per doubling
// at best), and it is laid out as a dense array over a preset range of
// values. Here a histogram is a sparse list of (index, count) pairs, and a
// group of one event, the common case at high cardinality, encodes in 2 or 3
// bytes.
//
// The boundaries are computed with integer arithmetic alone (see
// latencyLows), not with a floating-point logarithm, so that every platform
// puts every duration in the same bucket and the encoding is the same
// everywhere.

// exactBelow is where buckets start holding more than one duration. An
// integer representative r answers within 1 % for both a and a+1 only if
// a ≥ 99: were r ≤ a, a+1 would be off by 1 or more, more than (a+1)/100
// unless a ≥ 99; were r ≥ a+1, a would be. So 0 to 98 ms must each have a
// bucket of their own: the error bound sets the threshold, and the greedy
// construction of latencyLows meets it by itself.
const exactBelow = 99

// latencyLows[i] is the smallest duration of bucket i, in ms. The buckets are
// built greedily from 0 up: a bucket starting at lo answers with
// r = lo + ⌊lo/100⌋, the largest integer with r − lo ≤ lo/100, and ends at
// hi = r + ⌊r/99⌋, the largest integer with hi − r ≤ hi/100; every v in
// [lo, hi] is then within v/100 of r. The last bucket ends at math.MaxInt64
// (its r is capped there, see latencyValue).
var latencyLows = func() []int64 {
	lows := make([]int64, 0, 2051)
	for lo := int64(0); ; {
		lows = append(lows, lo)
		if lo/100 > math.MaxInt64-lo {
			return lows // r would overflow
		}
		r := lo + lo/100
		if r/99 >= math.MaxInt64-r {
			return lows // hi+1 would overflow
		}
		lo = r + r/99 + 1
	}
}()

// latencyOctaves[k] is the bucket holding 2^(k−1), for k from 1 to 63, and
// latencyOctaves[64] the last bucket: a duration of bit length k is in a
// bucket from latencyOctaves[k] to latencyOctaves[k+1], which latencyIndex
// searches, 46 buckets at most.
var latencyOctaves = func() [65]int32 {
	var o [65]int32
	for k := 1; k <= 63; k++ {
		i, _ := slices.BinarySearch(latencyLows, int64(1)<<(k-1)+1) // the first bucket starting above 2^(k−1)
		o[k] = int32(i - 1)
	}
	o[64] = int32(len(latencyLows) - 1)
	return o
}()

// numLatencyBuckets is the number of buckets; indexes run from 0 to
// numLatencyBuckets−1.
var numLatencyBuckets = len(latencyLows)

// latencyIndex returns the index of the bucket holding ms; a negative ms is
// taken as 0.
func latencyIndex(ms int64) int32 {
	if ms < exactBelow {
		return int32(max(ms, 0))
	}
	k := bits.Len64(uint64(ms))
	i, j := latencyOctaves[k], latencyOctaves[k+1]
	for i < j { // the last bucket in [i, j] starting at or below ms
		m := int32(uint32(i+j+1) >> 1)
		if latencyLows[m] <= ms {
			i = m
		} else {
			j = m - 1
		}
	}
	return i
}

// latencyValue returns the representative of bucket i. Capping it at
// math.MaxInt64 keeps the bound for the last bucket, [lo, math.MaxInt64],
// should lo + ⌊lo/100⌋ overflow: math.MaxInt64 − lo < lo/100 then.
func latencyValue(i int32) int64 {
	lo := latencyLows[i]
	return satAdd(lo, lo/100)
}

// satAdd returns a+b, saturated at the limits of int64.
func satAdd(a, b int64) int64 {
	s := a + b
	if (s > a) != (b > 0) { // overflow; b == 0 never gets here
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}

// latencyBucket is one bucket of a Latency: its index and how many durations
// it holds, at least 1.
type latencyBucket struct {
	i int32
	n int64
}

// Latency is a histogram of durations in whole milliseconds, for quantiles
// within 1 %. The zero value is an empty histogram, ready to use.
//
// Contract: for q in [0, 1], Quantile(q) returns x' with |x' − x| ≤ x/100,
// where x is the ⌈q·n⌉-th smallest of the n durations recorded (the lower
// nearest rank; the smallest for q = 0, the largest for q = 1); x' = x when
// x < 99. This holds over the whole range of int64: no duration is clamped.
// Add and Merge are exact on the bucket counts, so the answer does not
// depend on the order of Add calls nor on how histograms were grouped and
// merged.
//
// Counts saturate at math.MaxInt64 rather than wrap (2^63 events cannot be
// recorded in practice; saturating keeps Merge associative and commutative
// whatever it is given).
//
// Copying a Latency that holds more than one bucket shares its storage, as
// copying a slice does: only one of the copies may then be changed. Merge into
// a zero Latency for an independent copy.
type Latency struct {
	n   int64            // durations recorded, saturating
	one [1]latencyBucket // the only bucket while b is empty and n > 0, else zero
	b   []latencyBucket  // the buckets by index when there are two or more, else empty (capacity kept)
}

// buckets returns l's buckets by index.
func (l *Latency) buckets() []latencyBucket {
	if len(l.b) > 0 {
		return l.b
	}
	if l.n > 0 {
		return l.one[:]
	}
	return nil
}

// Reset empties l, keeping its storage.
func (l *Latency) Reset() {
	l.n, l.one[0], l.b = 0, latencyBucket{}, l.b[:0]
}

// Add records one duration of ms milliseconds; a negative ms is recorded as 0.
func (l *Latency) Add(ms int64) { l.add(latencyIndex(ms), 1) }

// AddN records n durations of ms milliseconds each; n ≤ 0 records nothing.
func (l *Latency) AddN(ms, n int64) {
	if n > 0 {
		l.add(latencyIndex(ms), n)
	}
}

// add adds n ≥ 1 to bucket i.
func (l *Latency) add(i int32, n int64) {
	switch {
	case len(l.b) > 0:
		if k, found := searchBuckets(l.b, i); found {
			l.b[k].n = satAdd(l.b[k].n, n)
		} else {
			l.b = slices.Insert(l.b, k, latencyBucket{i, n})
		}
	case l.n == 0:
		l.one[0] = latencyBucket{i, n}
	case l.one[0].i == i:
		l.one[0].n = satAdd(l.one[0].n, n)
	default:
		a, b := l.one[0], latencyBucket{i, n}
		if b.i < a.i {
			a, b = b, a
		}
		l.b, l.one[0] = append(l.b[:0], a, b), latencyBucket{}
	}
	l.n = satAdd(l.n, n)
}

// searchBuckets returns where bucket i is or would be in bs, and whether it
// is there. Its loop has no branch on the data, which is random: the step is
// taken or not by a mask (indexes are below 2^31, so b.i − i is negative
// exactly when b.i < i).
func searchBuckets(bs []latencyBucket, i int32) (int, bool) {
	if len(bs) == 0 {
		return 0, false
	}
	k, n := 0, len(bs)
	for n > 1 {
		half := n >> 1
		less := int(uint32(bs[k+half-1].i-i) >> 31)
		k += half & -less
		n -= half
	}
	if bs[k].i < i {
		k++
	}
	return k, k < len(bs) && bs[k].i == i
}

// Merge adds the durations of o to l. It is exact: merging in any order and
// grouping gives the same histogram. o may be l itself.
func (l *Latency) Merge(o *Latency) {
	if o == nil || o.n == 0 {
		return
	}
	if o == l {
		bs := l.buckets()
		for k := range bs {
			bs[k].n = satAdd(bs[k].n, bs[k].n)
		}
		l.n = satAdd(l.n, l.n)
		return
	}
	ob := o.buckets()
	if len(ob) == 1 {
		l.add(ob[0].i, ob[0].n)
		return
	}
	if l.n == 0 {
		l.b, l.n = append(l.b[:0], ob...), o.n
		return
	}
	lb := l.buckets()
	extra := 0 // indexes of o that l lacks
	for i, j := 0, 0; j < len(ob); {
		switch {
		case i < len(lb) && lb[i].i < ob[j].i:
			i++
		case i < len(lb) && lb[i].i == ob[j].i:
			i, j = i+1, j+1
		default:
			extra, j = extra+1, j+1
		}
	}
	switch {
	case extra == 0:
		for i, j := 0, 0; j < len(ob); i++ {
			if lb[i].i == ob[j].i {
				lb[i].n = satAdd(lb[i].n, ob[j].n)
				j++
			}
		}
	case len(l.b) == 0: // l's one bucket and o's into l.b
		one := l.one[0]
		l.b, l.one[0] = slices.Grow(l.b[:0], len(ob)+1), latencyBucket{}
		k, _ := searchBuckets(ob, one.i)
		l.b = append(l.b, ob[:k]...)
		if k < len(ob) && ob[k].i == one.i {
			l.b = append(l.b, latencyBucket{one.i, satAdd(one.n, ob[k].n)})
			k++
		} else {
			l.b = append(l.b, one)
		}
		l.b = append(l.b, ob[k:]...)
	default: // merged in place from the end
		i, j := len(l.b)-1, len(ob)-1
		l.b = slices.Grow(l.b, extra)[:len(l.b)+extra]
		for k := len(l.b) - 1; j >= 0; k-- {
			switch {
			case i >= 0 && l.b[i].i > ob[j].i:
				l.b[k], i = l.b[i], i-1
			case i >= 0 && l.b[i].i == ob[j].i:
				l.b[k] = latencyBucket{ob[j].i, satAdd(l.b[i].n, ob[j].n)}
				i, j = i-1, j-1
			default:
				l.b[k], j = ob[j], j-1
			}
		}
	}
	l.n = satAdd(l.n, o.n)
}

// Count returns the number of durations recorded.
func (l *Latency) Count() int64 { return l.n }

// Quantile returns the duration at quantile q: within 1 % of the
// ⌈q·n⌉-th smallest of the n durations recorded, and exactly it when below
// 99 ms (see Latency). The smallest is rank 1, so q = 0 gives the smallest
// and q = 1 the largest. A q below 0 or NaN is taken as 0, one above 1 as 1.
// An empty histogram returns 0.
//
// The rank is that of the decimal quantile: q·n is computed in float64 and
// lowered by a relative 2^-50, a few units in its last place, so that the
// rounding of q cannot push it past an integer (0.07 is a little more than
// 7/100 in float64; ⌈0.07·100⌉ is the 7th). For any q written with three
// decimals or fewer, such as 0.5, 0.9, 0.95, 0.99 and 0.999, the rank is
// exactly the decimal ⌈q·n⌉ for every n below 10^11.
func (l *Latency) Quantile(q float64) int64 {
	if l.n == 0 {
		return 0
	}
	var seen int64
	rank := quantileRank(q, l.n)
	bs := l.buckets()
	for _, b := range bs {
		if seen = satAdd(seen, b.n); seen >= rank {
			return latencyValue(b.i)
		}
	}
	return latencyValue(bs[len(bs)-1].i) // not reached: the counts add up to n
}

// quantileRank returns the rank, from 1 to n, of quantile q among n ≥ 1
// values (see Latency.Quantile).
func quantileRank(q float64, n int64) int64 {
	switch {
	case q >= 1:
		return n
	case !(q > 0): // NaN too
		return 1
	}
	x := q * float64(n)
	r := math.Ceil(x - x*0x1p-50)
	switch {
	case r >= float64(n):
		return n
	case r <= 1:
		return 1
	}
	return int64(r)
}

// Equal reports whether l and o hold the same durations, bucket by bucket.
func (l *Latency) Equal(o *Latency) bool {
	return l.n == o.n && slices.Equal(l.buckets(), o.buckets())
}

// AppendBinary appends the encoding of l to b and returns the extended
// buffer; it never fails. The encoding is a uvarint count of buckets, then
// for each bucket by index a uvarint holding the gap from the previous index
// (minus one; the first index as is) shifted left by one, its low bit set
// when the count is above 1, and then the count minus 2 as a uvarint. An
// empty histogram is one byte, one duration 2 or 3 bytes, and a bucket of
// one duration near the one before takes one byte. Equal histograms have
// equal encodings.
func (l *Latency) AppendBinary(b []byte) ([]byte, error) {
	bs := l.buckets()
	b = binary.AppendUvarint(b, uint64(len(bs)))
	prev := int32(-1)
	for _, x := range bs {
		gap := uint64(x.i-prev-1) << 1
		if x.n == 1 {
			b = binary.AppendUvarint(b, gap)
		} else {
			b = binary.AppendUvarint(b, gap|1)
			b = binary.AppendUvarint(b, uint64(x.n-2))
		}
		prev = x.i
	}
	return b, nil
}

// MarshalBinary returns the encoding of l (see AppendBinary).
func (l *Latency) MarshalBinary() ([]byte, error) { return l.AppendBinary(nil) }

// UnmarshalBinary sets l to the histogram data encodes, reusing l's storage.
// It refuses anything AppendBinary would not have written: a truncated or
// overlong varint, an index past the last bucket, a count above
// math.MaxInt64, trailing bytes. On error l is left empty. Its work and
// memory are bounded by the length of data.
func (l *Latency) UnmarshalBinary(data []byte) error {
	rest, err := l.decode(data)
	if err == nil && len(rest) > 0 {
		err = corrupt("latency: %d trailing bytes", len(rest))
	}
	if err != nil {
		l.Reset()
	}
	return err
}

// decode reads a Latency from the start of data and returns the bytes after it.
func (l *Latency) decode(data []byte) ([]byte, error) {
	l.Reset()
	nb, data, err := uvarint(data)
	if err != nil {
		return nil, err
	}
	// Each bucket takes a byte at least, which bounds the memory by the input.
	if nb > uint64(numLatencyBuckets) || nb > uint64(len(data)) {
		return nil, corrupt("latency: %d buckets in %d bytes", nb, len(data))
	}
	if nb > 1 {
		l.b = slices.Grow(l.b, int(nb))
	}
	prev := int64(-1)
	for range nb {
		var v, c uint64
		if v, data, err = uvarint(data); err != nil {
			return nil, err
		}
		gap := v >> 1
		if gap >= uint64(int64(numLatencyBuckets)-prev-1) {
			return nil, corrupt("latency: bucket index past %d", numLatencyBuckets-1)
		}
		prev += int64(gap) + 1
		x := latencyBucket{int32(prev), 1}
		if v&1 != 0 {
			if c, data, err = uvarint(data); err != nil {
				return nil, err
			}
			if c > math.MaxInt64-2 {
				return nil, corrupt("latency: bucket count overflows")
			}
			x.n = int64(c) + 2
		}
		if nb == 1 {
			l.one[0] = x
		} else {
			l.b = append(l.b, x)
		}
		l.n = satAdd(l.n, x.n)
	}
	return data, nil
}

// Measures are the latency and traffic measures of a group of events. The
// zero value measures no event. Values built by AddEvent, Merge and
// UnmarshalBinary keep these invariants, which AppendBinary checks: every field
// is non-negative, Durations = Latency.Count(), DurationMax ≤ DurationSum,
// DurationMax is in the top bucket of Latency, and without durations
// DurationSum and DurationMax are 0.
//
// Sums and counts saturate at math.MaxInt64 rather than wrap. No real traffic
// gets there (2^63 bytes is 8 EiB), but ingest takes any non-negative int64
// in an event, so that two absurd events in one group could: saturated, the
// sum reads as "at least math.MaxInt64", and Merge stays associative and
// commutative. Avg of a saturated DurationSum is too low.
//
// Copying a Measures shares the storage of its Latency (see Latency).
type Measures struct {
	RequestBytes  int64 // sum of the events' requestBytes
	ResponseBytes int64 // sum of the events' responseBytes
	Durations     int64 // events that carried a duration
	DurationSum   int64 // sum of their durations, in ms
	DurationMax   int64 // the longest of them, in ms; 0 without durations
	Latency       Latency
}

// AddEvent adds what one accepted event contributes. An Event has no
// absent value for its measurements: ingest reads a missing or null field
// as 0, and writes 0 as nothing. So the bytes are summed as given (0 adds
// nothing), and a duration counts only when positive: a 0 ms duration is
// taken for no duration, lest every event sent without one count as an
// instant request. Negative values, which ingest refuses, add nothing.
func (m *Measures) AddEvent(e *Event) {
	if e.RequestBytes > 0 {
		m.RequestBytes = satAdd(m.RequestBytes, e.RequestBytes)
	}
	if e.ResponseBytes > 0 {
		m.ResponseBytes = satAdd(m.ResponseBytes, e.ResponseBytes)
	}
	if d := e.DurationMs; d > 0 {
		m.Durations = satAdd(m.Durations, 1)
		m.DurationSum = satAdd(m.DurationSum, d)
		m.DurationMax = max(m.DurationMax, d)
		m.Latency.Add(d)
	}
}

// Merge adds the measures of o to m; it is associative and commutative, as
// Latency.Merge is. o may be m itself.
func (m *Measures) Merge(o *Measures) {
	m.RequestBytes = satAdd(m.RequestBytes, o.RequestBytes)
	m.ResponseBytes = satAdd(m.ResponseBytes, o.ResponseBytes)
	m.Durations = satAdd(m.Durations, o.Durations)
	m.DurationSum = satAdd(m.DurationSum, o.DurationSum)
	m.DurationMax = max(m.DurationMax, o.DurationMax)
	m.Latency.Merge(&o.Latency)
}

// IsZero reports whether m measures nothing: no bytes and no durations.
func (m *Measures) IsZero() bool {
	return m.RequestBytes == 0 && m.ResponseBytes == 0 && m.Durations == 0 &&
		m.DurationSum == 0 && m.DurationMax == 0 && m.Latency.Count() == 0
}

// Avg returns the mean duration in ms, or 0 without durations.
func (m *Measures) Avg() float64 {
	if m.Durations <= 0 {
		return 0
	}
	return float64(m.DurationSum) / float64(m.Durations)
}

// AvgMillis returns the mean duration in thousandths of ms, rounded half
// up and computed exactly in integers, or 0 without durations. It
// saturates at math.MaxInt64.
func (m *Measures) AvgMillis() int64 {
	if m.Durations <= 0 || m.DurationSum <= 0 {
		return 0
	}
	n := uint64(m.Durations)
	q, r := uint64(m.DurationSum)/n, uint64(m.DurationSum)%n
	if q > (math.MaxInt64-1000)/1000 {
		return math.MaxInt64
	}
	hi, lo := bits.Mul64(r, 1000) // r < n, so hi < n
	f, rem := bits.Div64(hi, lo, n)
	if 2*rem >= n {
		f++
	}
	return int64(q*1000 + f)
}

// Quantile returns Latency.Quantile(q), but never above DurationMax, which is
// exact: a quantile is then never above the maximum reported beside it, and
// the bound of Latency still holds (the true value is at most DurationMax
// too). Without durations it returns 0.
func (m *Measures) Quantile(q float64) int64 {
	v := m.Latency.Quantile(q)
	if m.Latency.Count() > 0 {
		v = min(v, m.DurationMax)
	}
	return v
}

// Flags of the encoding of Measures: which fields follow.
const (
	measRequestBytes  = 1 << iota // a uvarint, ≥ 1
	measResponseBytes             // a uvarint, ≥ 1
	measDurations                 // DurationMax, DurationSum − DurationMax, then the Latency
	measOneDuration               // the one duration: it is DurationMax and DurationSum, its bucket the Latency
	measAll           = measRequestBytes | measResponseBytes | measDurations | measOneDuration
)

// check reports whether m keeps the invariants of Measures.
func (m *Measures) check() error {
	bs := m.Latency.buckets()
	switch {
	case m.RequestBytes < 0 || m.ResponseBytes < 0:
		return corrupt("negative bytes")
	case m.Durations != m.Latency.Count():
		return corrupt("%d durations, %d in the latency histogram", m.Durations, m.Latency.Count())
	case m.Durations == 0 && (m.DurationSum != 0 || m.DurationMax != 0):
		return corrupt("a duration sum or maximum without durations")
	case m.Durations == 0:
		return nil
	case m.DurationMax < 0 || m.DurationSum < m.DurationMax || m.Durations == 1 && m.DurationSum != m.DurationMax:
		return corrupt("duration maximum %d, sum %d of %d", m.DurationMax, m.DurationSum, m.Durations)
	case latencyIndex(m.DurationMax) != bs[len(bs)-1].i:
		return corrupt("duration maximum %d is not in the top bucket of the latency histogram", m.DurationMax)
	}
	return nil
}

// AppendBinary appends the encoding of m to b and returns the extended
// buffer; it fails for a value that breaks the invariants of Measures. The
// encoding is a byte of flags saying which fields follow, then, as uvarints,
// RequestBytes and ResponseBytes unless 0, and with durations DurationMax,
// DurationSum − DurationMax and the Latency (Durations is its count). One
// duration alone is written as just that duration: most groups at high
// cardinality hold one event, and its histogram and sum follow from it.
// Zero Measures are one byte; an event with bytes and a duration about
// seven. Equal Measures have equal encodings.
func (m *Measures) AppendBinary(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, err
	}
	var flags byte
	if m.RequestBytes != 0 {
		flags |= measRequestBytes
	}
	if m.ResponseBytes != 0 {
		flags |= measResponseBytes
	}
	switch m.Durations {
	case 0:
	case 1:
		flags |= measOneDuration
	default:
		flags |= measDurations
	}
	b = append(b, flags)
	if m.RequestBytes != 0 {
		b = binary.AppendUvarint(b, uint64(m.RequestBytes))
	}
	if m.ResponseBytes != 0 {
		b = binary.AppendUvarint(b, uint64(m.ResponseBytes))
	}
	switch m.Durations {
	case 0:
	case 1:
		b = binary.AppendUvarint(b, uint64(m.DurationMax))
	default:
		b = binary.AppendUvarint(b, uint64(m.DurationMax))
		b = binary.AppendUvarint(b, uint64(m.DurationSum-m.DurationMax))
		b, _ = m.Latency.AppendBinary(b)
	}
	return b, nil
}

// MarshalBinary returns the encoding of m (see AppendBinary).
func (m *Measures) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// UnmarshalBinary sets m to the measures data encodes, reusing the storage
// of m.Latency. It accepts exactly what AppendBinary writes, with the
// discipline of Latency.UnmarshalBinary, and checks the invariants of
// Measures. On error m is left zero.
func (m *Measures) UnmarshalBinary(data []byte) error {
	err := m.decode(data)
	if err != nil {
		lat := m.Latency
		lat.Reset()
		*m = Measures{Latency: lat}
	}
	return err
}

func (m *Measures) decode(data []byte) error {
	m.Latency.Reset()
	*m = Measures{Latency: m.Latency}
	if len(data) == 0 {
		return corrupt("measures: empty")
	}
	flags := data[0]
	data = data[1:]
	if flags&^measAll != 0 {
		return corrupt("measures: unknown flags %#x", flags)
	}
	positive := func(what string) (int64, error) {
		var v uint64
		var err error
		if v, data, err = uvarint(data); err != nil {
			return 0, err
		}
		if v == 0 || v > math.MaxInt64 {
			return 0, corrupt("measures: %s %d out of range", what, v)
		}
		return int64(v), nil
	}
	var err error
	if flags&measRequestBytes != 0 {
		if m.RequestBytes, err = positive("request bytes"); err != nil {
			return err
		}
	}
	if flags&measResponseBytes != 0 {
		if m.ResponseBytes, err = positive("response bytes"); err != nil {
			return err
		}
	}
	if flags&measOneDuration != 0 {
		if flags&measDurations != 0 {
			return corrupt("measures: one duration and a histogram both flagged")
		}
		d, rest, err := uvarint(data)
		if err != nil {
			return err
		}
		if d > math.MaxInt64 {
			return corrupt("measures: duration %d out of range", d)
		}
		data = rest
		m.Latency.Add(int64(d))
		m.Durations, m.DurationMax, m.DurationSum = 1, int64(d), int64(d)
	}
	if flags&measDurations != 0 {
		var mx, rest uint64
		if mx, data, err = uvarint(data); err != nil {
			return err
		}
		if rest, data, err = uvarint(data); err != nil {
			return err
		}
		if mx > math.MaxInt64 || rest > math.MaxInt64-mx {
			return corrupt("measures: duration maximum %d, sum beyond it %d out of range", mx, rest)
		}
		if data, err = m.Latency.decode(data); err != nil {
			return err
		}
		if m.Latency.Count() == 0 {
			return corrupt("measures: durations flagged, none in the latency histogram")
		}
		m.Durations, m.DurationMax, m.DurationSum = m.Latency.Count(), int64(mx), int64(mx+rest)
		if err := m.check(); err != nil {
			return err
		}
	}
	if len(data) > 0 {
		return corrupt("measures: %d trailing bytes", len(data))
	}
	return nil
}

// errCorrupt is the cause of every decoding error of Latency and Measures.
var errCorrupt = errors.New("usage: corrupt measures")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
}

// uvarint reads a uvarint from the start of b, refusing a truncated one, one
// over 64 bits and one longer than it needs be, so that every value has one
// encoding.
func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, corrupt("truncated")
	case n < 0:
		return 0, nil, corrupt("varint overflows 64 bits")
	case n > 1 && b[n-1] == 0:
		return 0, nil, corrupt("overlong varint")
	}
	return v, b[n:], nil
}
