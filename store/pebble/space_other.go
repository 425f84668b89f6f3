//go:build !linux && !darwin && !freebsd

package pebble

import "errors"

// statfs is not implemented here: the reserve is not enforced.
func statfs(string) (free, total uint64, err error) {
	return 0, 0, errors.New("free space is not known on this platform")
}
