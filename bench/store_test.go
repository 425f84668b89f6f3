package bench

import "testing"

// TestStoreSmall runs a small load end to end and checks the query counts
// every event of the first organization (every other event, by sequence).
func TestStoreSmall(t *testing.T) {
	rep, err := Store(t.Context(), StoreConfig{Dir: t.TempDir(), Events: 20000, Orgs: 2, Clients: 5, Users: 10, Templates: 7,
		Days: 90, Batch: 1000, Workers: 2, Queries: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 20000 || rep.QueryRequests != 10000 || rep.DiskBytes == 0 {
		t.Fatalf("report %+v", rep)
	}
}
