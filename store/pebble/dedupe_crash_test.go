package pebble

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// The dedupe index's crash tests: a child process (this test binary, run
// as crashChild) ingests into a store from two workers at once while the
// index grows, expires a day, writes runs and checkpoints, and dies in the
// middle of that maintenance, at a named step or at a random moment by
// SIGKILL. The parent then reopens the store, sends every batch again, and
// checks against its own oracle that no acknowledged event was lost or can
// be counted twice.

const (
	crashDirEnv   = "USAGED_INDEX_CRASH_DIR"
	crashStepEnv  = "USAGED_INDEX_CRASH_STEP" // step:occurrence, or "" for none
	crashStartEnv = "USAGED_INDEX_CRASH_START"
	crashBatches  = 400 // batches a child sends at most
	crashPerBatch = 200
	crashRetried  = 30 // events of the batch before that each batch repeats
	crashOld      = 600
	crashWorkers  = 2 // so that one batch is built while another is applied
)

// crashNow is the time the events are placed around; children and parent
// share it through the day so that "recent" and "old" mean the same.
var crashNow = time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)

// crashBatch returns batch n: crashPerBatch new events of the last day, and
// the last crashRetried events of batch n-1 again, as a client retrying.
func crashBatch(n int) []usage.Event {
	var evs []usage.Event
	add := func(seq int) {
		evs = append(evs, usage.Event{
			ID: "ev-" + strconv.Itoa(seq), Time: crashNow.Add(-time.Duration(seq%7200) * time.Second),
			OrganizationID: "org", ClientID: "c" + strconv.Itoa(seq%5), ClientName: "Client",
			TemplateURI: "api/v2/items/{id}", HTTPMethod: "GET", Status: 200,
		})
	}
	if n > 0 {
		for seq := n*crashPerBatch - crashRetried; seq < n*crashPerBatch; seq++ {
			add(seq)
		}
	}
	for seq := n * crashPerBatch; seq < (n+1)*crashPerBatch; seq++ {
		add(seq)
	}
	return evs
}

// crashOldEvents are events ten days old, which the child's expiry forgets.
func crashOldEvents() []usage.Event {
	evs := make([]usage.Event, crashOld)
	for i := range evs {
		evs[i] = usage.Event{
			ID: "old-" + strconv.Itoa(i), Time: crashNow.Add(-10*24*time.Hour - time.Duration(i)*time.Second),
			OrganizationID: "org", ClientID: "c0", TemplateURI: "api/v2/items", HTTPMethod: "POST", Status: 201,
		}
	}
	return evs
}

func crashWindow() time.Time { return crashNow.Add(-30 * 24 * time.Hour) }

// TestCrashChild is the child's body; it only runs when the parent asks.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child of TestIndexCrash")
	}
	minCheckpointRecords = 1000
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	var armed bool
	if step, occ, ok := strings.Cut(os.Getenv(crashStepEnv), ":"); ok {
		want, _ := strconv.Atoi(occ)
		seen := 0
		hook = func(s string) {
			if armed && s == step {
				if seen++; seen == want {
					os.Exit(86) // as if killed: nothing after the step runs
				}
			}
		}
	}
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024, RunRecords: 700})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var outMu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(out, format, args...)
		out.Flush()
	}
	if start == 0 {
		if _, err := d.Append(t.Context(), crashOldEvents(), crashWindow()); err != nil {
			fmt.Println("append:", err)
			os.Exit(1)
		}
	}
	armed = true
	var next atomic.Int64
	next.Store(int64(start))
	var wg sync.WaitGroup
	for range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1)) - 1
				if n >= start+crashBatches {
					return
				}
				if n == start+5 {
					// Forget the old events' day: a refill at the first chance.
					if err := d.ExpireDedupe(t.Context(), crashNow.Add(-5*24*time.Hour)); err != nil {
						say("expire: %v\n", err)
						os.Exit(1)
					}
				}
				say("sending %d\n", n)
				if _, err := d.Append(t.Context(), crashBatch(n), crashWindow()); err != nil {
					say("append: %v\n", err)
					os.Exit(1)
				}
				say("acked %d\n", n)
			}
		}()
	}
	wg.Wait()
	d.Close()
	os.Exit(0)
}

func TestIndexCrash(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs child processes")
	}
	f := func(name string, steps ...string) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sent := 0 // batches sent so far, acknowledged or not
			acked := map[int]bool{}
			for _, step := range steps {
				var err error
				if sent, err = runCrashChild(t, dir, step, sent, acked); err != nil {
					t.Fatal(err)
				}
			}
			checkCrashStore(t, dir, acked, sent)
		})
	}
	f("a refill's scan", "refill-chunk:1", "refill-chunk:3", "")
	f("a refill's swap", "refill-swapped:1", "refill-swapped:2", "")
	f("a checkpoint's file", "checkpoint-written:1", "checkpoint-written:4", "")
	f("a checkpoint recorded", "checkpoint-recorded:1", "checkpoint-recorded:3", "")
	f("a run's table", "run-written:1", "run-written:3", "")
	f("a run ingested", "run-ingested:1", "run-ingested:2", "")
	f("a run recorded", "run-recorded:1", "run-recorded:4", "")
	f("random kills", "kill", "kill", "kill", "kill", "")
	// A clean close trims the whole log; what is logged after the restart
	// must still be replayed after a crash.
	f("a crash after a clean restart", "", "checkpoint-written:1", "run-ingested:1", "")
}

// runCrashChild runs a child on dir from batch start until it dies at step
// ("kill": SIGKILL after a random time; "": it ends cleanly), adds the
// batches it acknowledged to acked, and returns the number of batches sent
// so far: those it began to send may have been committed without an
// acknowledgement.
func runCrashChild(t *testing.T, dir, step string, start int, acked map[int]bool) (int, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(start))
	if step != "kill" {
		cmd.Env = append(cmd.Env, crashStepEnv+"="+step)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	if step == "kill" {
		time.AfterFunc(time.Duration(200+rand.IntN(800))*time.Millisecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
	}
	sent, n := start, 0
	var other []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			b, _ := strconv.Atoi(v)
			acked[b] = true
			n++
		} else if v, ok := strings.CutPrefix(sc.Text(), "sending "); ok {
			b, _ := strconv.Atoi(v)
			sent = max(sent, b+1)
		} else {
			other = append(other, sc.Text())
		}
	}
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	switch {
	case step == "" && err != nil, step != "" && step != "kill" && code != 86:
		return sent, fmt.Errorf("child at %q: %v (exit %d), output %q", step, err, code, other)
	}
	t.Logf("child at %q: %d of batches %d to %d acknowledged", step, n, start, sent-1)
	return sent, nil
}

// checkCrashStore reopens dir and checks it against the oracle: every
// event of the acknowledged batches is there once (none comes back Accepted), and
// after sending every batch again the store counts each distinct event
// once.
func checkCrashStore(t *testing.T, dir string, acked map[int]bool, sent int) {
	t.Helper()
	if len(acked) < 20 {
		t.Fatalf("only %d batches acknowledged: the children did not get far enough to test anything", len(acked))
	}
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for n := 0; n < sent; n++ {
		evs := crashBatch(n)
		outs, err := d.Append(t.Context(), evs, crashWindow())
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs {
			if acked[n] && o != usage.Duplicate {
				t.Fatalf("batch %d, acknowledged, event %s: %v on its retry, want Duplicate", n, evs[i].ID, o)
			}
		}
	}
	// The oracle: the distinct ids sent, counted by hand.
	distinct := map[string]bool{}
	for n := 0; n < sent; n++ {
		for _, e := range crashBatch(n) {
			distinct[e.ID] = true
		}
	}
	want := int64(len(distinct) + crashOld)
	rows, err := d.Query(t.Context(), usage.Query{
		OrganizationID: "org", Granularity: usage.GranularityNone, MaxRows: 10,
		Interval: usage.Interval{Start: crashNow.Add(-60 * 24 * time.Hour), End: crashNow.Add(24 * time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	for _, r := range rows {
		got += r.Requests
	}
	if got != want {
		t.Fatalf("%d requests counted, want %d (%d distinct events of %d batches, %d old)", got, want, len(distinct), sent, crashOld)
	}
}
