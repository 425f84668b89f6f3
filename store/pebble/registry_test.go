package pebble

import (
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// A client stored before clients had roles reads as a client without them.
func TestClientRecordWithoutRoles(t *testing.T) {
	t.Parallel()
	d, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	old := `{"ID":"k1","OrganizationID":"o1","Name":"n","Description":"","SecretHash":"AQID","Permissions":["usage:event:add"],"AccessTokenValidity":3600000000000,"CreatedAt":"2026-01-02T03:04:05Z"}`
	if err := d.db.Set(clientKey("k1"), []byte(old), pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	c, err := d.Client(t.Context(), "k1")
	if err != nil || c.Name != "n" || string(c.SecretHash) != "\x01\x02\x03" || c.AccessTokenValidity != time.Hour ||
		c.RoleIDs != nil || c.RoleDivisions != nil || c.Scope != nil {
		t.Fatalf("old record read as %+v, %v", c, err)
	}
}
