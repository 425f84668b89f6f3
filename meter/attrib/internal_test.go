package attrib

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestTokenExpiry(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	f := func(tok string, want int64, wantOK bool) {
		t.Helper()
		got, ok := tokenExpiry(tok)
		if ok != wantOK || (ok && got.Unix() != want) {
			t.Fatalf("tokenExpiry(%q) = %v, %v; want %d, %v", tok, got, ok, want, wantOK)
		}
	}
	// usaged's format: "e" counts, "exp" does not.
	f("v1."+b64([]byte(`{"c":"c1","o":"o1","e":1781539200,"s":"x"}`))+".sig", 1781539200, true)
	f("v1."+b64([]byte(`{"exp":1781539200}`))+".sig", 0, false)
	// JWT-shaped: "exp" counts, padded or not, integer or not.
	f("eyJhbGciOiJSUzI1NiJ9."+b64([]byte(`{"exp":1781539200}`))+".sig", 1781539200, true)
	f("h."+b64([]byte(`{"exp":1781539200.9}`))+"==.sig", 1781539200, true)
	f("h."+b64([]byte(`{"e":1781539200}`))+".sig", 0, false)
	// Anything else: TTL alone applies.
	f("", 0, false)
	f("opaque-token", 0, false)
	f("a.b", 0, false)
	f("a.b.c.d", 0, false)
	f("h.!!!.sig", 0, false)
	f("h."+b64([]byte(`[1]`))+".sig", 0, false)
	f("h."+b64([]byte(`{"exp":"soon"}`))+".sig", 0, false)
	f("h."+b64([]byte(`{"exp":-1}`))+".sig", 0, false)
	f("h."+b64([]byte(`{"exp":1e300}`))+".sig", 0, false)
}

func FuzzTokenExpiry(f *testing.F) {
	b64 := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		"v1." + b64([]byte(`{"e":1781539200}`)) + ".sig",
		"h." + b64([]byte(`{"exp":1781539200}`)) + ".sig",
		"h." + b64([]byte(`{"exp":1e400}`)) + ".sig",
		"a.b.c", "", "...",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		exp, ok := tokenExpiry(tok)
		if ok && (exp.Before(time.Unix(0, 0)) || exp.Year() > 9999) {
			t.Fatalf("tokenExpiry(%q) = %v, out of range", tok, exp)
		}
	})
}
