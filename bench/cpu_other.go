//go:build !unix

package bench

import "time"

// CPUTime returns the user and system CPU time the process has used so far;
// 0 where that is unknown, as on this system.
func CPUTime() time.Duration { return 0 }
