package browsertest

import (
	"testing"
	"time"

	"github.com/usaged/usaged/internal/apptest"
)

// serverProc is a running `usaged serve` process.
type serverProc struct {
	base string
}

// startServe starts `usaged serve` on 127.0.0.1 with data and the admin
// token, and extra flags; it is killed when the test ends.
func startServe(t testing.TB, data, token string, extra ...string) *serverProc {
	t.Helper()
	s := apptest.Start(t, apptest.Options{
		Args: append([]string{"--data", data, "--admin-token", token, "--log-format", "json"}, extra...),
		Wait: 5 * time.Minute, // --demo seeds before it listens
	})
	return &serverProc{base: s.URL}
}

// post sends body to base+path with the bearer token.
var post = apptest.Post

// ingestResult is the answer to POST /api/v2/usage/events.
type ingestResult struct {
	Accepted, Duplicates, Rejected int
}
