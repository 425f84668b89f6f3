package pebble

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// pebbleLogger routes Pebble's own log lines through slog, at most once per
// repeatWindow for each distinct line: Pebble retries failing background
// work (a flush on a full disk, a compaction out of file descriptors) in a
// tight loop and logs every attempt, thousands of lines a second that would
// fill the disk they complain about. The first occurrence is logged; the
// repeats are counted and reported in one line per window.
type pebbleLogger struct {
	l      *slog.Logger
	health *health
	rep    *repeats
}

func newPebbleLogger(l *slog.Logger, h *health) pebbleLogger {
	return pebbleLogger{l: l, health: h, rep: newRepeats(repeatWindow, time.Now)}
}

// repeatWindow is how long repeats of a line are counted before a summary.
const repeatWindow = time.Minute

func (p pebbleLogger) Infof(format string, args ...any) {
	p.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.log(slog.LevelError, fmt.Sprintf(format, args...))
}

// Fatalf is never rate-limited, and never returns (see health.go).
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "fatal", true)
	p.health.fatal(msg)
}

func (p pebbleLogger) log(level slog.Level, msg string) {
	if !p.l.Enabled(context.Background(), level) {
		return
	}
	first, ended := p.rep.see(level, msg)
	for _, s := range ended {
		p.summarize(s)
	}
	if first {
		p.l.Log(context.Background(), level, msg)
	}
}

// flush reports the repeats counted so far; Close calls it.
func (p pebbleLogger) flush() {
	for _, s := range p.rep.drain() {
		p.summarize(s)
	}
}

func (p pebbleLogger) summarize(s summary) {
	p.l.Log(context.Background(), s.level, fmt.Sprintf("%s [repeated %d times in the last %s]", s.msg, s.n, s.in.Round(time.Second)), "repeated", s.n)
}

// repeats counts repeated log lines. Two lines are the same when they differ
// only in their digits (file numbers, offsets, job ids, durations), which is
// how one failing operation's retries differ.
type repeats struct {
	mu     sync.Mutex
	window time.Duration
	now    func() time.Time
	lines  map[repeatKey]*repeat
	swept  time.Time
}

type repeatKey struct {
	level slog.Level
	norm  string
}

type repeat struct {
	msg   string // the first occurrence, as logged
	since time.Time
	n     int // repeats suppressed since
}

// summary is the line that reports n suppressed repeats of msg.
type summary struct {
	level slog.Level
	msg   string
	n     int
	in    time.Duration
}

// maxRepeatLines bounds the lines tracked at once; past it, the oldest
// window is cut short rather than memory growing with distinct lines.
const maxRepeatLines = 1024

func newRepeats(window time.Duration, now func() time.Time) *repeats {
	return &repeats{window: window, now: now, lines: make(map[repeatKey]*repeat)}
}

// see records one occurrence of msg and reports whether to log it: when no
// identical line was logged in the current window. It also returns the
// summaries of windows that have ended, to be logged before it.
func (r *repeats) see(level slog.Level, msg string) (first bool, ended []summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var out []summary
	if now.Sub(r.swept) >= r.window || len(r.lines) >= maxRepeatLines {
		out = r.sweep(now, len(r.lines) >= maxRepeatLines)
	}
	k := repeatKey{level, normalize(msg)}
	if l, ok := r.lines[k]; ok {
		l.n++
		return false, out
	}
	r.lines[k] = &repeat{msg: msg, since: now}
	return true, out
}

// sweep ends the windows that are over (all of them if all is set),
// returning the summaries of those with repeats.
func (r *repeats) sweep(now time.Time, all bool) []summary {
	r.swept = now
	var out []summary
	for k, l := range r.lines {
		if !all && now.Sub(l.since) < r.window {
			continue
		}
		if l.n > 0 {
			out = append(out, summary{k.level, l.msg, l.n, now.Sub(l.since)})
		}
		delete(r.lines, k)
	}
	return out
}

// drain ends every window.
func (r *repeats) drain() []summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sweep(r.now(), true)
}

// normalize replaces each run of digits in s with one '#'.
func normalize(s string) string {
	b := make([]byte, 0, len(s))
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if !digits {
				b = append(b, '#')
			}
			digits = true
			continue
		}
		digits = false
		b = append(b, c)
	}
	return string(b)
}
