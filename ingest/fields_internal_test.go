package ingest

import "testing"

func TestClosestField(t *testing.T) {
	f := func(key, want string) {
		t.Helper()
		if got := closestField(key, eventFields); got != want {
			t.Fatalf("closestField(%q) = %q, want %q", key, got, want)
		}
	}
	f("userID", "userId")       // case first
	f("USERID", "userId")       //
	f("userid", "userId")       //
	f("user_id", "userId")      // one edit
	f("clinetId", "clientId")   // a transposition is one edit
	f("duration", "durationMs") // two edits in a long name
	f("ts", "")                 // two edits in a short one are too many
	f("foo", "")
	f("timestamp", "")
	f("", "")
}
