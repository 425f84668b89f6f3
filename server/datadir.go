package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/usaged/usaged/store/pebble"
)

// checkDataDir refuses a data directory that has been used (it holds the
// token signing key or the admin token, written on first start) but whose
// pebble store, in directory dir, is lost: starting would create an empty
// store and serve it as if nothing had ever been recorded, with the old
// tokens still valid.
func checkDataDir(data, dir string) error {
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // present, or unreadable: opening the store reports it
	}
	var found []string
	for _, name := range []string{SigningKeyFile, AdminTokenFile} {
		if _, err := os.Stat(filepath.Join(data, name)); err == nil {
			found = append(found, name)
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("data directory %s holds %s from an earlier start but no store directory %s: the store is missing. "+
		"Restore it from a backup; to start over with an empty store, remove %s as well",
		data, strings.Join(found, " and "), dir, strings.Join(found, " and "))
}

// storeOpenError says what to do about the pebble store in directory dir
// that cannot be opened; data is the data directory.
func storeOpenError(data, dir string, err error) error {
	if inProcess := strings.Contains(err.Error(), "lock held by current process"); inProcess || isLocked(err) {
		pid := os.Getpid()
		if !inProcess {
			pid = lockHolder(filepath.Join(dir, "LOCK"))
		}
		held := data // the store in the data directory is what --data names
		if dir != filepath.Join(data, StoreDir) {
			held = dir
		}
		holder := "another usaged holds " + held
		if pid > 0 {
			holder += fmt.Sprintf(" (pid %d)", pid)
		}
		return fmt.Errorf("%s: stop it first, or give this server another --data or --store", holder)
	}
	var damage *pebble.WALDamageError
	if errors.As(err, &damage) {
		return fmt.Errorf("opening the store: %w. Restore the data directory from a backup, "+
			"or start once with --accept-wal-loss to drop those writes (a copy of each dropped log is kept beside it)", err)
	}
	return fmt.Errorf("opening the store: %w", err)
}
