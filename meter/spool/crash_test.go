package spool

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// The helper process: with these set, TestCrashHelper is a spooling proxy
// that the parent kills.
const (
	crashDirEnv = "USAGED_SPOOL_CRASH_DIR"
	crashNEnv   = "USAGED_SPOOL_CRASH_N"
)

// TestCrashHelper runs only in the child of TestSIGKILL: it spools N events,
// makes them durable, says so, then spools more as fast as it can — with
// the writer fsyncing every millisecond — until it is killed.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestSIGKILL")
	}
	n, _ := strconv.Atoi(os.Getenv(crashNEnv))
	s, err := Open(Config{Dir: dir, SyncEvery: time.Millisecond, segmentBytes: 256 << 10})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(1)
	}
	for i := range n {
		s.Add(testEvent("e", i))
	}
	if err := s.Flush(); err != nil {
		fmt.Println("flush failed:", err)
		os.Exit(1)
	}
	fmt.Println("flushed")
	for i := n; ; i++ {
		s.Add(testEvent("e", i))
		if i%64 == 0 {
			runtime.Gosched()
		}
	}
}

// TestSIGKILL kills a spooling process at random moments and checks that
// the spool it leaves holds every event that was flushed, each once, in
// order, followed only by whole later events.
func TestSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for round := range 5 {
		dir := t.TempDir()
		const n = 3000
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashNEnv+"="+strconv.Itoa(n))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "flushed\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: the child said %q (%v)", round, line, err)
		}
		time.Sleep(time.Duration(rand.IntN(50_000)) * time.Microsecond)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
			t.Fatal(err)
		}
		cmd.Wait()

		s := MustOpen(t, Config{Dir: dir})
		got := readAll(t, s)
		if len(got) < n {
			t.Fatalf("round %d: %d events survived, want at least the %d flushed", round, len(got), n)
		}
		for i, ev := range got {
			if ev != testEvent("e", i) {
				t.Fatalf("round %d: event %d is %+v, want e-%d intact", round, i, ev, i)
			}
		}
		t.Logf("round %d: %d events flushed, %d survived the kill", round, n, len(got))
		s.Close()
	}
}
