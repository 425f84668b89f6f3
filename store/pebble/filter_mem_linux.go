//go:build linux

package pebble

import (
	"syscall"
	"unsafe"
)

// allocBlocks maps the filter's memory outside the Go heap. The filter is
// the largest object usaged keeps (hundreds of MiB at a hundred million
// events); on the heap it would double the garbage collector's target and
// with it the process's resident size.
func allocBlocks(n int) ([][8]uint64, func()) {
	b, err := syscall.Mmap(-1, 0, n*64, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([][8]uint64, n), func() {}
	}
	// Every probe lands on a random block: huge pages spare a TLB miss per
	// event where the kernel offers them.
	syscall.Madvise(b, syscall.MADV_HUGEPAGE) // refused harmlessly where unsupported
	return unsafe.Slice((*[8]uint64)(unsafe.Pointer(unsafe.SliceData(b))), n), func() { syscall.Munmap(b) }
}
