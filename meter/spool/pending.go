package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/usaged/usaged/usage"
)

// The requests waiting for attribution — served, but not yet known to be
// whose — are kept in the file pending (mode 0600: it holds their
// credentials, bearer tokens included) next to the segments, so that a
// restart, or a crash, of the process neither loses them nor files them
// under the wrong client: Open replays them (Waiting) and they are
// attributed again. The file is a sequence of records framed like events
// (length, CRC-32C) whose payload is either
//
//	pendingKeep  key, the event's fields, the headers attribution reads
//	pendingDone  key: the request was attributed (its event was Added
//	             first) or given up on
//
// Keep and Done append to a buffer that the writer makes durable with the
// events, events first: a request's Done is never durable before the event
// Added for it. The file is rewritten with only the requests still waiting
// when it is mostly Done records, and emptied when none waits.
const (
	pendingFile = "pending"
	pendingKeep = 0xb1 // record "versions" distinct from recordVersion
	pendingDone = 0xb2
	// pendingCompactBytes is the least size of the file worth rewriting.
	pendingCompactBytes = 1 << 20
)

// Waiting is a request waiting for attribution: its event, without identity,
// and the headers attribution reads.
type Waiting struct {
	Key    uint64 // names it in Done
	Event  usage.Event
	Header http.Header
}

// waitingEntry is a waiting request's record and whether it is durable.
type waitingEntry struct {
	rec     []byte
	durable bool
}

// pendingState is the spool's part that keeps waiting requests. Its fields
// are guarded by Spool.pmu, except file and fileBytes, which only the
// writer (holding Spool.wmu) touches.
type pendingState struct {
	buf       []byte   // Keep and Done records not yet written
	bufKeys   []uint64 // keys of the Keep records in buf
	live      map[uint64]*waitingEntry
	liveBytes int64
	durable   int // live entries that are durable
	nextKey   uint64
	replayed  []Waiting
	file      *os.File
	fileBytes int64
}

// Keep records w's event and the headers h as waiting for attribution,
// returning the key that Done takes. It never blocks on disk; false when the
// spool is closed or the request too large for a record (it then is not
// kept, and the caller decides).
func (s *Spool) Keep(ev usage.Event, h http.Header) (uint64, bool) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.pclosed {
		return 0, false
	}
	key := s.pend.nextKey
	b := append([]byte(nil), 0, 0, 0, 0, 0, 0, 0, 0, pendingKeep)
	b = binary.AppendUvarint(b, key)
	b = appendEvent(b, &ev)
	b = binary.AppendUvarint(b, uint64(len(h)))
	for _, name := range slices.Sorted(maps.Keys(h)) {
		b = appendString(b, name)
		b = binary.AppendUvarint(b, uint64(len(h[name])))
		for _, v := range h[name] {
			b = appendString(b, v)
		}
	}
	b, ok := finishRecord(b, 0)
	if !ok {
		return 0, false
	}
	s.pend.nextKey++
	s.pend.buf = append(s.pend.buf, b...)
	s.pend.bufKeys = append(s.pend.bufKeys, key)
	s.pend.live[key] = &waitingEntry{rec: b}
	s.pend.liveBytes += int64(len(b))
	return key, true
}

// Done records that the request kept under key no longer waits: its event,
// if any, was Added before.
func (s *Spool) Done(key uint64) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	e, ok := s.pend.live[key]
	if !ok || s.pclosed {
		return
	}
	delete(s.pend.live, key)
	s.pend.liveBytes -= int64(len(e.rec))
	if e.durable {
		s.pend.durable--
	}
	b := append([]byte(nil), 0, 0, 0, 0, 0, 0, 0, 0, pendingDone)
	b = binary.AppendUvarint(b, key)
	b, _ = finishRecord(b, 0)
	s.pend.buf = append(s.pend.buf, b...)
}

// Waiting returns, once, the requests an earlier process left waiting for
// attribution; they are kept still, until Done.
func (s *Spool) Waiting() []Waiting {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	w := s.pend.replayed
	s.pend.replayed = nil
	return w
}

// replayPending reads the waiting requests an earlier process left and
// rewrites the file with only them. Called by Open.
func (s *Spool) replayPending() error {
	s.pend.live = map[uint64]*waitingEntry{}
	path := filepath.Join(s.cfg.Dir, pendingFile)
	f, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: opening the waiting requests: %w", err)
	}
	var order []uint64
	if f != nil {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("spool: the waiting requests: %w", err)
		}
		rr := newRecordReader(f, 0, fi.Size())
		for {
			p, _, err := rr.next()
			if err == io.EOF || errors.Is(err, errTorn) {
				break // a torn tail is the documented last moments before a crash
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("spool: reading the waiting requests: %w", err)
			}
			d := payloadDecoder{p: p[1:]}
			key := d.uvarint()
			switch p[0] {
			case pendingKeep:
				rec := make([]byte, recordHeader+len(p))
				copy(rec[recordHeader:], p)
				rec, _ = finishRecord(rec, 0)
				if _, seen := s.pend.live[key]; !seen {
					order = append(order, key) // a compaction may repeat a record
				}
				s.pend.live[key] = &waitingEntry{rec: rec, durable: true}
			case pendingDone:
				delete(s.pend.live, key)
			default:
				f.Close()
				return fmt.Errorf("spool: the waiting requests hold a record of kind %#x this build does not know: run the build that wrote them, or move %s aside", p[0], path)
			}
			s.pend.nextKey = max(s.pend.nextKey, key+1)
		}
		f.Close()
	}
	for _, key := range order {
		e, ok := s.pend.live[key]
		if !ok {
			continue
		}
		w, err := decodeWaiting(e.rec[recordHeader:])
		if err != nil {
			return fmt.Errorf("spool: the waiting requests: %w", err)
		}
		s.pend.replayed = append(s.pend.replayed, w)
		s.pend.liveBytes += int64(len(e.rec))
		s.pend.durable++
	}
	if len(s.pend.replayed) > 0 {
		s.log.Info("spool: replayed requests an earlier process left waiting for attribution", "requests", len(s.pend.replayed))
	}
	var all []byte
	for _, key := range order {
		if e, ok := s.pend.live[key]; ok {
			all = append(all, e.rec...)
		}
	}
	return s.rewritePending(all)
}

// decodeWaiting decodes a Keep payload.
func decodeWaiting(p []byte) (Waiting, error) {
	d := payloadDecoder{p: p[1:]}
	var w Waiting
	w.Key = d.uvarint()
	w.Event = d.event()
	n := d.uvarint()
	if n > uint64(len(d.p)) {
		return Waiting{}, errTorn
	}
	w.Header = make(http.Header, n)
	for range n {
		name := d.string()
		m := d.uvarint()
		if m > uint64(len(d.p)) {
			return Waiting{}, errTorn
		}
		for range m {
			w.Header[name] = append(w.Header[name], d.string())
		}
	}
	if d.err == nil && len(d.p) != 0 {
		d.err = fmt.Errorf("%d bytes left over after a waiting request", len(d.p))
	}
	return w, d.err
}

// rewritePending replaces the file with all (write a temporary, fsync,
// rename, fsync the directory) and keeps it open for appending.
func (s *Spool) rewritePending(all []byte) error {
	path := filepath.Join(s.cfg.Dir, pendingFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: rewriting the waiting requests: %w", err)
	}
	_, err = f.Write(all)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(s.cfg.Dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("spool: rewriting the waiting requests: %w", err)
	}
	if s.pend.file != nil {
		s.pend.file.Close()
	}
	s.pend.file, s.pend.fileBytes = f, int64(len(all))
	return nil
}

// pendingWrite is what the writer makes durable of the waiting requests
// after the events: records to append, or the whole file to rewrite.
type pendingWrite struct {
	buf      []byte
	keys     []uint64 // of the Keep records made durable
	rewrite  bool     // buf is the whole file
	truncate bool     // after appending buf, nothing waits: empty the file
	// taken and takenKeys are the buffered records a rewrite replaces: they
	// go back to the buffer should it fail.
	taken     []byte
	takenKeys []uint64
}

// putBack returns the records w took to the front of the buffer, after a
// failed write.
func (s *Spool) putBack(w pendingWrite) {
	b, keys := w.buf, w.keys
	if w.rewrite {
		b, keys = w.taken, w.takenKeys
	}
	s.pmu.Lock()
	s.pend.buf = append(b, s.pend.buf...)
	s.pend.bufKeys = append(keys, s.pend.bufKeys...)
	s.pmu.Unlock()
}

// takePending takes the buffered Keep and Done records, to be written after
// the events Added so far: every Done among them follows its event. When the
// file is mostly done with, it takes the live records instead, to rewrite
// it; requests Done from now on are in it, and their Done records, in the
// buffer, follow. s.wmu is held.
func (s *Spool) takePending() pendingWrite {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	w := pendingWrite{buf: s.pend.buf, keys: s.pend.bufKeys}
	s.pend.buf, s.pend.bufKeys = nil, nil
	size := s.pend.fileBytes + int64(len(w.buf))
	switch {
	case len(s.pend.live) == 0:
		w.truncate = size > 0
	case size > pendingCompactBytes && size > 4*s.pend.liveBytes:
		w = pendingWrite{rewrite: true, buf: make([]byte, 0, s.pend.liveBytes), taken: w.buf, takenKeys: w.keys}
		for _, k := range slices.Sorted(maps.Keys(s.pend.live)) {
			w.buf = append(w.buf, s.pend.live[k].rec...)
			w.keys = append(w.keys, k)
		}
	}
	return w
}

// writePending makes w durable, after the events. On failure, appended
// records go back to the buffer. s.wmu is held.
func (s *Spool) writePending(w pendingWrite) error {
	if w.rewrite {
		if err := s.rewritePending(w.buf); err != nil {
			s.putBack(w) // the old file and these hold every live record
			return err
		}
	} else if len(w.buf) > 0 {
		f := s.pend.file
		_, err := f.Write(w.buf)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Truncate(s.pend.fileBytes)
			f.Seek(s.pend.fileBytes, io.SeekStart)
			s.putBack(w)
			return fmt.Errorf("spool: writing the waiting requests: %w", err)
		}
		s.pend.fileBytes += int64(len(w.buf))
	}
	s.pmu.Lock()
	for _, k := range w.keys {
		if e, ok := s.pend.live[k]; ok && !e.durable {
			e.durable = true
			s.pend.durable++
		}
	}
	s.pmu.Unlock()
	if w.truncate {
		// Nothing waited when the records were taken: every Done is
		// durable, and the events before them.
		f := s.pend.file
		err := f.Truncate(0)
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return fmt.Errorf("spool: emptying the waiting requests: %w", err)
		}
		s.pend.fileBytes = 0
	}
	return nil
}
