package enforce

import (
	"time"

	"github.com/usaged/usaged/usage"
)

// rolling is where a rolling window stands here. usaged's values of a
// rolling window fall as minutes leave it, so unlike a calendar window's
// they are taken as they come, not raised to; and what this process
// admitted is kept by minute, so that it leaves the window as usaged's
// count of it does. The value is the greater of usaged's last value with
// what was admitted since, and what was admitted here in the window: one
// process in front of a limit therefore never lets it be passed, however
// late usaged's values are.
type rolling struct {
	span    int64             // the window's minutes
	own     map[int64]float64 // admitted here, by Unix minute
	ownSum  float64           // of own
	last    float64           // usaged's last value
	lastAt  int64             // the minute of the window last is of; -1 for none
	since   float64           // admitted here since last came
	current int64             // the latest minute value was asked for
}

func newRolling(minutes int) *rolling {
	return &rolling{span: int64(minutes), own: map[int64]float64{}, lastAt: -1}
}

// heard takes usaged's value v of the window iv, unless it knows a later
// one.
func (r *rolling) heard(iv usage.Interval, v float64) {
	if m := usage.UnixMinute(iv.End) - 1; m >= r.lastAt {
		r.last, r.lastAt, r.since = v, m, 0
	}
}

func (r *rolling) add(x float64, at time.Time) {
	r.since += x
	if k := usage.UnixMinute(at); k > r.current-r.span { // a request older than the window counts in none
		r.own[k] += x
		r.ownSum += x
	}
}

// value returns the window's value at now. usaged's value of the minute
// before still counts: values only fall as minutes turn, so it bounds the
// present one from above until usaged's of the present minute comes, a
// moment after the turn; one older than that is not used, and the value is
// what was admitted here.
func (r *rolling) value(now time.Time) float64 {
	m := usage.UnixMinute(now)
	if m > r.current {
		// Minutes leave only as the minute turns: the admissions' map is
		// looked through then, not at every request.
		r.current = m
		for k, x := range r.own {
			if k <= m-r.span {
				delete(r.own, k)
				r.ownSum -= x
			}
		}
	}
	if r.lastAt >= m-1 {
		return max(r.last+r.since, r.ownSum)
	}
	return r.ownSum
}

// idle reports whether nothing of r counts at now any longer.
func (r *rolling) idle(now time.Time) bool {
	return r.value(now) == 0 && r.lastAt < usage.UnixMinute(now)-1
}

// rolling returns client's counter of l, a limit of a rolling window,
// made if need be.
func (l *enforced) rolling(client string) *rolling {
	c := l.counters[client]
	if c == nil {
		c = &counter{roll: newRolling(l.limit.Window.Minutes)}
		l.counters[client] = c
	}
	return c.roll
}

// keepOwn carries what was admitted here, counted in old, over to the
// counter of client that replaces it.
func (l *enforced) keepOwn(client string, old *rolling) {
	r := l.rolling(client)
	for k, x := range old.own {
		r.own[k] += x
		r.ownSum += x
	}
	r.current = max(r.current, old.current)
}
