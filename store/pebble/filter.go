package pebble

import (
	"encoding/binary"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// filter is a blocked Bloom filter over dedupe records. It lets Append decide
// that most events are new without a disk read: only events it may contain
// (true duplicates, and about 0.2% of new events) cost a Pebble Get. Each key
// sets 7 bits within one 512-bit block, so a probe touches one cache line.
type filter struct {
	blocks [][8]uint64
	free   func()       // releases blocks
	n      atomic.Int64 // keys added
	cap    int          // keys it was sized for
}

const filterBitsPerKey = 16

func newFilter(capacity int) *filter {
	return newFilterBlocks(max(1, capacity*filterBitsPerKey/512), capacity)
}

// positions derives a block and seven bit offsets from a key's hash and org.
func (f *filter) positions(k *idKey) (*[8]uint64, uint64) {
	var blk uint64
	a := binary.LittleEndian.Uint64(k.hash[0:8]) ^ uint64(k.org)*0x9e3779b97f4a7c15
	b := uint64(binary.LittleEndian.Uint32(k.hash[8:12])^k.org*0x85ebca6b) << 32
	blk, _ = bits.Mul64(b, uint64(len(f.blocks))) // b/2^64 × len: a uniform block index
	return &f.blocks[blk], a
}

// add adds k. Bits are set atomically, so that a refill may add to a
// filter that Append adds to as well, and a checkpoint may copy one that
// Append adds to (copyBlocks); mayContain reads plainly, under the store's
// lock, which every other writer of that filter holds.
func (f *filter) add(k *idKey) {
	f.set(k)
	f.n.Add(1)
}

func (f *filter) set(k *idKey) {
	blk, p := f.positions(k)
	for i := 0; i < 7; i++ {
		bit := p & 511
		atomic.OrUint64(&blk[bit>>6], 1<<(bit&63))
		p >>= 9
	}
}

// adder adds keys to f from every core: a replay of millions of records
// is one cache miss after another, ~250 ns each on one core. add queues a
// key; wait returns once every queued key is in f.
func (f *filter) adder() (add func(idKey), wait func()) {
	const chunk = 16 << 10
	ch := make(chan []idKey, 2)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for keys := range ch {
				for i := range keys {
					f.set(&keys[i])
				}
				f.n.Add(int64(len(keys)))
			}
		})
	}
	buf := make([]idKey, 0, chunk)
	add = func(k idKey) {
		if buf = append(buf, k); len(buf) == chunk {
			ch <- buf
			buf = make([]idKey, 0, chunk)
		}
	}
	wait = func() {
		ch <- buf
		close(ch)
		wg.Wait()
	}
	return add, wait
}

func (f *filter) mayContain(k *idKey) bool {
	blk, p := f.positions(k)
	for i := 0; i < 7; i++ {
		bit := p & 511
		if blk[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
		p >>= 9
	}
	return true
}

func (f *filter) full() bool { return f.n.Load() > int64(f.cap) }

// release frees the filter's memory; it must not be used afterwards.
func (f *filter) release() { f.free() }

// sizeBytes is the filter's memory footprint.
func (f *filter) sizeBytes() int { return len(f.blocks) * 64 }

// newFilterBlocks returns a filter of n blocks, sized for capacity keys,
// with no key added: the memory a checkpoint is read into.
func newFilterBlocks(n, capacity int) *filter {
	blocks, free := allocBlocks(n)
	return &filter{blocks: blocks, free: free, cap: capacity}
}

// bytes is the filter's memory as bytes, in native order, to read a
// checkpoint into before the filter is in use.
func (f *filter) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&f.blocks[0])), len(f.blocks)*64)
}

// copyBlocks copies blocks [i, j) into buf, in native order, with atomic
// loads, while add may set bits; it returns the bytes written.
func (f *filter) copyBlocks(buf []byte, i, j int) []byte {
	buf = buf[:0]
	for b := i; b < j; b++ {
		for w := range f.blocks[b] {
			buf = binary.NativeEndian.AppendUint64(buf, atomic.LoadUint64(&f.blocks[b][w]))
		}
	}
	return buf
}
