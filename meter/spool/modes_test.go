package spool

import (
	"path/filepath"
	"testing"

	"github.com/usaged/usaged/internal/ownertest"
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
	ownertest.Check(t, dir, 2)
}
