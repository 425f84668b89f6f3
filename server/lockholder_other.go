//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package server

import (
	"errors"
	"syscall"
)

// lockHolder cannot tell the holder of a lock on this system.
func lockHolder(string) int { return 0 }

// isLocked reports whether err is the refusal of a lock another process
// holds.
func isLocked(err error) bool { return errors.Is(err, syscall.EAGAIN) }
