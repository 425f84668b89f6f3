package spool

import (
	"io/fs"
	"path/filepath"
	"testing"
)

// TestFilesOwnerOnly: the spool holds tenants' usage and, for requests
// waiting for attribution, their bearer tokens, so its directory is 0700 and
// every file in it 0600, whatever the umask.
func TestFilesOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s := MustOpen(t, Config{Dir: dir})
	for i := range 10 {
		s.Add(testEvent("modes", i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	drain(t, s, 5, 5) // writes the acknowledgement file too
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
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 2 {
		t.Fatalf("only %d files in the spool", files)
	}
}
