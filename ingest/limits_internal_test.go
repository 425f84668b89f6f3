package ingest

import (
	"testing"

	"github.com/valyala/fastjson"
)

// FuzzCountJSONEvents checks the structural count against the parser: for
// every body walk accepts, countJSONEvents counts as many elements as the
// parser finds, and it never counts past max+1.
func FuzzCountJSONEvents(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `[]`, `{"events":[{"a":"],["},[1,[2]],"\\\""]}`, `{"a":{"events":[1]},"events":[]}`,
		`{"ev\u0065nts":[1,2]}`, `[{"x":"\\"},"a"]`, `  [ 1 , {} , [ ] ]  `, `[1,2`, `{"events":1}`, `"x"`} {
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, body []byte, max int) {
		if max < 0 || max > 1<<20 {
			return
		}
		n := countJSONEvents(body, max)
		if n > max+1 {
			t.Fatalf("counted %d with max %d", n, max)
		}
		v, err := fastjson.ParseBytes(body)
		if err != nil {
			return
		}
		var arr []*fastjson.Value
		switch v.Type() {
		case fastjson.TypeArray:
			arr, _ = v.Array()
		case fastjson.TypeObject:
			ev := v.Get("events")
			if ev == nil || ev.Type() != fastjson.TypeArray {
				return
			}
			arr, _ = ev.Array()
		default:
			return
		}
		if want := min(len(arr), max+1); n != want {
			t.Fatalf("%q: counted %d with max %d, the parser finds %d", body, n, max, len(arr))
		}
	})
}
