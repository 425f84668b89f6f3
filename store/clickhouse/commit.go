package clickhouse

// The keeper's record of a batch, /usaged/DATABASE/batches/<id>, is the
// decision on it: created "committed|<deadline ms>|<min hour>|<max hour>|<kind>|<expiry ms>"
// by its owner (step 3), expiry being when the last of its claims expires, or "aborted" by a node that found the batch's
// claims pending past its deadline, or by its owner when it fails before
// committing. Whoever creates it first decides. A committed record is
// deleted once its batch is settled; aborted ones are kept, so that a paused
// owner waking up cannot commit after all, until the sweeper deletes them.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/redis/go-redis/v9"
)

// record is a batch's record in the keeper.
type record struct {
	committed        bool
	deadline         int64 // Unix ms
	minHour, maxHour int64 // Unix s, of the batch's journal rows
	kind             byte  // 'e' events, 'a' activity
	expiry           int64 // Unix ms: when the last of the batch's claims expires, and its mark
	czxid            int64 // the create's zxid: orders committed batches
	ctime            int64 // Unix ms of the create
}

const abortedRecord = "aborted"

func (r record) data() []byte {
	return fmt.Appendf(nil, "committed|%d|%d|%d|%c|%d", r.deadline, r.minHour, r.maxHour, r.kind, r.expiry)
}

func parseRecord(data []byte, st *zk.Stat) (record, error) {
	r := record{czxid: st.Czxid, ctime: st.Ctime}
	if string(data) == abortedRecord {
		return r, nil
	}
	// A record without expiry is a batch of a usaged from before the marks:
	// its mark is kept for good (see mark).
	parts := strings.Split(string(data), "|")
	if len(parts) == 5 {
		parts = append(parts, "0")
	}
	if len(parts) != 6 || parts[0] != "committed" || len(parts[4]) != 1 {
		return r, fmt.Errorf("batch record %q: want committed|deadline|min hour|max hour|kind|expiry or aborted", data)
	}
	var err [4]error
	r.deadline, err[0] = strconv.ParseInt(parts[1], 10, 64)
	r.minHour, err[1] = strconv.ParseInt(parts[2], 10, 64)
	r.maxHour, err[2] = strconv.ParseInt(parts[3], 10, 64)
	r.expiry, err[3] = strconv.ParseInt(parts[5], 10, 64)
	r.committed, r.kind = true, parts[4][0]
	if e := errors.Join(err[:]...); e != nil {
		return r, fmt.Errorf("batch record %q: %w", data, e)
	}
	return r, nil
}

func (s *Store) recordPath(batch string) string { return s.root + "/batches/" + batch }

// readRecord returns the record of batch, and false when there is none.
func (s *Store) readRecord(batch string) (record, bool, error) {
	data, st, err := s.keeper.Get(s.recordPath(batch))
	if errors.Is(err, zk.ErrNoNode) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, unavailable(err, "keeper %v: batch %s", s.cfg.Keeper, batch)
	}
	r, err := parseRecord(data, st)
	return r, true, err
}

// errAborted fails the calls of a batch that another node aborted before
// it could commit: it was slower than its lease. The client retries.
var errAborted = errors.New("the batch was aborted by another node: it did not commit within its lease")

// decide creates the record of batch with data, unless one exists, and
// returns the record that stands: data's, or the one another node created
// first. A create whose outcome is unknown (the connection dropped) is
// tried again: the record then exists or does not, either way decided.
// created is true when this create made the record; gone is true when
// the record vanished as soon as created: only a committed batch's record
// is deleted, once the batch is settled.
func (s *Store) decide(ctx context.Context, batch string, data []byte) (r record, created, gone bool, err error) {
	path := s.recordPath(batch)
	for attempt := 0; ; attempt++ {
		_, err := s.keeper.Create(path, data, 0, zk.WorldACL(zk.PermAll))
		if err == nil || errors.Is(err, zk.ErrNodeExists) {
			r, ok, rerr := s.readRecord(batch)
			return r, err == nil, rerr == nil && !ok, rerr
		}
		if attempt == 3 || ctx.Err() != nil {
			return record{}, false, false, unavailable(err, "keeper %v: record of batch %s", s.cfg.Keeper, batch)
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
}

// commit is step 3: it creates b's record as committed and returns it; a
// batch another node aborted first fails with errAborted. settled is true
// when a recovery has already finished the batch, a slow owner's.
func (s *Store) commit(ctx context.Context, b *batch, minHour, maxHour int64) (r record, settled bool, err error) {
	want := record{committed: true, deadline: b.deadline, minHour: minHour, maxHour: maxHour, kind: b.kind}
	for i := range b.items {
		want.expiry = max(want.expiry, b.items[i].claim.expiry)
	}
	r, _, settled, err = s.decide(ctx, b.id, want.data())
	if err != nil {
		return r, false, err
	}
	if !settled && !r.committed {
		s.stats.failed.Add(1)
		s.cfg.logger().Warn("a batch outlived its lease and another node aborted it: its calls fail and their clients retry",
			"batch", b.id, "lease", s.cfg.Lease)
		return r, false, unavailable(errAborted, "batch %s", b.id)
	}
	s.stats.committed.Add(1)
	return r, settled, nil
}

// abortOwn aborts b, which failed before committing, and releases its
// claims, so that a retry need not wait for b's deadline. It does nothing
// when b's fate is unknown (the keeper did not answer): then b's claims wait
// for their deadline, when another node aborts b.
func (s *Store) abortOwn(b *batch) {
	s.stats.failed.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, _, gone, err := s.decide(ctx, b.id, []byte(abortedRecord))
	if err != nil || gone || r.committed {
		return
	}
	mine := make([]claim, 0, len(b.items))
	for i := range b.items {
		if b.items[i].state == itemNew {
			mine = append(mine, b.items[i].claim)
		}
	}
	_ = s.release(ctx, b.id, mine)
}

// woundAfter: an older batch waits for a younger one's decision a
// woundAfter-th of the lease before aborting it.
const woundAfter = 5

// resolve settles the items of b that were claimed CONTENDED (pending for
// other batches), through those batches' records: each becomes new or dup.
func (s *Store) resolve(ctx context.Context, b *batch, contended []int) error {
	for len(contended) > 0 {
		s.stats.contended.Add(int64(len(contended)))
		groups := map[string][]int{}
		for _, i := range contended {
			groups[b.items[i].pending] = append(groups[b.items[i].pending], i)
		}
		// Group by the whole pending value, whose batch fixes the deadline
		// too; the owners are settled at once, each wait in parallel.
		var (
			mu    sync.Mutex
			retry []int
			errs  []error
			wg    sync.WaitGroup
		)
		for pending, idx := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				again, err := s.settleWith(ctx, b, pending, idx)
				mu.Lock()
				retry, errs = append(retry, again...), append(errs, err)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		var err error
		if contended, err = s.claimItems(ctx, b, retry); err != nil {
			return err
		}
	}
	return nil
}

// settleWith settles the items idx of b, all pending with the same value
// for another batch, and returns those whose claim changed meanwhile: they
// are to be claimed again.
func (s *Store) settleWith(ctx context.Context, b *batch, pending string, idx []int) (retry []int, err error) {
	owner, deadline, ok := pendingValue(pending)
	if !ok {
		return nil, fmt.Errorf("claims: malformed pending claim %q", pending)
	}
	// Wait for the owner's decision until its deadline; but an older batch
	// waits for a younger one only a while (woundAfter), then aborts it:
	// were the younger one waiting for a key of the older, neither would
	// move until a deadline, and both would then abort each other.
	waitUntil := deadline
	if !s.cfg.Unsafe && (b.deadline < deadline || b.deadline == deadline && b.id < owner) {
		waitUntil = min(deadline, time.Now().Add(s.cfg.Lease/woundAfter).UnixMilli())
	}
	waited := false
	for {
		now := time.Now().UnixMilli()
		var r record
		exists := false
		if !s.cfg.Unsafe {
			if r, exists, err = s.readRecord(owner); err != nil {
				return nil, err
			}
		}
		switch {
		case exists && r.committed:
			for _, i := range idx {
				b.items[i].state = itemDup
			}
			if now-r.ctime > s.cfg.Lease.Milliseconds() {
				s.kickSweeper()
			}
			return nil, nil
		case exists || s.cfg.Unsafe && now >= deadline:
			// Aborted (or, unsafely, past its deadline): take the keys
			// over from exactly the value seen.
			cs, olds := make([]claim, len(idx)), make([]string, len(idx))
			for j, i := range idx {
				cs[j], olds[j] = b.items[i].claim, pending
			}
			took, gen, err := s.take(ctx, b.id, b.deadline, owner, cs, olds)
			if err != nil {
				return nil, err
			}
			for j, i := range idx {
				if took[j] {
					b.items[i].state, b.items[i].gen = itemNew, gen
				} else {
					retry = append(retry, i)
				}
			}
			return retry, nil
		case now < waitUntil:
			if !waited {
				s.stats.waits.Add(1)
				waited = true
			}
			select {
			case <-time.After(time.Duration(min(20, waitUntil-now)) * time.Millisecond):
			case <-ctx.Done():
				return nil, unavailable(ctx.Err(), "waiting for batch %s", owner)
			}
			if idx, retry, err = s.changed(ctx, b, pending, idx, retry); err != nil || len(idx) == 0 {
				return retry, err
			}
		default:
			// Past its deadline (or a younger batch past the wait) with
			// no record: abort it, unless it has settled the keys and
			// deleted its record since they were read. Should its owner
			// commit just before the abort, the record read next says so.
			if idx, retry, err = s.changed(ctx, b, pending, idx, retry); err != nil || len(idx) == 0 {
				return retry, err
			}
			if _, created, _, err := s.decide(ctx, owner, []byte(abortedRecord)); err != nil {
				return nil, err
			} else if created {
				s.stats.aborted.Add(1)
			}
		}
	}
}

// changed re-reads the claims of items idx, pending with value pending,
// and the mark of their batch, and moves to retry those whose value
// changed, or all of them if the batch has settled.
func (s *Store) changed(ctx context.Context, b *batch, pending string, idx, retry []int) (same, _ []int, err error) {
	owner, _, _ := pendingValue(pending)
	pipe := s.claims.Pipeline()
	vals := make([]*redis.StringCmd, len(idx))
	for j, i := range idx {
		c := &b.items[i].claim
		vals[j] = pipe.HGet(ctx, c.key(c.gen), c.field)
	}
	mark := pipe.Exists(ctx, s.markKey(owner))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, unavailable(err, "claims: read")
	}
	settled := mark.Val() == 1
	for j, i := range idx {
		if v, err := vals[j].Result(); err == nil && v == pending && !settled {
			same = append(same, i)
		} else {
			retry = append(retry, i)
		}
	}
	return same, retry, nil
}
