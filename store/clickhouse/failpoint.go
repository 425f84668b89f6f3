package clickhouse

import (
	"errors"
	"os"
	"strings"
	"time"
)

// The steps of the write protocol a failpoint can name (Config.Failpoint).
// Each is passed when the step has finished, before the next begins; the
// last one before the call answers.
const (
	afterClaim     = "after-claim"     // the batch's keys are claimed or settled
	afterJournal   = "after-journal"   // the journal rows are written
	afterCommit    = "after-commit"    // the batch's record is committed
	afterLimits    = "after-limits"    // the batch is counted into the limits, its crossings in the outbox
	afterCounts    = "after-counts"    // the count blocks are written
	afterPublished = "after-published" // the published rows are written
	afterSettle    = "after-settle"    // the batch is marked committed, its record deleted
)

// failpointExit is the exit status of a process stopped at a failpoint.
const failpointExit = 86

// failpoint is passed after each step of the protocol, by a batch's owner
// and by a recovery alike. With Config.Failpoint naming step, the process
// exits at once, as if killed: nothing after the step runs, no deferred
// call, no answer. With "stall-" and step, the batch stops there for three
// leases and then goes on, as a zombie does (a node paused by its
// collector, a frozen VM). Both are for tests of crash safety only.
//
// Tests inside this package may set s.hook instead: it sees every step, may
// block (a paused node), and returns true to stop the batch there as if its
// node had died, without exiting.
func (s *Store) failpoint(step string) (stop bool) {
	if s.hook != nil {
		return s.hook(step)
	}
	switch fp := s.cfg.Failpoint; {
	case fp == step:
		os.Exit(failpointExit)
	case strings.HasPrefix(fp, "stall-") && fp[len("stall-"):] == step:
		time.Sleep(3 * s.cfg.Lease)
	}
	return false
}

// errStopped is what a batch stopped by a test's hook answers.
var errStopped = errors.New("clickhouse store: batch stopped at a failpoint")
