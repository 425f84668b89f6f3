package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/usaged/usaged/usage"
)

// Next returns up to max events that are durable and not yet acknowledged,
// in the order they were added, starting at the acknowledged position: a
// second Next without an Ack returns the same events again (and perhaps
// more). It blocks until at least one event is durable, ctx ends (ctx.Err())
// or the spool is closed (ErrClosed). Next and Ack are for one consumer.
func (s *Spool) Next(ctx context.Context, max int) ([]usage.Event, error) {
	if max < 1 {
		return nil, fmt.Errorf("spool: Next needs max of at least 1, got %d", max)
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	var (
		ack     pos
		segs    []segment
		pending int
	)
	for {
		select {
		case <-s.closedCh:
			return nil, ErrClosed
		default:
		}
		s.smu.Lock()
		ch := s.durable
		ack, pending = s.ack, s.pendingEvents
		if pending > 0 {
			i := slices.IndexFunc(s.segs, func(g segment) bool { return g.id == ack.seg })
			segs = slices.Clone(s.segs[i:])
		}
		s.smu.Unlock()
		if pending > 0 {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closedCh:
			return nil, ErrClosed
		}
	}
	// Reading needs no lock: the writer only appends past the sizes taken
	// above, and segments are deleted only once acknowledged, which only
	// this consumer does.
	evs := make([]usage.Event, 0, min(max, pending))
	s.batch = s.batch[:0]
	p := ack
	for i := 0; len(evs) < max; {
		if p.off >= segs[i].size {
			if i == len(segs)-1 {
				break
			}
			i++
			p = pos{seg: segs[i].id}
			continue
		}
		f, err := s.segFile(p.seg)
		if err != nil {
			return nil, err
		}
		rr := &s.rr
		rr.reset(f, p.off, segs[i].size)
		for len(evs) < max {
			payload, n, err := rr.next()
			if err == io.EOF {
				break
			}
			if err != nil && !errors.Is(err, errTorn) {
				return nil, fmt.Errorf("spool: reading segment %s: %w", segName(p.seg), err)
			}
			var ev usage.Event
			if err == nil {
				ev, err = decodePayload(payload)
			}
			if err != nil {
				// Open checked every record before it, and this process
				// wrote and fsynced the ones after: the disk or memory
				// changed it since.
				s.log.Error("spool: a durable record does not read back; reopen the spool to drop the damaged part", "segment", segName(p.seg), "offset", p.off, "err", err)
				return nil, fmt.Errorf("%w: segment %s offset %d: %w", ErrCorrupt, segName(p.seg), p.off, err)
			}
			p.off += n
			evs = append(evs, ev)
			s.batch = append(s.batch, batchEntry{end: p, size: n})
		}
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("%w: %d events are pending but none could be read at segment %s offset %d", ErrCorrupt, pending, segName(ack.seg), ack.off)
	}
	return evs, nil
}

// segFile returns segment id opened for reading, keeping it open for the
// following batches.
func (s *Spool) segFile(id uint64) (*os.File, error) {
	if s.rf != nil && s.rfID == id {
		return s.rf, nil
	}
	if s.rf != nil {
		s.rf.Close()
		s.rf = nil
	}
	f, err := os.Open(s.segPath(id))
	if err != nil {
		return nil, fmt.Errorf("spool: opening segment %s: %w", segName(id), err)
	}
	s.rf, s.rfID = f, id
	return f, nil
}

// Ack marks the first n events of the batch the last Next returned as done
// (usaged has them) and releases their space; a later Ack continues with the
// rest of that batch. The acknowledged position is made durable before Ack
// returns, so that a restart does not send these events again. An error
// means only that this could not be recorded: the events still count as
// done in this process, and a restart would resend them, which usaged
// counts once.
func (s *Spool) Ack(n int) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	select {
	case <-s.closedCh:
		return ErrClosed
	default:
	}
	if n < 0 || n > len(s.batch) {
		return fmt.Errorf("spool: Ack(%d) but the last Next returned %d events not yet acknowledged", n, len(s.batch))
	}
	if n == 0 {
		return nil
	}
	end := s.batch[n-1].end
	var bytes int64
	for _, e := range s.batch[:n] {
		bytes += e.size
	}
	s.batch = s.batch[n:]
	s.smu.Lock()
	s.ack = end
	s.pendingEvents -= n
	s.pendingBytes -= bytes
	s.smu.Unlock()
	s.shipped.Add(uint64(n))
	// The position is made durable before segments are deleted, so that a
	// restart resumes exactly here. (Were a deletion to land first, a
	// restart would still be right, only less exact: an acknowledged
	// segment that is missing was done, and Open starts after it.)
	err := writeAck(s.cfg.Dir, end)
	if err != nil {
		err = fmt.Errorf("spool: recording the acknowledged position: %w", err)
	}
	s.reclaim()
	return err
}

// reclaim moves the acknowledged position past segments it has finished
// and deletes every segment before it. A deleted segment held only
// acknowledged events; should its deletion be lost in a crash, Open deletes
// it again (its id is below the acknowledged segment's) or, with an older
// ack file, resends it.
func (s *Spool) reclaim() {
	s.smu.Lock()
	i := slices.IndexFunc(s.segs, func(g segment) bool { return g.id == s.ack.seg })
	for i < len(s.segs)-1 && s.ack.off >= s.segs[i].size {
		i++
		s.ack = pos{seg: s.segs[i].id}
	}
	dead := slices.Clone(s.segs[:i])
	s.segs = slices.Delete(s.segs, 0, i)
	s.smu.Unlock()
	for _, g := range dead {
		if err := os.Remove(s.segPath(g.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("spool: removing an acknowledged segment failed", "segment", segName(g.id), "err", err)
			continue
		}
		s.diskBytes.Add(-g.size)
	}
}

// The ack file: segment uint64, offset int64, CRC-32C of both, little
// endian. It is replaced atomically (write temporary, fsync, rename, fsync
// the directory), so it is always either the old or the new position.
const (
	ackFile = "ack"
	ackSize = 20
)

func writeAck(dir string, p pos) error {
	var b [ackSize]byte
	binary.LittleEndian.PutUint64(b[0:], p.seg)
	binary.LittleEndian.PutUint64(b[8:], uint64(p.off))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	tmp := filepath.Join(dir, ackFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ackFile))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// readAck reads the acknowledged position; a spool without one starts at
// the beginning.
func readAck(dir string) (pos, error) {
	b, err := os.ReadFile(filepath.Join(dir, ackFile))
	if errors.Is(err, fs.ErrNotExist) {
		return pos{}, nil
	}
	if err != nil {
		return pos{}, err
	}
	if len(b) != ackSize || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return pos{}, fmt.Errorf("ack file of %d bytes fails its checksum", len(b))
	}
	p := pos{seg: binary.LittleEndian.Uint64(b[0:]), off: int64(binary.LittleEndian.Uint64(b[8:]))}
	if p.off < 0 {
		return pos{}, fmt.Errorf("ack file holds a negative offset %d", p.off)
	}
	return p, nil
}
