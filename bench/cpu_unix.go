//go:build unix

package bench

import (
	"syscall"
	"time"
)

// CPUTime returns the user and system CPU time the process has used so far;
// 0 where that is unknown.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
