package limiteval

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// stateMap is a store's state of an evaluator, kept by hand.
type stateMap map[string][]byte

func (s stateMap) apply(changes []store.StateChange) {
	for _, c := range changes {
		if c.Value == nil {
			delete(s, string(c.Key))
		} else {
			s[string(c.Key)] = bytes.Clone(c.Value)
		}
	}
}

func (s stateMap) read(prefix []byte, fn func(k, v []byte) error) error {
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if strings.HasPrefix(k, string(prefix)) {
			if err := fn([]byte(k), s[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestRollingMatchesOracle sends random events, late and ahead of the
// clock, in commits to random limits of rolling windows, restarting the
// evaluator from its state twice, and checks every crossing against the
// oracle's own reckoning from the rule the package states: an event counts
// if its minute is in the window when it is accepted; a threshold met is
// armed again when the value, counted by hand, is below it at the first
// event of a later minute; a crossing is named by the window of the minute
// it happened in.
func TestRollingMatchesOracle(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testRolling(t, seed) })
	}
}

func testRolling(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	start := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)
	s := shape{limits: 30, orgs: 2, clients: 4}
	ls := randomLimits(t, rng, start, s)
	for i := range ls {
		l := &ls[i]
		l.Window = usage.Window{Type: usage.WindowRolling, Minutes: []int{1, 2, 5, 17, 60}[rng.IntN(5)], TimeZone: l.Window.TimeZone}
		if l.Metric != usage.LimitErrorRate {
			l.Value = float64(max(1, int(l.Value)/10))
			if l.Metric == usage.LimitResponseBytes {
				l.Value *= 100
			}
		}
		if len(l.Thresholds) == 0 {
			l.Thresholds = []int{100}
		}
		n, err := l.Normalize(start)
		if err != nil {
			t.Fatal(err)
		}
		*l = n
	}
	arrivals := randomArrivals(rng, start, 3000, s)

	state := stateMap{}
	load := func() *Evaluator {
		e := New()
		for _, l := range ls {
			found, changes, err := e.SetRolling(l, arrivals[0].now, state.read)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) > 0 {
				t.Fatalf("a load found %d crossings already notified, the first %+v", len(found), found[0])
			}
			state.apply(changes)
		}
		return e
	}
	e := load()

	// The oracle: per limit and client, the events counted and the
	// thresholds met, and the minute of the last event.
	type tracked struct {
		counted []usage.Event
		met     map[int]bool
		checked int64
	}
	hand := map[string]*tracked{}
	value := func(l *usage.Limit, tr *tracked, m int64) tally {
		var v tally
		for _, ev := range tr.counted {
			if usage.UnixMinute(ev.Time) > m-int64(l.Window.Minutes) {
				v.add(l, &ev)
			}
		}
		return v
	}
	type found struct {
		commit int
		key    crossingKey
		value  float64
	}
	var want, got []found
	commit := 0
	for i := 0; i < len(arrivals); commit++ {
		n := 1 + rng.IntN(12)
		batch := arrivals[i:min(i+n, len(arrivals))]
		i += len(batch)
		now := batch[len(batch)-1].now
		m := usage.UnixMinute(now)
		if commit == 80 || commit == 300 {
			e = load() // a restart, from what the commits wrote
		}
		evs := make([]*usage.Event, len(batch))
		for j := range batch {
			evs[j] = &batch[j].ev
		}
		for _, c := range e.ObserveAll(now, evs, nil) {
			got = append(got, found{commit, keyOf(&c), c.Value})
		}
		state.apply(e.TakeState())
		if rng.IntN(20) == 0 { // a sweep, between commits, changes nothing they find
			state.apply(e.SweepRolling(now))
		}

		for _, ev := range evs {
			for li := range ls {
				l := &ls[li]
				if !handMatch(l, ev) {
					continue
				}
				client := ""
				if l.Scope == usage.ScopeEachClient {
					client = ev.ClientID
				}
				tr := hand[l.ID+"/"+client]
				if tr == nil {
					tr = &tracked{met: map[int]bool{}, checked: m}
					hand[l.ID+"/"+client] = tr
				}
				if tr.checked != m {
					tr.checked = m
					v := value(l, tr, m)
					for p := range tr.met {
						if !handMeets(l, v, p) {
							delete(tr.met, p)
						}
					}
				}
				if usage.UnixMinute(ev.Time) <= m-int64(l.Window.Minutes) {
					continue
				}
				tr.counted = append(tr.counted, *ev)
				v := value(l, tr, m)
				for _, p := range l.Thresholds {
					if !tr.met[p] && handMeets(l, v, p) {
						tr.met[p] = true
						windowStart := (m - int64(l.Window.Minutes) + 1) * 60
						want = append(want, found{commit, crossingKey{l.ID, windowStart, client, p}, handValue(l, v)})
					}
				}
			}
		}
	}
	order := func(a, b found) int {
		if a.commit != b.commit {
			return a.commit - b.commit
		}
		return strings.Compare(fmt.Sprint(a.key), fmt.Sprint(b.key))
	}
	slices.SortFunc(want, order)
	slices.SortFunc(got, order)
	if len(want) < 50 {
		t.Fatalf("only %d crossings: the test does not test much", len(want))
	}
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(want):
			t.Fatalf("crossing %d: got %+v, want none more (of %d)", i, got[i], len(want))
		case i >= len(got):
			t.Fatalf("crossing %d: want %+v, got none more (of %d)", i, want[i], len(got))
		case got[i] != want[i]:
			t.Fatalf("crossing %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	t.Logf("%d crossings over %d commits; %d state keys", len(want), commit, len(state))

	// A day later every window is empty: a sweep leaves no state.
	state.apply(e.SweepRolling(arrivals[len(arrivals)-1].now.Add(25 * time.Hour)))
	if len(state) != 0 {
		t.Errorf("%d state keys left a day later, such as %q", len(state), slices.Sorted(maps.Keys(state))[0])
	}
}

// TestRollingOrphanedState checks that a load deletes the state of rolling
// limits it was not given (deleted before a crash let the store forget
// them), and keeps the state of those it was.
func TestRollingOrphanedState(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 30, 0, time.UTC)
	state := stateMap{}
	mk := func(id string) usage.Limit {
		return usage.Limit{ID: id, OrganizationID: "o", Name: id, Metric: usage.LimitRequests,
			Window: usage.Window{Type: usage.WindowRolling, Minutes: 10}, Value: 100, Thresholds: []int{1}, Version: 1}
	}
	e := New()
	for _, id := range []string{"a", "ab", "b"} { // "a" is a prefix of "ab"
		if _, changes, err := e.SetRolling(mk(id), now, state.read); err != nil {
			t.Fatal(err)
		} else {
			state.apply(changes)
		}
	}
	e.ObserveAll(now, []*usage.Event{{ID: "1", OrganizationID: "o", ClientID: "c", Time: now, Status: 200}}, nil)
	state.apply(e.TakeState())
	if len(state) != 6 { // a minute and marks each
		t.Fatalf("%d state keys, want 6", len(state))
	}
	e = New()
	if _, _, err := e.SetRolling(mk("a"), now, state.read); err != nil {
		t.Fatal(err)
	}
	orphans, err := e.orphanedState(state.read)
	if err != nil {
		t.Fatal(err)
	}
	state.apply(orphans)
	for k := range state {
		if p, _ := limitPrefixOf([]byte(k)); string(p) != string(rollingPrefix(&usage.Limit{OrganizationID: "o", ID: "a"}, false)) {
			t.Errorf("key %q of a limit not loaded is left", k)
		}
	}
	if len(state) != 2 {
		t.Errorf("%d keys left, want limit a's 2", len(state))
	}
}

// TestRollingNewVersion checks that a new version of a rolling limit keeps
// counting the minutes of its rule, notifies at once the thresholds it
// meets, and that a new version the evaluator never saw (stored, then a
// crash) is notified at the next load, once; and that a changed rule
// starts counting anew.
func TestRollingNewVersion(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 30, 0, time.UTC)
	l := usage.Limit{ID: "lim", OrganizationID: "o", Name: "l", Metric: usage.LimitRequests,
		Window: usage.Window{Type: usage.WindowRolling, Minutes: 10}, Value: 100, Thresholds: []int{50, 100}, Version: 1}
	state := stateMap{}
	set := func(e *Evaluator, l usage.Limit) []int {
		t.Helper()
		found, changes, err := e.SetRolling(l, now, state.read)
		if err != nil {
			t.Fatal(err)
		}
		state.apply(changes)
		var ps []int
		for _, c := range found {
			ps = append(ps, c.Threshold)
		}
		return ps
	}
	e := New()
	set(e, l)
	var evs []*usage.Event
	for i := range 30 {
		evs = append(evs, &usage.Event{ID: fmt.Sprint(i), OrganizationID: "o", ClientID: "c", Time: now.Add(-time.Duration(i) * time.Minute / 4), Status: 200})
	}
	if found := e.ObserveAll(now, evs, nil); len(found) != 0 {
		t.Fatalf("30 of 100: %d crossings", len(found))
	}
	state.apply(e.TakeState())
	l.Version, l.Value = 2, 40 // 30 of 40 is 75 %
	if ps := set(e, l); !slices.Equal(ps, []int{50}) {
		t.Errorf("version 2 at once: thresholds %v, want [50]", ps)
	}
	if ps := set(New(), l); len(ps) != 0 {
		t.Errorf("version 2 reloaded: thresholds %v, want none", ps)
	}
	l.Version, l.Value = 3, 30 // stored, then a crash: never set
	if ps := set(New(), l); !slices.Equal(ps, []int{50, 100}) {
		t.Errorf("version 3 at the load after a crash: thresholds %v, want [50 100]", ps)
	}
	if ps := set(New(), l); len(ps) != 0 {
		t.Errorf("version 3 reloaded: thresholds %v, want none", ps)
	}
	st, err := e.RollingStatus(&l, now)
	if err != nil || st.Value != 30 {
		t.Errorf("status of version 3: %v, %v; want 30", st.Value, err)
	}
	l.Version, l.Filter.HTTPMethods = 4, []string{"POST"} // another rule
	if ps := set(e, l); len(ps) != 0 {
		t.Errorf("a new rule: thresholds %v, want none", ps)
	}
	if st, _ := e.RollingStatus(&l, now); st.Value != 0 {
		t.Errorf("status of a new rule: %v, want 0", st.Value)
	}
	for k := range state {
		if !strings.HasPrefix(k, string(rollingPrefix(&l, true))) {
			t.Errorf("state key %q of the old rule is left", k)
		}
	}
}
