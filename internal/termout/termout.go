// Package termout is what usaged's commands show a person: a progress
// bar on a terminal (plain lines elsewhere) and counts written for reading.
package termout

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// Progress reports how far a long job has come: a redrawn bar with rate and
// ETA on a terminal, a plain line every few seconds otherwise (logs and
// pipes should not fill with carriage returns).
type Progress struct {
	w     io.Writer
	label string
	total int64
	tty   bool
	start time.Time
	done  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// StartProgress starts reporting on w the progress of a job of total units.
func StartProgress(w io.Writer, label string, total int) *Progress {
	p := &Progress{w: w, label: label, total: int64(total), tty: IsTerminal(w), start: time.Now(), stop: make(chan struct{})}
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
func (p *Progress) Add(n int) { p.done.Add(int64(n)) }

// Finish stops the reporting and draws the final state.
func (p *Progress) Finish() {
	close(p.stop)
	p.wg.Wait()
	p.draw(true)
}

func (p *Progress) draw(final bool) {
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
			fmt.Fprintf(p.w, "%s: %3.0f%% (%s/%s events, %s events/s, ETA %s)\n", p.label, 100*frac, Group(done), Group(p.total), Group(int64(rate)), eta)
		}
		return
	}
	const width = 30
	full := int(frac * width)
	bar := strings.Repeat("█", full) + strings.Repeat("░", width-full)
	fmt.Fprintf(p.w, "\r%s [%s] %3.0f%%  %s/%s events  %s/s  ETA %s\x1b[K", p.label, bar, 100*frac, Group(done), Group(p.total), Group(int64(rate)), eta)
	if final {
		fmt.Fprintf(p.w, "\r%s: %s events in %s (%s events/s)\x1b[K\n", p.label, Group(done), elapsed.Round(time.Millisecond), Group(int64(rate)))
	}
}

// Group formats n with thousands separators: 1,234,567.
func Group(n int64) string {
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

// Plural writes n things, in the singular for one.
func Plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// IsTerminal reports whether w is a terminal, for choosing between
// interactive and plain output.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// NewLogger returns the logger for format: text for a person at a
// terminal, JSON for a log collector; auto picks by whether w is a
// terminal. level is the least severe level logged.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if IsTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Table returns a printer of rows under header, a line of tab-separated
// columns, each row printed with format and its fields, the columns
// aligned.
func Table[R any](header, format string, fields func(R) []any) func(io.Writer, []R) error {
	return func(w io.Writer, rows []R) error {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		for _, r := range rows {
			fmt.Fprintf(tw, format, fields(r)...)
		}
		return tw.Flush()
	}
}

// Printed returns a printer of v with format and its fields.
func Printed[T any](format string, fields func(T) []any) func(io.Writer, T) error {
	return func(w io.Writer, v T) error {
		fmt.Fprintf(w, format, fields(v)...)
		return nil
	}
}
