package route

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
)

// maxDocument bounds a route document: OpenAPI documents of large APIs run
// to a few megabytes.
const maxDocument = 64 << 20

// Load reads the route templates in the file at path (see Templates).
func Load(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ts, err := Templates(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}

// Templates reads route templates from an OpenAPI 3 or Swagger 2 document
// in JSON, whose paths are prefixed with the path of the first server URL
// (OpenAPI 3) or the basePath (Swagger 2); or from a plain list, one
// template per line, with blank lines and lines starting with # ignored. A
// document is told from a list by its first non-blank byte, '{'.
func Templates(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDocument+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDocument {
		return nil, fmt.Errorf("route document is larger than %d bytes", maxDocument)
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		return openAPI(t)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no route templates found")
	}
	return out, nil
}

// openAPI reads the paths of an OpenAPI 3 or Swagger 2 document.
func openAPI(b []byte) ([]string, error) {
	var doc struct {
		OpenAPI  string                     `json:"openapi"`
		Swagger  string                     `json:"swagger"`
		BasePath string                     `json:"basePath"`
		Servers  []struct{ URL string }     `json:"servers"`
		Paths    map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("route document is not valid JSON: %v", err)
	}
	var prefix string
	switch {
	case strings.HasPrefix(doc.OpenAPI, "3."):
		if len(doc.Servers) > 0 {
			u, err := url.Parse(doc.Servers[0].URL)
			if err != nil {
				return nil, fmt.Errorf("OpenAPI servers[0].url %q: %v", doc.Servers[0].URL, err)
			}
			prefix = u.Path
		}
	case doc.Swagger == "2.0":
		prefix = doc.BasePath
	default:
		return nil, fmt.Errorf(`route document is neither OpenAPI 3 ("openapi": "3.x") nor Swagger 2 ("swagger": "2.0")`)
	}
	if len(doc.Paths) == 0 {
		return nil, fmt.Errorf("route document has no paths")
	}
	prefix = strings.TrimRight(prefix, "/")
	out := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		out = append(out, prefix+"/"+strings.TrimLeft(p, "/"))
	}
	slices.Sort(out) // map order is random; the first of equal routes names them
	return out, nil
}
