package dashboard

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func newServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	if err := Register(mux, cfg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// The transport would ask for gzip itself and hide it; ask explicitly.
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func TestServesTheEmbeddedPage(t *testing.T) {
	srv := newServer(t, Config{})
	res, body := get(t, srv.URL+"/", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{`src="/assets/app.js"`, `href="/assets/app.css"`, `id="main"`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	// Every file the page names is served, with a type the browser runs.
	for path, typ := range map[string]string{"/assets/app.js": "text/javascript", "/assets/app.css": "text/css"} {
		res, body := get(t, srv.URL+path, nil)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), typ) || len(body) < 100 {
			t.Errorf("GET %s = %d %s, %d bytes", path, res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
	}
	for _, path := range []string{"/assets/nope.js", "/assets/index.html", "/index.html", "/assets/"} {
		if res, _ := get(t, srv.URL+path, nil); res.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", path, res.StatusCode)
		}
	}
}

func TestGzipAndRevalidation(t *testing.T) {
	srv := newServer(t, Config{})
	_, plain := get(t, srv.URL+"/assets/app.js", nil)
	res, zipped := get(t, srv.URL+"/assets/app.js", map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if res.Header.Get("Content-Encoding") != "gzip" || len(zipped) >= len(plain) {
		t.Fatalf("gzip: Content-Encoding %q, %d bytes of %d", res.Header.Get("Content-Encoding"), len(zipped), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, plain) {
		t.Fatal("the gzipped file is not the file")
	}
	if res, _ := get(t, srv.URL+"/assets/app.js", map[string]string{"Accept-Encoding": "gzip;q=0"}); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 was answered gzipped")
	}
	// The two encodings have different ETags, and each revalidates to 304.
	resPlain, _ := get(t, srv.URL+"/assets/app.js", nil)
	if resPlain.Header.Get("ETag") == res.Header.Get("ETag") {
		t.Error("plain and gzipped answers share an ETag")
	}
	for _, h := range []map[string]string{{}, {"Accept-Encoding": "gzip"}} {
		first, _ := get(t, srv.URL+"/assets/app.js", h)
		h2 := map[string]string{"If-None-Match": first.Header.Get("ETag")}
		for k, v := range h {
			h2[k] = v
		}
		again, body := get(t, srv.URL+"/assets/app.js", h2)
		if again.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("revalidation with %v = %d, %d bytes", h, again.StatusCode, len(body))
		}
	}
}

func TestSession(t *testing.T) {
	var demo *Session
	srv := newServer(t, Config{Demo: func() *Session { return demo }})
	read := func() map[string]any {
		res, body := get(t, srv.URL+"/ui/session", nil)
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", res.Header.Get("Cache-Control"))
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Before the demo is seeded, and without --demo, nothing is handed out.
	if v := read(); v["demo"] != false || len(v) != 1 {
		t.Fatalf("no demo: %v", v)
	}
	demo = &Session{OrganizationName: "Demo Org", ClientID: "c", ClientSecret: "s", APIKey: "usk_k"}
	if v := read(); v["demo"] != true || v["clientId"] != "c" || v["clientSecret"] != "s" || v["apiKey"] != "usk_k" {
		t.Fatalf("demo: %v", v)
	}
	srvNone := newServer(t, Config{})
	if _, body := get(t, srvNone.URL+"/ui/session", nil); strings.TrimSpace(string(body)) != `{"demo":false}` {
		t.Fatalf("without a demo: %s", body)
	}
}
