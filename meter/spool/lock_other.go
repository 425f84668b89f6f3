//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package spool

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens the lock file; on this platform it is not locked, so it is
// up to the operator to give each process its own spool directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: opening the lock file: %w", err)
	}
	return f, nil
}

// unlockDir closes the lock file.
func unlockDir(f *os.File) { f.Close() }
