package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

var (
	_ store.EventAppender    = (*Store)(nil)
	_ store.ActivityAppender = (*Store)(nil)
)

// maxBatch bounds the events of one batch; a larger call is split.
const maxBatch = 100_000

// batchesInFlight is how many batches of each kind a node runs at once:
// while one waits for its quorum inserts, the next claims its keys.
const batchesInFlight = 4

// settlesInFlight bounds the batches answered and still settling.
const settlesInFlight = 8

// batchTimeout bounds one batch's run, and one sweep; Close ends them
// sooner. A batch that stops after committing is finished by a recovery.
const batchTimeout = 5 * time.Minute

var errClosed = errors.New("clickhouse store: closed")

// call is one part (at most maxBatch events) of an Append or
// AppendActivity call, waiting for the batch it is gathered into.
type call struct {
	kind    byte // 'e' events, 'a' activity
	events  []usage.Event
	service usage.GUID
	acts    []usage.Activity
	from    time.Time
	outs    []usage.Outcome // one per event, filled by the batch
	done    chan error      // the batch's result, sent once
}

func (c *call) len() int { return len(c.events) + len(c.acts) }

// batch is one run of the protocol over the calls a node gathered.
type batch struct {
	id       string
	kind     byte
	deadline int64 // Unix ms: the lease of its claims ends then
	calls    []*call
	items    []item // the keys offered, each once (the first occurrence)
}

// item is one event of a batch and the state of its claim.
type item struct {
	claim
	call    *call
	i       int // the event's index in its call
	state   itemState
	pending string // the claim of the other batch, while itemContended
}

type itemState uint8

const (
	itemNew       itemState = iota // claimed by the batch: accepted if it commits
	itemDup                        // a duplicate
	itemContended                  // pending for another batch, to be settled
)

// Append implements store.EventAppender: the events are gathered with the
// node's concurrent calls into batches, each written through the protocol
// of the package doc.
func (s *Store) Append(ctx context.Context, events []usage.Event, dedupeFrom time.Time) ([]usage.Outcome, error) {
	outs := make([]usage.Outcome, len(events))
	var calls []*call
	for lo := 0; lo < len(events); lo += maxBatch {
		hi := min(lo+maxBatch, len(events))
		calls = append(calls, &call{kind: 'e', events: events[lo:hi], from: dedupeFrom, outs: outs[lo:hi]})
	}
	return outs, s.submit(ctx, s.eventCalls, calls)
}

// AppendActivity implements store.ActivityAppender, as Append does.
func (s *Store) AppendActivity(ctx context.Context, service usage.GUID, events []usage.Activity, dedupeFrom time.Time) ([]usage.Outcome, error) {
	outs := make([]usage.Outcome, len(events))
	var calls []*call
	for lo := 0; lo < len(events); lo += maxBatch {
		hi := min(lo+maxBatch, len(events))
		calls = append(calls, &call{kind: 'a', service: service, acts: events[lo:hi], from: dedupeFrom, outs: outs[lo:hi]})
	}
	return outs, s.submit(ctx, s.activityCalls, calls)
}

// submit hands calls to the gatherer of their kind and waits for their
// batches. An event repeated in two parts of one call is a Duplicate in
// the later part, through its claim.
func (s *Store) submit(ctx context.Context, to chan<- *call, calls []*call) error {
	for _, c := range calls {
		c.done = make(chan error, 1)
		select {
		case to <- c:
		case <-s.life.Done():
			return errClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var errs []error
	for _, c := range calls {
		select {
		case err := <-c.done:
			errs = append(errs, err)
		case <-s.life.Done():
			return errClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// gather is the group committer of one kind: it gathers the calls that
// arrive within cfg.GroupCommit of the first into a batch of at most
// maxBatch events, and runs up to batchesInFlight batches at once.
func (s *Store) gather(kind byte, in <-chan *call) {
	defer s.wg.Done()
	slots := make(chan struct{}, batchesInFlight)
	var next *call
	for {
		if next == nil {
			select {
			case next = <-in:
			case <-s.life.Done():
				return
			}
		}
		calls, n := []*call{next}, next.len()
		next = nil
		timer := time.NewTimer(s.cfg.GroupCommit)
	gathering:
		for n < maxBatch {
			select {
			case c := <-in:
				if n+c.len() > maxBatch {
					next = c
					break gathering
				}
				calls, n = append(calls, c), n+c.len()
			case <-timer.C:
				break gathering
			case <-s.life.Done():
				timer.Stop()
				return
			}
		}
		timer.Stop()
		select {
		case slots <- struct{}{}:
		case <-s.life.Done():
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-slots }()
			err := s.write(kind, calls)
			for _, c := range calls {
				c.done <- err
			}
		}()
	}
}

// newBatch returns the batch of calls, with its items: every event's key,
// each once, the later occurrences already Duplicate.
func (s *Store) newBatch(kind byte, calls []*call) *batch {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	b := &batch{id: hex.EncodeToString(id), kind: kind, calls: calls}
	now := time.Now()
	n := 0
	for _, c := range calls {
		n += c.len()
	}
	seen := make(map[string]bool, n)
	b.items = make([]item, 0, n)
	for _, c := range calls {
		from := c.from.Truncate(time.Hour)
		scope := c.service.String()
		for i := range c.len() {
			var id string
			var t time.Time
			if kind == 'e' {
				scope, id, t = c.events[i].OrganizationID, c.events[i].ID, c.events[i].Time
			} else {
				id, t = c.acts[i].ID, c.acts[i].Time
			}
			cl := s.idClaim(kind, scope, id)
			if seen[cl.id()] {
				c.outs[i] = usage.Duplicate
				continue
			}
			seen[cl.id()] = true
			hour := t.Truncate(time.Hour)
			cl.hour, cl.from, cl.expiry = hour.Unix(), from.Unix(), claimExpiry(hour, c.from, now)
			b.items = append(b.items, item{call: c, i: i, claim: cl})
		}
	}
	return b
}

// write runs the protocol for a batch of calls and fills their outcomes.
func (s *Store) write(kind byte, calls []*call) error {
	ctx, cancel := context.WithTimeout(s.life, batchTimeout)
	defer cancel()
	b := s.newBatch(kind, calls)
	b.deadline = time.Now().Add(s.cfg.Lease).UnixMilli()

	// 1. claim
	step := time.Now()
	all := make([]int, len(b.items))
	for i := range all {
		all[i] = i
	}
	contended, err := s.claimItems(ctx, b, all)
	if err == nil {
		err = s.resolve(ctx, b, contended)
	}
	if err != nil {
		s.abortOwn(b)
		return err
	}
	step = s.took("claim", step)
	var accepted []*item
	for i := range b.items {
		it := &b.items[i]
		if it.state == itemDup {
			it.call.outs[it.i] = usage.Duplicate
		} else {
			accepted = append(accepted, it)
		}
	}
	if s.failpoint(afterClaim) {
		return errStopped
	}
	if len(accepted) == 0 {
		return nil
	}

	// 2. journal
	var j *journal
	if kind == 'e' {
		j = eventRows(b.id, accepted)
	} else {
		j = activityRows(b.id, accepted)
	}
	if err := s.writeJournal(ctx, j); err != nil {
		s.abortOwn(b)
		return err
	}
	step = s.took("journal", step)
	if s.failpoint(afterJournal) {
		return errStopped
	}

	// 3. commit
	publishBy := time.Now().Add(s.publishWindow())
	minHour, maxHour := j.hours()
	r, settled, err := s.commit(ctx, b, minHour, maxHour)
	if err != nil {
		return err
	}
	step = s.took("commit", step)
	if s.failpoint(afterCommit) {
		return errStopped
	}
	if settled {
		return nil
	}
	if err := s.countLimits(ctx, j, r); err != nil {
		return err // committed: a recovery counts and publishes it
	}
	step = s.took("limits", step)
	if s.failpoint(afterLimits) {
		return errStopped
	}

	// 4. publish
	if err := s.publishWithin(ctx, publishBy, r, j); err != nil {
		return err
	}
	s.took("publish", step)
	// 5. settle, after the calls are answered: what they acknowledge is
	// counted, and the batch's record decides its keys until it is
	// deleted. At most settlesInFlight wait, so that a slow claim store
	// slows the answers rather than letting the waiting settles pile up.
	select {
	case s.settles <- struct{}{}:
	case <-s.life.Done():
		return errClosed
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.settles }()
		start := time.Now()
		if err := s.settle(s.life, j.batch, r); err != nil {
			s.cfg.logger().Warn("settling a published batch failed; the sweeper will", "batch", j.batch, "err", err)
			return
		}
		s.took("settle", start)
	}()
	return nil
}

// claimItems claims the items idx of b, marking each new, dup or
// contended, and returns the contended ones.
func (s *Store) claimItems(ctx context.Context, b *batch, idx []int) (contended []int, err error) {
	if len(idx) == 0 {
		return nil, nil
	}
	cs := make([]claim, len(idx))
	for j, i := range idx {
		cs[j] = b.items[i].claim
	}
	res, err := s.claimAll(ctx, b.id, b.deadline, cs)
	if err != nil {
		return nil, err
	}
	for j, i := range idx {
		it := &b.items[i]
		it.gen = res[j].gen
		switch {
		case res[j].dup:
			it.state = itemDup
		case res[j].pending != "":
			it.state, it.pending = itemContended, res[j].pending
			contended = append(contended, i)
		default:
			it.state = itemNew
		}
	}
	return contended, nil
}

// took records the time a step of a batch took since start, and returns
// now: the next step's start.
func (s *Store) took(step string, start time.Time) time.Time {
	now := time.Now()
	s.steps.WithLabelValues(step).Observe(now.Sub(start).Seconds())
	return now
}

// Stats are counters of the write protocol on one node since Open.
type Stats struct {
	Committed  int64 // batches this node committed
	Failed     int64 // batches of this node that failed before committing, aborted by another node or by itself
	Aborted    int64 // batches this node aborted: undecided past their deadline, or younger ones holding keys it waits for
	Recovered  int64 // committed batches of other (dead or slow) nodes this node finished
	PastWindow int64 // batches this node stopped publishing past their window (see publishWindow)
	Contended  int64 // keys found pending for another batch
	Waits      int64 // waits for another batch's decision before its deadline
}

// stats are the live counters behind Stats.
type stats struct {
	committed, failed, aborted, recovered, pastWindow, contended, waits atomic.Int64
}

// Stats returns the node's counters of the write protocol.
func (s *Store) Stats() Stats {
	return Stats{
		Committed: s.stats.committed.Load(), Failed: s.stats.failed.Load(), Aborted: s.stats.aborted.Load(),
		Recovered: s.stats.recovered.Load(), PastWindow: s.stats.pastWindow.Load(),
		Contended: s.stats.contended.Load(), Waits: s.stats.waits.Load(),
	}
}
