package clickhouse

import (
	"encoding/json"

	"github.com/usaged/usaged/usage"
)

// encodeActivity encodes a for the body column of the activity journal.
func encodeActivity(a usage.Activity) string {
	b, _ := json.Marshal(a)
	return string(b)
}

// decodeActivity decodes the body column of the activity journal.
func decodeActivity(body string) (usage.Activity, error) {
	var a usage.Activity
	err := json.Unmarshal([]byte(body), &a)
	return a, err
}
