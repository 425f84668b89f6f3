// Package dashboard serves usaged's web dashboard: a single page that
// reads usage through the public APIs (the Genesys-compatible operations
// and the service-usage reports) and draws it as charts and tables.
//
// The page's sources and build live in web/; the built files in assets/
// are committed and embedded, so that `go build` alone yields a working
// dashboard with nothing fetched at run time.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// Session is what the page signs in with when it opens: the demo viewer's
// client credentials and a partner's API key. Only `serve --demo` sets one;
// they are the credentials it prints anyway.
type Session struct {
	OrganizationName string `json:"organizationName,omitempty"`
	ClientID         string `json:"clientId,omitempty"`
	ClientSecret     string `json:"clientSecret,omitempty"`
	APIKey           string `json:"apiKey,omitempty"`
}

// Config configures the dashboard.
type Config struct {
	// Demo, when set and returning a session, hands that session to the
	// page at GET /ui/session. It is a function because the demo is
	// seeded after the server starts listening.
	Demo func() *Session
}

// asset is one embedded file, ready to serve plain or gzipped.
type asset struct {
	name        string
	contentType string
	plain, gz   []byte
	etag        string
}

// Mux is where Register adds the routes: an *http.ServeMux, or a server's
// router that puts them behind its middleware.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the dashboard's routes to mux: the page at /, its files
// under /assets/, and GET /ui/session.
func Register(mux Mux, cfg Config) error {
	files := map[string]*asset{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		a := &asset{name: path.Base(p), plain: b, contentType: mime.TypeByExtension(path.Ext(p))}
		if a.contentType == "" {
			a.contentType = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		a.etag = `"` + hex.EncodeToString(sum[:12]) + `"`
		// Compressed once at start: the bundle is mostly the charting
		// library, which gzip shrinks to a third.
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		if buf.Len() < len(b) {
			a.gz = buf.Bytes()
		}
		files[strings.TrimPrefix(p, "assets/")] = a
		return nil
	})
	if err != nil {
		return err
	}
	index := files["index.html"]
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { serve(w, r, index) })
	mux.HandleFunc("GET /assets/{file}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := files[r.PathValue("file")]
		if !ok || a == index {
			http.NotFound(w, r)
			return
		}
		serve(w, r, a)
	})
	mux.HandleFunc("GET /ui/session", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		var demo *Session
		if cfg.Demo != nil {
			demo = cfg.Demo()
		}
		v := struct {
			Demo bool `json:"demo"`
			*Session
		}{Demo: demo != nil, Session: demo}
		json.NewEncoder(w).Encode(v)
	})
	return nil
}

// serve writes a, gzipped when the client accepts it. The files' names
// carry no hash, so browsers revalidate them (no-cache) by ETag.
func serve(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Scripts and connections only from usaged itself; ECharts sets
	// inline styles, hence 'unsafe-inline' for styles alone.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("Vary", "Accept-Encoding")
	body, etag := a.plain, a.etag
	if a.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(body))
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}
