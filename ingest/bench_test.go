package ingest_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/bench"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

// benchBody is an NDJSON body of n events whose ids all begin with a
// fixed-width batch prefix, so that a worker can make a fresh batch by
// rewriting the prefixes in place instead of re-encoding.
type benchBody struct {
	buf     []byte
	offsets []int // where each id's prefix starts
}

const prefixLen = 12

func newBenchBody(r *rand.Rand, n int, now time.Time) *benchBody {
	cfg := bench.StoreConfig{Events: n, Orgs: 10, Clients: 200, Users: 2000, Templates: 300, Days: 1}
	g := bench.NewGen(cfg, now.Add(-24*time.Hour))
	var bb benchBody
	var ev usage.Event
	for i := range n {
		g.Event(r, i, &ev)
		ev.ID = fmt.Sprintf("%0*d-%d", prefixLen, 0, i)
		line := ingest.AppendNDJSON(nil, &ev)
		bb.offsets = append(bb.offsets, len(bb.buf)+bytes.Index(line, []byte(ev.ID)))
		bb.buf = append(bb.buf, line...)
	}
	return &bb
}

func (bb *benchBody) stamp(batch uint64) {
	var p [prefixLen]byte
	for i, v := prefixLen-1, batch; i >= 0; i-- {
		p[i] = byte('0' + v%10)
		v /= 10
	}
	for _, o := range bb.offsets {
		copy(bb.buf[o:], p[:])
	}
}

// BenchmarkPipeline measures the in-process ingest path (decode, validate,
// dedupe, aggregate, durable commit) on NDJSON batches of 5,000 new events,
// with concurrent workers sharing fsyncs as concurrent requests do.
func BenchmarkPipeline(b *testing.B) {
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			db, err := pebble.Open(pebble.Config{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			p, err := ingest.New(ingest.Config{Store: db})
			if err != nil {
				b.Fatal(err)
			}
			const batch = 5000
			now := time.Now()
			bodies := make([]*benchBody, workers)
			for w := range bodies {
				bodies[w] = newBenchBody(rand.New(rand.NewPCG(uint64(w), 1)), batch, now)
			}
			b.SetBytes(int64(len(bodies[0].buf)))
			b.ReportAllocs()
			var next atomic.Int64
			var seq atomic.Uint64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					bb := bodies[w]
					for next.Add(1) <= int64(b.N) {
						bb.stamp(seq.Add(1))
						dec, err := ingest.Decode(bb.buf, ingest.FormatNDJSON, ingest.Limits{})
						if err != nil {
							b.Error(err)
							return
						}
						res, err := p.Ingest(b.Context(), dec.Events, ingest.Scope{})
						if err != nil || res.Accepted != batch {
							b.Errorf("ingest: %+v %v", res.Errors[:min(3, len(res.Errors))], err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkDecode measures NDJSON decoding alone.
func BenchmarkDecode(b *testing.B) {
	bb := newBenchBody(rand.New(rand.NewPCG(1, 1)), 5000, time.Now())
	b.SetBytes(int64(len(bb.buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ingest.Decode(bb.buf, ingest.FormatNDJSON, ingest.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "events/s")
}
