//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package server

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockHolder returns the id of the process holding the store's lock file,
// or 0 if it cannot tell. The store locks with fcntl, so F_GETLK names
// the holder whatever it wrote or failed to write; a holder in another pid
// namespace (another container) reads as 0.
func lockHolder(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK} // the whole file, as the store locks it
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return 0
	}
	return int(lk.Pid)
}

// isLocked reports whether err is the refusal of a lock another process
// holds: fcntl answers EAGAIN or EACCES, unwrapped, where a file that could
// not be opened is a *fs.PathError.
func isLocked(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES)
}
