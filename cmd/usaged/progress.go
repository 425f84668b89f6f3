package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress reports how far a long job has come: a redrawn bar with rate and
// ETA on a terminal, a plain line every few seconds otherwise (logs and
// pipes should not fill with carriage returns).
type progress struct {
	w     io.Writer
	label string
	total int64
	tty   bool
	start time.Time
	done  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startProgress(w io.Writer, label string, total int) *progress {
	p := &progress{w: w, label: label, total: int64(total), tty: isTerminal(w), start: time.Now(), stop: make(chan struct{})}
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	p.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw(false)
			}
		}
	})
	return p
}

// Add records n more units done. Safe for concurrent use.
func (p *progress) Add(n int) { p.done.Add(int64(n)) }

// finish stops the reporting and draws the final state.
func (p *progress) finish() {
	close(p.stop)
	p.wg.Wait()
	p.draw(true)
}

func (p *progress) draw(final bool) {
	done := p.done.Load()
	elapsed := time.Since(p.start)
	rate := float64(done) / max(elapsed.Seconds(), 1e-3)
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(done)/float64(p.total), 1)
	}
	eta := "—"
	if rate > 0 && done < p.total {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	if !p.tty {
		// The caller prints its own summary; a final plain line would repeat it.
		if !final {
			fmt.Fprintf(p.w, "%s: %3.0f%% (%s/%s events, %s events/s, ETA %s)\n", p.label, 100*frac, group(done), group(p.total), group(int64(rate)), eta)
		}
		return
	}
	const width = 30
	full := int(frac * width)
	bar := strings.Repeat("█", full) + strings.Repeat("░", width-full)
	fmt.Fprintf(p.w, "\r%s [%s] %3.0f%%  %s/%s events  %s/s  ETA %s\x1b[K", p.label, bar, 100*frac, group(done), group(p.total), group(int64(rate)), eta)
	if final {
		fmt.Fprintf(p.w, "\r%s: %s events in %s (%s events/s)\x1b[K\n", p.label, group(done), elapsed.Round(time.Millisecond), group(int64(rate)))
	}
}

// group formats n with thousands separators: 1,234,567.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
