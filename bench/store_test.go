package bench

import (
	"testing"

	"github.com/usaged/usaged/store/pebble"
)

// TestStoreSmall runs a small load end to end, checks the query counts
// every event of the first organization (every other event, by sequence)
// and that the organizations are registered for a server to find.
func TestStoreSmall(t *testing.T) {
	dir := t.TempDir()
	rep, err := Store(t.Context(), StoreConfig{Dir: dir, Events: 20000, Orgs: 2, Clients: 5, Users: 10, Templates: 7,
		Days: 90, Batch: 1000, Workers: 2, Queries: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 20000 || rep.QueryRequests != 10000 || rep.DiskBytes == 0 {
		t.Fatalf("report %+v", rep)
	}
	db, err := pebble.Open(pebble.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	orgs, err := db.Organizations(t.Context())
	if err != nil || len(orgs) != 2 || orgs[0].ID != "bench-org-00" || orgs[1].Name != "Bench Store Org 01" || orgs[0].CreatedAt.IsZero() {
		t.Fatalf("registered organizations %+v, %v", orgs, err)
	}
}
