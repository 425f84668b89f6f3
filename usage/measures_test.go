package usage

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

// within reports whether got is within 1 % of want, as Latency promises:
// |got − want| ≤ want/100, in exact arithmetic.
func within(got, want int64) bool {
	d := new(big.Int).Sub(big.NewInt(got), big.NewInt(want))
	d.Abs(d).Mul(d, big.NewInt(100))
	return d.Cmp(big.NewInt(want)) <= 0
}

// TestLatencyBuckets checks the bucket layout: every duration of every bucket,
// its two ends included, is within 1 % of the bucket's answer, the buckets
// tile 0 to math.MaxInt64, and 0 to 98 ms are exact.
func TestLatencyBuckets(t *testing.T) {
	t.Parallel()
	if numLatencyBuckets != 2051 { // the encoding depends on the layout
		t.Fatalf("%d buckets, want 2051", numLatencyBuckets)
	}
	if latencyLows[0] != 0 {
		t.Fatalf("the first bucket starts at %d", latencyLows[0])
	}
	for i := range int32(numLatencyBuckets) {
		lo, hi := latencyLows[i], int64(math.MaxInt64)
		if int(i) < numLatencyBuckets-1 {
			hi = latencyLows[i+1] - 1
		}
		r := latencyValue(i)
		switch {
		case hi < lo:
			t.Fatalf("bucket %d is [%d, %d]", i, lo, hi)
		case !within(r, lo) || !within(r, hi):
			t.Fatalf("bucket %d [%d, %d] answers %d", i, lo, hi, r)
		case latencyIndex(lo) != i || latencyIndex(hi) != i:
			t.Fatalf("bucket %d [%d, %d]: latencyIndex gives %d and %d", i, lo, hi, latencyIndex(lo), latencyIndex(hi))
		case i < exactBelow && (lo != int64(i) || hi != lo):
			t.Fatalf("bucket %d is [%d, %d], not exact", i, lo, hi)
		}
	}
	for v := int64(0); v < 1<<21; v++ {
		r := latencyValue(latencyIndex(v))
		if !within(r, v) || v < exactBelow && r != v {
			t.Fatalf("%d ms answers %d", v, r)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		v := rng.Int64() >> rng.IntN(63)
		if r := latencyValue(latencyIndex(v)); !within(r, v) {
			t.Fatalf("%d ms answers %d", v, r)
		}
	}
	if latencyIndex(-5) != 0 {
		t.Fatal("a negative duration is not taken as 0")
	}
	// About 35 buckets per doubling, as a DDSketch with 1 % accuracy has.
	if n := latencyIndex(1<<31) - latencyIndex(1<<30); n < 34 || n > 36 {
		t.Fatalf("%d buckets from 2^30 to 2^31", n)
	}
}

// distributions of durations for the accuracy test, each drawing n values.
var distributions = []struct {
	name string
	draw func(r *rand.Rand, n int) []int64
}{
	{"uniform", func(r *rand.Rand, n int) []int64 {
		return fill(n, func() int64 { return r.Int64N(10_000) })
	}},
	{"lognormal", func(r *rand.Rand, n int) []int64 {
		return fill(n, func() int64 { return int64(math.Exp(math.Log(200) + 1.2*r.NormFloat64())) })
	}},
	{"pareto+outliers", func(r *rand.Rand, n int) []int64 {
		return fill(n, func() int64 {
			if r.IntN(100) == 0 {
				return r.Int64N(1 << 40) // an hour, a day, years
			}
			return int64(20 / math.Pow(1-r.Float64(), 1/1.1))
		})
	}},
	{"equal", func(r *rand.Rand, n int) []int64 {
		v := r.Int64N(1 << 20)
		return fill(n, func() int64 { return v })
	}},
	{"tiny", func(r *rand.Rand, n int) []int64 {
		return fill(1+r.IntN(3), func() int64 { return r.Int64N(1 << 32) })
	}},
	{"zero-one", func(r *rand.Rand, n int) []int64 {
		return fill(n, func() int64 { return r.Int64N(2) })
	}},
	{"exact", func(r *rand.Rand, n int) []int64 {
		return fill(n, func() int64 { return r.Int64N(exactBelow) })
	}},
	{"near-boundaries", func(r *rand.Rand, n int) []int64 {
		return fill(n, func() int64 {
			i := 1 + r.IntN(1300)
			return latencyLows[i] - r.Int64N(2)
		})
	}},
}

func fill(n int, f func() int64) []int64 {
	vs := make([]int64, n)
	for i := range vs {
		vs[i] = f()
	}
	return vs
}

// permilles are the quantiles checked, in thousandths: 0.5, 0.9, 0.95, 0.99,
// the maximum, the minimum and a few odd ones.
var permilles = []int64{500, 900, 950, 990, 1000, 0, 1, 70, 333, 999}

// nearestRank returns the ⌈p·n/1000⌉-th smallest of sorted (the first for
// p = 0), computed with integers.
func nearestRank(sorted []int64, p int64) int64 {
	rank := max((p*int64(len(sorted))+999)/1000, 1)
	return sorted[rank-1]
}

// TestLatencyAccuracy draws durations from several distributions, records
// them in random hours, merges the hours into days and the days into a
// month in random orders, and checks the month's quantiles against the exact
// nearest-rank percentiles of the sorted durations, and its sums, maximum
// and counts against direct sums.
func TestLatencyAccuracy(t *testing.T) {
	t.Parallel()
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	sizes := []int{1, 2, 3, 10, 100, 1000, 20_000}
	for _, d := range distributions {
		for _, n := range sizes {
			for trial := range 3 {
				vals := d.draw(rng, n)
				name := fmt.Sprintf("%s/n=%d/%d", d.name, len(vals), trial)
				checkAccuracy(t, name, rng, vals)
			}
		}
	}
}

func checkAccuracy(t *testing.T, name string, rng *rand.Rand, vals []int64) {
	t.Helper()
	// Events: a duration each, bytes on most; some without a duration.
	type event struct {
		Event
		drawn bool // carries one of vals, perhaps 0
	}
	var events []event
	var want Measures // the exact sums, by hand
	for _, v := range vals {
		e := Event{DurationMs: v, RequestBytes: rng.Int64N(3) * rng.Int64N(1<<20), ResponseBytes: rng.Int64N(1 << 30)}
		events = append(events, event{e, true})
		want.RequestBytes += e.RequestBytes
		want.ResponseBytes += e.ResponseBytes
		if v > 0 {
			want.Durations++
			want.DurationSum += v
			want.DurationMax = max(want.DurationMax, v)
		}
		if rng.IntN(4) == 0 {
			events = append(events, event{Event{RequestBytes: 7}, false}) // no duration
			want.RequestBytes += 7
		}
	}
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })

	// Random hours, days of random hours, a month of the days.
	hours := make([]Measures, 1+rng.IntN(min(len(events), 48)))
	lat := make([]Latency, len(hours)) // every drawn duration, 0 included, by Add
	for _, e := range events {
		h := rng.IntN(len(hours))
		hours[h].AddEvent(&e.Event)
		if e.drawn {
			lat[h].Add(e.DurationMs)
		}
	}
	month := mergeRandomly(rng, hours)
	var monthLat Latency
	for _, i := range rng.Perm(len(lat)) {
		monthLat.Merge(&lat[i])
	}
	var direct Latency // every duration, in order
	for _, v := range vals {
		direct.Add(v)
	}
	if !monthLat.Equal(&direct) {
		t.Fatalf("%s: the hours merged differ from the durations added", name)
	}

	if scalars(&month) != scalars(&want) {
		t.Fatalf("%s: measures\n %v\nwant\n %v", name, scalars(&month), scalars(&want))
	}
	if month.Latency.Count() != want.Durations || monthLat.Count() != int64(len(vals)) {
		t.Fatalf("%s: counts %d and %d, want %d and %d", name, month.Latency.Count(), monthLat.Count(), want.Durations, len(vals))
	}

	sorted := slices.Sorted(slices.Values(vals))
	var positive []int64
	for _, v := range sorted {
		if v > 0 {
			positive = append(positive, v)
		}
	}
	for _, p := range permilles {
		q := float64(p) / 1000
		x, g := nearestRank(sorted, p), monthLat.Quantile(q)
		if !within(g, x) || x < exactBelow && g != x {
			t.Fatalf("%s: q=%g: %d, want %d within 1 %%", name, q, g, x)
		}
		if len(positive) == 0 {
			if g := month.Quantile(q); g != 0 {
				t.Fatalf("%s: q=%g with no durations: %d", name, q, g)
			}
			continue
		}
		x, g = nearestRank(positive, p), month.Quantile(q)
		if !within(g, x) || x < exactBelow && g != x || g > want.DurationMax {
			t.Fatalf("%s: measures q=%g: %d, want %d within 1 %%, at most %d", name, q, g, x, want.DurationMax)
		}
	}
	if want.Durations > 0 {
		if avg := month.Avg(); avg != float64(want.DurationSum)/float64(want.Durations) {
			t.Fatalf("%s: avg %g", name, avg)
		}
	}
}

// mergeRandomly merges hours into days and days into a month, each in a
// random order, into fresh values, leaving hours as they were.
func mergeRandomly(rng *rand.Rand, hours []Measures) Measures {
	var days []Measures
	for _, i := range rng.Perm(len(hours)) {
		if len(days) == 0 || rng.IntN(3) == 0 {
			days = append(days, Measures{})
		}
		days[len(days)-1].Merge(&hours[i])
	}
	var month Measures
	for _, i := range rng.Perm(len(days)) {
		month.Merge(&days[i])
	}
	return month
}

// TestLatencyRank checks the rank Quantile reads against the decimal
// nearest rank ⌈p·n/1000⌉, computed with integers: two buckets hold r−1 and
// n−r+1 durations, so that the answer says on which side of r the rank falls.
func TestLatencyRank(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(p, n int64) {
		t.Helper()
		r := max(int64((uint64(p)*uint64(n)+999)/1000), 1)
		q := float64(p) / 1000
		var below, above Latency
		below.AddN(1, r-1) // the rank-th is 2 iff rank ≥ r
		below.AddN(2, n-r+1)
		above.AddN(1, r) // the rank-th is 1 iff rank ≤ r
		above.AddN(2, n-r)
		if below.Quantile(q) != 2 || above.Quantile(q) != 1 {
			t.Fatalf("n=%d q=%g: the rank is not %d", n, q, r)
		}
	}
	for n := int64(1); n <= 2000; n++ {
		for p := range int64(1001) {
			check(p, n)
		}
	}
	for n := int64(1); n <= 200_000; n++ {
		for _, p := range []int64{500, 900, 950, 990, 999} {
			check(p, n)
		}
	}
	for range 200_000 {
		check(rng.Int64N(1001), 1+rng.Int64N(1e11-1))
	}
}

func TestLatencyQuantileEdges(t *testing.T) {
	var l Latency
	if l.Quantile(0.5) != 0 || l.Count() != 0 {
		t.Fatal("an empty histogram answers")
	}
	for _, v := range []int64{5, 1, 3} {
		l.Add(v)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{-1, 1}, {math.NaN(), 1}, {0, 1}, {0.33, 1}, {0.34, 3}, {0.5, 3}, {0.67, 5}, {1, 5}, {2, 5}, {math.Inf(1), 5}} {
		if got := l.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%g) = %d, want %d", c.q, got, c.want)
		}
	}
	l.Add(-4) // taken as 0
	if l.Quantile(0) != 0 || l.Count() != 4 {
		t.Errorf("a negative duration: min %d, count %d", l.Quantile(0), l.Count())
	}
	l.AddN(7, 0)
	l.AddN(7, -2)
	if l.Count() != 4 {
		t.Errorf("AddN with n ≤ 0 added")
	}
	var top Latency
	top.Add(math.MaxInt64)
	if g := top.Quantile(1); !within(g, math.MaxInt64) {
		t.Errorf("the largest duration answers %d", g)
	}
}

// model is the reference for Merge: counts by bucket in a map.
type model map[int32]int64

func (m model) of(l *Latency) {
	for _, b := range l.buckets() {
		m[b.i] += b.n
	}
}

func (m model) equal(l *Latency) bool {
	bs := l.buckets()
	if len(bs) != len(m) || !slices.IsSortedFunc(bs, func(a, b latencyBucket) int { return int(a.i - b.i) }) {
		return false
	}
	var n int64
	for _, b := range bs {
		if b.n < 1 || m[b.i] != b.n {
			return false
		}
		n += b.n
	}
	return n == l.Count()
}

// randomLatency returns a histogram of 0 to a few hundred durations, often
// none or one, often sharing buckets.
func randomLatency(rng *rand.Rand) *Latency {
	var l Latency
	n := []int{0, 1, 1, 2, 3, 10, 300}[rng.IntN(7)]
	for range n {
		switch rng.IntN(3) {
		case 0:
			l.Add(rng.Int64N(5))
		case 1:
			l.AddN(rng.Int64N(1<<rng.IntN(40)), 1+rng.Int64N(3))
		default:
			l.Add(100 + rng.Int64N(100))
		}
	}
	return &l
}

func clone(l *Latency) *Latency {
	var c Latency
	c.Merge(l)
	return &c
}

func TestLatencyMerge(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20_000 {
		a, b, c := randomLatency(rng), randomLatency(rng), randomLatency(rng)
		m := model{}
		m.of(a)
		m.of(b)
		ab := clone(a)
		ab.Merge(b)
		if !m.equal(ab) {
			t.Fatalf("merge of\n %v\n %v\n gives %v", a.buckets(), b.buckets(), ab.buckets())
		}
		ba := clone(b)
		ba.Merge(a)
		if !ab.Equal(ba) {
			t.Fatal("merge is not commutative")
		}
		ab.Merge(c) // (a+b)+c
		bc := clone(b)
		bc.Merge(c)
		a2 := clone(a)
		a2.Merge(bc) // a+(b+c)
		if !ab.Equal(a2) {
			t.Fatal("merge is not associative")
		}
		e1, _ := ab.AppendBinary(nil)
		e2, _ := a2.AppendBinary(nil)
		if !bytes.Equal(e1, e2) {
			t.Fatal("equal histograms encode differently")
		}
		self, twice := clone(a), clone(a)
		self.Merge(self)
		twice.Merge(a)
		if !self.Equal(twice) {
			t.Fatal("a histogram merged with itself is not doubled")
		}
		a.Merge(&Latency{})
		a.Merge(nil)
		if !a.Equal(clone(a)) {
			t.Fatal("merging nothing changed a histogram")
		}
	}
}

func TestLatencySaturates(t *testing.T) {
	var l Latency
	l.AddN(10, math.MaxInt64-1)
	l.AddN(10, 5)
	l.AddN(20, math.MaxInt64)
	if l.Count() != math.MaxInt64 || l.Quantile(0) != 10 {
		t.Fatalf("count %d, min %d", l.Count(), l.Quantile(0))
	}
	l.Merge(&l)
	roundTrip(t, &l)

	var m, e Measures
	e.AddEvent(&Event{RequestBytes: math.MaxInt64, ResponseBytes: math.MaxInt64, DurationMs: math.MaxInt64})
	m.Merge(&e)
	m.Merge(&e)
	if m.RequestBytes != math.MaxInt64 || m.DurationSum != math.MaxInt64 || m.Durations != 2 {
		t.Fatalf("%+v", m)
	}
	roundTripMeasures(t, &m)
}

func TestLatencyAllocs(t *testing.T) {
	var one Latency
	one.Add(150)
	enc, _ := one.AppendBinary(nil)
	var acc, tmp Latency
	for i := range 1000 {
		acc.Add(int64(i))
	}
	if n := testing.AllocsPerRun(100, func() {
		var l Latency
		l.Add(150)
		l.Add(150)
		l.AddN(150, 3)
	}); n != 0 {
		t.Errorf("one bucket: %g allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		acc.Reset()
		for range 1000 { // a month folded from one-event hours, decoded from a store
			if err := tmp.UnmarshalBinary(enc); err != nil {
				t.Fatal(err)
			}
			acc.Merge(&tmp)
		}
	}); n != 0 {
		t.Errorf("decoding and merging 1,000 hours: %g allocations", n)
	}
}

func roundTrip(t *testing.T, l *Latency) []byte {
	t.Helper()
	enc, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var d Latency
	d.Add(3) // overwritten
	if err := d.UnmarshalBinary(enc); err != nil {
		t.Fatalf("%x: %v", enc, err)
	}
	if !d.Equal(l) {
		t.Fatalf("%x decodes to %v, not %v", enc, d.buckets(), l.buckets())
	}
	return enc
}

func roundTripMeasures(t *testing.T, m *Measures) []byte {
	t.Helper()
	enc, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	d := Measures{RequestBytes: 1}
	d.Latency.Add(3)
	if err := d.UnmarshalBinary(enc); err != nil {
		t.Fatalf("%x: %v", enc, err)
	}
	if !measuresEqual(&d, m) {
		t.Fatalf("%x decodes to %+v, not %+v", enc, d, *m)
	}
	return enc
}

// scalars returns the fields of m but its Latency.
func scalars(m *Measures) [5]int64 {
	return [5]int64{m.RequestBytes, m.ResponseBytes, m.Durations, m.DurationSum, m.DurationMax}
}

func measuresEqual(a, b *Measures) bool {
	return scalars(a) == scalars(b) && a.Latency.Equal(&b.Latency)
}

func TestLatencyEncoding(t *testing.T) {
	var l Latency
	if enc := roundTrip(t, &l); !bytes.Equal(enc, []byte{0}) {
		t.Errorf("empty: %x", enc)
	}
	l.Add(150)
	if enc := roundTrip(t, &l); !bytes.Equal(enc, []byte{1, 0xe8, 0x01}) {
		t.Errorf("150 ms: %x", enc)
	}
	l.Add(1000)
	l.AddN(0, 300)
	// Buckets 0 (300), 116 (1) and 212 (1): gaps 0, 115 and 95, shifted.
	if enc := roundTrip(t, &l); !bytes.Equal(enc, []byte{3, 1, 0xaa, 0x02, 0xe6, 0x01, 0xbe, 0x01}) {
		t.Errorf("three buckets: %x", enc)
	}
	rng := rand.New(rand.NewPCG(8, 9))
	for range 10_000 {
		roundTrip(t, randomLatency(rng))
	}

	bad := map[string][]byte{
		"empty":              {},
		"truncated count":    {1, 1},
		"truncated bucket":   {2, 0, 1},
		"trailing":           {1, 0xe8, 0x01, 0},
		"overlong buckets":   {0x81, 0x00, 0},
		"overlong gap":       {1, 0xe8, 0x81, 0x00},
		"overlong count":     {1, 1, 0x80, 0x00},
		"index past the end": {1, 0x86, 0x20}, // 2051
		"gap past the end":   {2, 0, 0x84, 0x20},
		"gap overflow":       {2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"count overflow":     {1, 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"varint overflow":    {1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
		"too many buckets":   {0x84, 0x10},
		"more than bytes":    {3, 0, 0},
	}
	var edge Latency
	edge.Add(latencyLows[numLatencyBuckets-1])
	edge.AddN(0, math.MaxInt64)
	if enc := roundTrip(t, &edge); !bytes.Equal(enc, []byte{2, 1, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x82, 0x20}) {
		t.Errorf("the edges: %x", enc)
	}
	for name, data := range bad {
		var l Latency
		l.Add(5)
		err := l.UnmarshalBinary(data)
		if !errors.Is(err, errCorrupt) || l.Count() != 0 || len(l.buckets()) != 0 {
			t.Errorf("%s %x: %v, %d left", name, data, err, l.Count())
		}
	}
	// Every prefix of a valid encoding is refused.
	var big Latency
	for i := range 500 {
		big.AddN(int64(i*i), int64(i+1))
	}
	enc := roundTrip(t, &big)
	for n := range len(enc) {
		if err := new(Latency).UnmarshalBinary(enc[:n]); err == nil {
			t.Fatalf("a prefix of %d bytes decodes", n)
		}
	}
}

func TestMeasures(t *testing.T) {
	var m Measures
	if !m.IsZero() || m.Avg() != 0 || m.Quantile(0.5) != 0 {
		t.Fatal("zero measures are not zero")
	}
	m.AddEvent(&Event{}) // no measurement
	m.AddEvent(&Event{RequestBytes: -3, ResponseBytes: -1, DurationMs: -7})
	if !m.IsZero() {
		t.Fatalf("absent or negative measurements add %+v", m)
	}
	if enc := roundTripMeasures(t, &m); !bytes.Equal(enc, []byte{0}) {
		t.Errorf("zero: %x", enc)
	}
	m.AddEvent(&Event{RequestBytes: 500, ResponseBytes: 4000, DurationMs: 150})
	if m.IsZero() || m.Durations != 1 || m.DurationSum != 150 || m.DurationMax != 150 || m.Avg() != 150 {
		t.Fatalf("%+v", m)
	}
	if enc := roundTripMeasures(t, &m); !bytes.Equal(enc, []byte{11, 0xf4, 0x03, 0xa0, 0x1f, 0x96, 0x01}) {
		t.Errorf("one event: %x", enc)
	}
	// The form of one duration before it had its own flag still reads.
	var legacy Measures
	if err := legacy.UnmarshalBinary([]byte{7, 0xf4, 0x03, 0xa0, 0x1f, 0x96, 0x01, 0, 1, 0xe8, 0x01}); err != nil || !measuresEqual(&legacy, &m) {
		t.Errorf("one event, histogram form: %+v, %v", legacy, err)
	}
	m.AddEvent(&Event{DurationMs: 103}) // bucket [101, 103], answering 102
	m.AddEvent(&Event{DurationMs: 0, ResponseBytes: 1})
	if m.Durations != 2 || m.DurationSum != 253 || m.ResponseBytes != 4001 || m.Avg() != 126.5 {
		t.Fatalf("%+v", m)
	}
	var solo Measures
	solo.AddEvent(&Event{DurationMs: 103})
	if solo.Quantile(0.5) != 102 || solo.Quantile(1) != 102 {
		t.Errorf("103 ms: %d", solo.Quantile(0.5))
	}
	solo = Measures{}
	solo.AddEvent(&Event{DurationMs: 101})
	if solo.Quantile(0.5) != 101 { // 102, capped at the maximum
		t.Errorf("101 ms: %d", solo.Quantile(0.5))
	}
	m.Merge(&m)
	if m.Durations != 4 || m.DurationSum != 506 || m.Latency.Count() != 4 || m.RequestBytes != 1000 {
		t.Fatalf("merged with itself: %+v", m)
	}
	roundTripMeasures(t, &m)

	// Values that break the invariants are not encoded.
	one := func() Measures {
		var m Measures
		m.AddEvent(&Event{DurationMs: 2000})
		return m
	}
	for name, f := range map[string]func(*Measures){
		"negative bytes":         func(m *Measures) { m.RequestBytes = -1 },
		"durations":              func(m *Measures) { m.Durations = 2 },
		"max outside the top":    func(m *Measures) { m.DurationMax = 1000 },
		"sum below max":          func(m *Measures) { m.DurationSum = 100 },
		"one sum beyond its max": func(m *Measures) { m.DurationSum = 3000 },
		"sum without durations":  func(m *Measures) { *m = Measures{DurationSum: 1} },
		"max without durations":  func(m *Measures) { *m = Measures{DurationMax: 1} },
	} {
		m := one()
		f(&m)
		if b, err := m.AppendBinary([]byte{9}); !errors.Is(err, errCorrupt) || !bytes.Equal(b, []byte{9}) {
			t.Errorf("%s: %x, %v", name, b, err)
		}
	}

	good, _ := (&m).MarshalBinary()
	bad := map[string][]byte{
		"empty":                   {},
		"unknown flag":            {16},
		"one and many durations":  {12, 5, 5, 0, 1, 10},
		"truncated one duration":  {8},
		"one duration over int64": {8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"zero request bytes":      {1, 0},
		"zero response bytes":     {2, 0},
		"bytes over int64":        {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"no latency":              {4, 5, 0, 0},
		"max outside the top":     {4, 6, 0, 1, 10},
		"sum overflows":           {4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 1, 0x84, 0x20},
		"trailing":                append(slices.Clip(good), 0),
		"truncated":               good[:len(good)-1],
		"latency without flag":    {0, 1, 10},
		"overlong request":        {1, 0x85, 0x00},
		"truncated duration":      {4, 5},
		"truncated sum":           {4, 5, 0x80},
		"latency count too big":   {4, 5, 0, 1, 11, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for name, data := range bad {
		m := one()
		err := m.UnmarshalBinary(data)
		if !errors.Is(err, errCorrupt) || !m.IsZero() {
			t.Errorf("%s %x: %v, %+v left", name, data, err, m)
		}
	}
	rng := rand.New(rand.NewPCG(10, 11))
	for range 5000 {
		roundTripMeasures(t, randomMeasures(rng))
	}
}

func randomMeasures(rng *rand.Rand) *Measures {
	var m Measures
	for range []int{0, 1, 1, 2, 5, 100}[rng.IntN(6)] {
		e := Event{DurationMs: rng.Int64N(1 << rng.IntN(40))}
		if rng.IntN(2) == 0 {
			e.RequestBytes = rng.Int64N(1 << 20)
		}
		if rng.IntN(2) == 0 {
			e.ResponseBytes = rng.Int64N(1 << 30)
		}
		m.AddEvent(&e)
	}
	return &m
}

// TestMeasuresSizes logs the encoded size of groups of 1, 10 and 1,000
// events with log-normal durations, and bounds them.
func TestMeasuresSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	for _, c := range []struct{ n, latMax, measMax int }{{1, 3, 8}, {10, 15, 28}, {1000, 520, 540}} {
		var m Measures
		for range c.n {
			m.AddEvent(&Event{
				DurationMs:    int64(math.Exp(math.Log(200) + 1.2*rng.NormFloat64())),
				RequestBytes:  int64(math.Exp(math.Log(500) + 0.8*rng.NormFloat64())),
				ResponseBytes: int64(math.Exp(math.Log(4000) + rng.NormFloat64())),
			})
		}
		lat, _ := m.Latency.MarshalBinary()
		meas, _ := m.MarshalBinary()
		t.Logf("%d events: %d buckets, latency %d bytes, measures %d bytes", c.n, len(m.Latency.buckets()), len(lat), len(meas))
		if len(lat) > c.latMax || len(meas) > c.measMax {
			t.Errorf("%d events: latency %d bytes, measures %d", c.n, len(lat), len(meas))
		}
	}
}

func FuzzLatencyDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(14, 15))
	for range 20 {
		enc, _ := randomLatency(rng).MarshalBinary()
		f.Add(enc)
	}
	for _, b := range [][]byte{{}, {0}, {1, 0xe8, 0x01}, {1, 0x84, 0x20}, {2, 0, 0}, {1, 0x86, 0x20}, {0x84, 0x10}, {1, 1, 0x80, 0x00}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var l Latency
		if err := l.UnmarshalBinary(data); err != nil {
			if l.Count() != 0 {
				t.Fatal("a refused encoding left durations")
			}
			return
		}
		enc, _ := l.AppendBinary(nil)
		if !bytes.Equal(enc, data) {
			t.Fatalf("%x decodes, and encodes back as %x", data, enc)
		}
		var again Latency
		again.Merge(&l)
		again.Merge(&l)
		l.Merge(&l)
		if !again.Equal(&l) {
			t.Fatal("merging twice is not merging with itself")
		}
		prev := int64(-1)
		for _, q := range []float64{0, 0.5, 0.99, 1} {
			v := l.Quantile(q)
			if v < prev {
				t.Fatalf("quantiles decrease: %d then %d", prev, v)
			}
			prev = v
		}
		enc, _ = l.AppendBinary(enc[:0])
		if err := again.UnmarshalBinary(enc); err != nil || !again.Equal(&l) {
			t.Fatalf("%x: %v", enc, err)
		}
	})
}

func FuzzMeasuresDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(16, 17))
	for range 20 {
		enc, _ := randomMeasures(rng).MarshalBinary()
		f.Add(enc)
	}
	for _, b := range [][]byte{{}, {0}, {3, 1, 1}, {4, 5, 0, 1, 10}, {7, 0xf4, 0x03, 0xa0, 0x1f, 0x96, 0x01, 0, 1, 0xe8, 0x01}, {11, 0xf4, 0x03, 0xa0, 0x1f, 0x96, 0x01}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Measures
		if err := m.UnmarshalBinary(data); err != nil {
			if !m.IsZero() {
				t.Fatal("a refused encoding left measures")
			}
			return
		}
		enc, err := m.AppendBinary(nil)
		// One duration written as a histogram, as before it had a flag of
		// its own, reads but is written back in the shorter form.
		legacyOne := data[0]&measDurations != 0 && m.Durations == 1
		if err != nil || !bytes.Equal(enc, data) && !legacyOne {
			t.Fatalf("%x decodes, and encodes back as %x, %v", data, enc, err)
		}
		if legacyOne {
			var again Measures
			if err := again.UnmarshalBinary(enc); err != nil || !measuresEqual(&again, &m) || len(enc) >= len(data) {
				t.Fatalf("%x: written back as %x, %v", data, enc, err)
			}
		}
		if q := m.Quantile(1); q > m.DurationMax {
			t.Fatalf("the maximum %d is below the top quantile %d", m.DurationMax, q)
		}
		var sum Measures
		sum.Merge(&m)
		sum.Merge(&m)
		if enc, err = sum.AppendBinary(enc[:0]); err != nil {
			t.Fatalf("merged twice: %v", err)
		}
		if err := m.UnmarshalBinary(enc); err != nil || !measuresEqual(&m, &sum) {
			t.Fatalf("%x: %v", enc, err)
		}
	})
}

// lognormal returns n durations around 200 ms.
func lognormal(n int) []int64 {
	rng := rand.New(rand.NewPCG(18, 19))
	return fill(n, func() int64 { return int64(math.Exp(math.Log(200) + 1.2*rng.NormFloat64())) })
}

func BenchmarkLatencyAdd(b *testing.B) {
	vals := lognormal(4096)
	var l Latency
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Add(vals[i&4095])
	}
}

// BenchmarkLatencyMerge1000 merges 1,000 one-event histograms, a month of a
// group seen once an hour; into a reused histogram and into a new one.
func BenchmarkLatencyMerge1000(b *testing.B) {
	vals := lognormal(1000)
	hours := make([]Latency, len(vals))
	for i, v := range vals {
		hours[i].Add(v)
	}
	b.Run("reused", func(b *testing.B) {
		var acc Latency
		b.ReportAllocs()
		for b.Loop() {
			acc.Reset()
			for i := range hours {
				acc.Merge(&hours[i])
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var acc Latency
			for i := range hours {
				acc.Merge(&hours[i])
			}
		}
	})
}

// BenchmarkLatencyMergeLarge merges two histograms of 1,000 durations each.
func BenchmarkLatencyMergeLarge(b *testing.B) {
	var x, y, acc Latency
	for _, v := range lognormal(2000)[:1000] {
		x.Add(v)
	}
	for _, v := range lognormal(2000)[1000:] {
		y.Add(v)
	}
	b.ReportAllocs()
	for b.Loop() {
		acc.Reset()
		acc.Merge(&x)
		acc.Merge(&y)
	}
}

func BenchmarkLatencyQuantile(b *testing.B) {
	var l Latency
	for _, v := range lognormal(1000) {
		l.Add(v)
	}
	b.ReportAllocs()
	for b.Loop() {
		l.Quantile(0.99)
	}
}

func BenchmarkLatencyEncoding(b *testing.B) {
	for _, n := range []int{1, 1000} {
		var l, d Latency
		for _, v := range lognormal(n) {
			l.Add(v)
		}
		buf, _ := l.AppendBinary(nil)
		b.Run(fmt.Sprintf("encode/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = l.AppendBinary(buf[:0])
			}
		})
		b.Run(fmt.Sprintf("decode/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := d.UnmarshalBinary(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMeasuresAddEvent(b *testing.B) {
	vals := lognormal(4096)
	var m Measures
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.AddEvent(&Event{DurationMs: vals[i&4095], RequestBytes: 500, ResponseBytes: 4000})
	}
}

func BenchmarkMeasuresEncoding(b *testing.B) {
	var m, d Measures
	m.AddEvent(&Event{DurationMs: 150, RequestBytes: 500, ResponseBytes: 4000})
	buf, _ := m.AppendBinary(nil)
	b.Run("encode/1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = m.AppendBinary(buf[:0])
		}
	})
	b.Run("decode/1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := d.UnmarshalBinary(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
