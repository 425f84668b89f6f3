package spool

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkAdd measures Add as a request pays for it, with the writer
// running: it writes and fsyncs while Adds go on. A benchmark loop adds far
// faster than a disk fsyncs (hundreds of MB/s), which would make most Adds
// cheap drops; so every round of events the timer stops while they are
// made durable and acknowledged, as the shipper would, and the drops/op
// metric shows that the measured Adds were real appends.
func BenchmarkAdd(b *testing.B) {
	const round = 100_000 // about 10 MB: within the buffer, over the writer's kick size
	run := func(b *testing.B, workers int) {
		s := MustOpen(b, Config{Dir: b.TempDir()})
		ev := testEvent("bench", 1)
		rec, _ := appendRecord(nil, &ev)
		perOp := 1
		if workers > 1 {
			perOp = round / 10
		}
		b.SetBytes(int64(len(rec) * perOp))
		b.ReportAllocs()
		settle := func() {
			b.StopTimer()
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			for s.Stats().PendingEvents > 0 {
				evs, err := s.Next(context.Background(), 50_000)
				if err != nil {
					b.Fatal(err)
				}
				s.Ack(len(evs))
			}
			b.StartTimer()
		}
		n := 0
		for b.Loop() {
			if workers == 1 {
				s.Add(ev)
				n++
			} else {
				// One op is one Add on each of workers goroutines at once.
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for range perOp / workers {
							s.Add(ev)
						}
					})
				}
				wg.Wait()
				n += perOp
			}
			if n >= round {
				settle()
				n = 0
			}
		}
		b.StopTimer()
		st := s.Stats()
		b.ReportMetric(float64(st.Dropped)/float64(st.Spooled+st.Dropped), "drops/event")
		if workers > 1 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perOp), "ns/event")
		}
		s.Close()
	}
	b.Run("serial", func(b *testing.B) { run(b, 1) })
	b.Run("parallel", func(b *testing.B) {
		// Each op adds round/10 events from GOMAXPROCS goroutines: ns/op
		// divided by that is the cost per event under contention.
		run(b, runtime.GOMAXPROCS(0))
	})
}

// BenchmarkNext measures reading durable events back, the shipper's side.
func BenchmarkNext(b *testing.B) {
	s := MustOpen(b, Config{Dir: b.TempDir(), SyncEvery: time.Hour})
	const batch = 5000
	for i := range batch {
		s.Add(testEvent("e", i))
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		evs, err := s.Next(context.Background(), batch) // the same batch again: nothing is acknowledged
		if err != nil || len(evs) != batch {
			b.Fatal(len(evs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
}
