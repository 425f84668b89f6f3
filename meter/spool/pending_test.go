package spool

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Waiting requests come back from Open, with their events and headers,
// until Done; a file mostly of Done records is rewritten, and a torn tail
// (a crash mid-write) is dropped, not mis-read.
func TestPendingKeptAcrossOpen(t *testing.T) {
	dir := t.TempDir()
	open := func() *Spool {
		t.Helper()
		s, err := Open(Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	h := http.Header{"Authorization": {"Bearer " + strings.Repeat("t", 1000)}} // 3000 of them: 3 MB
	var keys []uint64
	for i := range 3000 {
		k, ok := s.Keep(testEvent("w", i), h)
		if !ok {
			t.Fatal("Keep refused")
		}
		keys = append(keys, k)
		if i%100 == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, k := range keys[:2990] { // ten still wait
		s.Done(k)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Waiting != 10 || st.WaitingDurable != 10 {
		t.Fatalf("stats %+v, want 10 waiting, all durable", st)
	}
	if fi, _ := os.Stat(filepath.Join(dir, pendingFile)); fi.Size() > pendingCompactBytes {
		t.Errorf("the file holds %d bytes for 10 waiting requests: never rewritten", fi.Size())
	}
	s.Close()

	// A crash tore the last write.
	f, err := os.OpenFile(filepath.Join(dir, pendingFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{40, 0, 0, 0, 1, 2, 3, 4, pendingKeep, 9})
	f.Close()

	s = open()
	defer s.Close()
	w := s.Waiting()
	if len(w) != 10 {
		t.Fatalf("%d requests came back waiting, want 10", len(w))
	}
	for i, x := range w {
		if want := testEvent("w", 2990+i); x.Key != keys[2990+i] || x.Event != want || !reflect.DeepEqual(x.Header, h) {
			t.Errorf("waiting request %d: %+v, want key %d, %+v, %v", i, x, keys[2990+i], want, h)
		}
	}
	if k, _ := s.Keep(testEvent("n", 0), h); k <= keys[len(keys)-1] {
		t.Errorf("a new request got key %d, already used", k)
	}
}
