package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/ownertest"
	"github.com/usaged/usaged/usage"
)

const (
	walBatches  = 100
	walPerBatch = 100
)

// writeEvents appends walBatches batches of walPerBatch distinct events to d;
// each Append returns once its batch is synced, as ingest acknowledges it.
func writeEvents(t *testing.T, d *DB) {
	t.Helper()
	now := time.Now().UTC()
	for b := range walBatches {
		evs := make([]usage.Event, walPerBatch)
		for i := range evs {
			n := b*walPerBatch + i
			evs[i] = usage.Event{
				ID: fmt.Sprintf("wal-%d", n), Time: now.Add(-time.Duration(n) * time.Second),
				OrganizationID: "org", ClientID: fmt.Sprintf("c%d", n%7), ClientName: "Client",
				TemplateURI: "api/v2/items/{id}", HTTPMethod: "GET", Status: 200,
			}
		}
		if _, err := d.Append(t.Context(), evs, now.Add(-48*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
}

// crashImage returns a store directory holding what a crash right after the
// last acknowledged append leaves on disk: every file of a running store,
// copied while it is idle (each append was synced before it returned).
func crashImage(t *testing.T) string {
	t.Helper()
	live := t.TempDir()
	d, err := Open(Config{Dir: live, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	// The image must end with the last append: no checkpoint of the dedupe
	// index may be written behind it, nor during the copy.
	d.stopMaint()
	<-d.maintDone
	writeEvents(t, d)
	img := t.TempDir()
	if err := os.CopyFS(img, os.DirFS(live)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// newestWAL returns the store's newest write-ahead log, the one a crash
// tears.
func newestWAL(t *testing.T, dir string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log")) // sorted: numbered with leading zeros
	if len(logs) == 0 {
		t.Fatalf("no write-ahead log in %s", dir)
	}
	return logs[len(logs)-1]
}

// walFile returns the store's largest write-ahead log, holding most appends.
func walFile(t *testing.T, dir string) string {
	t.Helper()
	var best string
	var size int64
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, p := range logs {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			best, size = p, fi.Size()
		}
	}
	if size < 3*blockSize {
		t.Fatalf("no write-ahead log of several blocks in %s: %v (%d bytes)", dir, logs, size)
	}
	return best
}

// stored opens dir and returns how many distinct events it holds.
func stored(t *testing.T, cfg Config) (int, error) {
	t.Helper()
	cfg.FilterCapacity = 1024
	d, err := Open(cfg)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	// Every event has a dedupe record; those the log held are written out
	// as a run first.
	if err := d.writeRun(true); err != nil {
		t.Fatal(err)
	}
	return count(t, d, famDedupe), nil
}

func edit(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestWALDamageStopsOpen(t *testing.T) {
	t.Parallel()
	f := func(name string, damage func([]byte) []byte) {
		t.Run(name, func(t *testing.T) {
			dir := crashImage(t)
			wal := walFile(t, dir)
			edit(t, wal, damage)
			_, err := stored(t, Config{Dir: dir})
			var de *WALDamageError
			if !errors.As(err, &de) {
				t.Fatalf("open after %s: got %v, want a *WALDamageError", name, err)
			}
			if de.File != wal || de.Offset <= 0 || de.Offset > de.Evidence {
				t.Fatalf("damage reported at %s offset %d (evidence %d), want %s", de.File, de.Offset, de.Evidence, wal)
			}
			if msg := err.Error(); !strings.Contains(msg, wal) || !strings.Contains(msg, fmt.Sprintf("offset %d", de.Offset)) {
				t.Fatalf("message names neither the file nor the offset: %s", msg)
			}
			t.Logf("%v", err)
			// The store is left as it was.
			if b, _ := os.ReadFile(wal); int64(len(b)) != de.Size {
				t.Fatalf("the damaged log was changed: %d bytes, was %d", len(b), de.Size)
			}
		})
	}
	f("a flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
	f("a flipped byte in a header", func(b []byte) []byte {
		// The first chunk of the second block: its header begins the block.
		b[blockSize+5] ^= 0x01
		return b
	})
	f("a deleted byte", func(b []byte) []byte { return append(b[:len(b)/2:len(b)/2], b[len(b)/2+1:]...) })
	f("an inserted byte", func(b []byte) []byte {
		return append(append(b[:len(b)/3:len(b)/3], 0x5a), b[len(b)/3:]...)
	})
	f("a zeroed page", func(b []byte) []byte { clear(b[len(b)/2 : len(b)/2+4096]); return b })
}

func TestWALDamageAccepted(t *testing.T) {
	t.Parallel()
	dir := crashImage(t)
	wal := walFile(t, dir)
	edit(t, wal, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	n, err := stored(t, Config{Dir: dir, AcceptWALLoss: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n >= walBatches*walPerBatch {
		t.Fatalf("%d events kept of %d: want those before the damage only", n, walBatches*walPerBatch)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), wal) || !strings.Contains(logs.String(), "bytesLost=") {
		t.Fatalf("the accepted loss is not logged at ERROR with the file and what was lost:\n%s", logs.String())
	}
	if _, err := os.Stat(wal + damagedSuffix); err != nil {
		t.Fatalf("no copy of the damaged log kept: %v", err)
	}
	// The store now opens without the flag, with the same events.
	if m, err := stored(t, Config{Dir: dir}); err != nil || m != n {
		t.Fatalf("reopen: %d events, %v; want %d", m, err, n)
	}
}

// A torn tail is what a crash leaves after the last sync: it ends the log,
// silently, and no acknowledged append is lost.
func TestWALTornTailRecovered(t *testing.T) {
	t.Parallel()
	f := func(name string, tear func([]byte) []byte, want int) {
		t.Run(name, func(t *testing.T) {
			dir := crashImage(t)
			edit(t, newestWAL(t, dir), tear)
			var logs bytes.Buffer
			n, err := stored(t, Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("open with %s: %v", name, err)
			}
			if n != want {
				t.Fatalf("%d events after %s, want %d", n, name, want)
			}
			if strings.Contains(logs.String(), "level=ERROR") {
				t.Fatalf("a torn tail is logged as an error:\n%s", logs.String())
			}
		})
	}
	all := walBatches * walPerBatch
	garbage := bytes.Repeat([]byte("torn write "), 300)
	f("garbage appended", func(b []byte) []byte { return append(b, garbage...) }, all)
	f("zeros appended", func(b []byte) []byte { return append(b, make([]byte, 40<<10)...) }, all)
	f("a partial record appended", func(b []byte) []byte {
		// The start of a copy of the last record: a header and part of its
		// payload, as a write cut short leaves it.
		last := lastRecord(t, b)
		return append(b, b[last:last+(len(b)-last)/2]...)
	}, all)
	f("the last record cut", func(b []byte) []byte { return b[:len(b)-10] }, all-walPerBatch)
}

// lastRecord returns the offset of the last record of a log.
func lastRecord(t *testing.T, b []byte) int {
	t.Helper()
	last := -1
	for off := 0; off+syncHeader <= len(b); {
		c, ok := chunkAt(b, off)
		if !ok {
			off = off - off%blockSize + blockSize
			continue
		}
		if c.pos <= 2 {
			last = off
		}
		off = c.end
	}
	if last < 0 {
		t.Fatal("no record in the log")
	}
	return last
}

// After a clean shutdown no log holds anything the store needs: cutting or
// deleting it loses nothing.
func TestWALAfterCleanClose(t *testing.T) {
	t.Parallel()
	f := func(name string, damage func(path string)) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
			if err != nil {
				t.Fatal(err)
			}
			writeEvents(t, d)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			if len(logs) == 0 {
				t.Fatal("no write-ahead log")
			}
			for _, p := range logs {
				damage(p)
			}
			if n, err := stored(t, Config{Dir: dir}); err != nil || n != walBatches*walPerBatch {
				t.Fatalf("after %s: %d events, %v; want %d", name, n, err, walBatches*walPerBatch)
			}
		})
	}
	f("the log cut in the middle", func(p string) {
		if fi, err := os.Stat(p); err == nil {
			os.Truncate(p, fi.Size()/2)
		}
	})
	f("the log deleted", func(p string) { os.Remove(p) })
}

func TestStoreFileModes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	writeEvents(t, d)
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	ownertest.Check(t, dir, 5)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	ownertest.Check(t, dir, 5)

	// A store from before the modes were enforced is narrowed at open.
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if e.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
	d, err = Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	ownertest.Check(t, dir, 5)
	d.Close()
}

// The scan reads intact logs of every shape to their end: records from a
// few bytes to several blocks, spanning blocks, ending anywhere.
func TestScanLogIntact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		v := bytes.Repeat([]byte{byte(i)}, i*i*37)
		if err := d.db.Set(fmt.Appendf(nil, "\xfek%d", i), v, nil); err != nil {
			t.Fatal(err)
		}
		img := t.TempDir()
		if err := os.CopyFS(img, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		logs, _ := filepath.Glob(filepath.Join(img, "*.log"))
		for _, p := range logs {
			b, _ := os.ReadFile(p)
			var num uint32
			fmt.Sscanf(filepath.Base(p), "%d.log", &num)
			if s := scanLog(b, num); s.evidence >= 0 || (s.stop >= 0 && !allZero(b[s.good:])) {
				t.Fatalf("after %d records, %s (%d bytes) read to %d, stopped at %d, evidence %d", i+1, p, len(b), s.good, s.stop, s.evidence)
			}
		}
	}
	d.Close()
}
