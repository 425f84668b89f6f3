// Package ownertest checks, in tests, that a directory tree is readable by
// its owner only: the stores and spools of usaged hold tenants' usage,
// tokens and keys, whatever the umask of the process that made them.
package ownertest

import (
	"io/fs"
	"path/filepath"
	"testing"
)

// Check fails tb for every directory under dir (dir included) whose mode is
// not 0700 and every file whose mode is not 0600, and for a tree of fewer
// than minFiles files, which would check too little.
func Check(tb testing.TB, dir string, minFiles int) {
	tb.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			tb.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if files < minFiles {
		tb.Fatalf("only %d files under %s, want at least %d", files, dir, minFiles)
	}
}
