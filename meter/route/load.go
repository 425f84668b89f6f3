package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
)

// maxDocument bounds a route document: the OpenAPI documents of large APIs
// run to tens of megabytes, and a file larger still is not one.
const maxDocument = 64 << 20

// maxErrors is how many problems of a document are reported one by one: a
// file that is no route document at all would otherwise yield one per line.
const maxErrors = 20

// Load reads the route templates in the file at path (see Templates); its
// errors name the file. A file named *.yaml or *.yml is read as a YAML
// OpenAPI or Swagger document, whatever its content looks like, so that a
// YAML file that is not one is told so rather than read as a list.
func Load(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ext := strings.ToLower(path.Ext(name))
	ts, err := templates(f, ext == ".yaml" || ext == ".yml")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return ts, nil
}

// Templates reads route templates, in the order the document gives them,
// from one of:
//
//   - an OpenAPI 3 document in JSON or YAML, whose paths are prefixed with the path
//     of the first server URL ("https://api.example.com/api/v2" and
//     "/api/v2" both give "/api/v2"; server variables take their defaults),
//     or of a path's own first server where it has one;
//   - a Swagger 2 document in JSON or YAML, whose paths are prefixed with its
//     basePath;
//   - a plain list, one template per line, where blank lines and lines
//     starting with # are ignored.
//
// The format is told from the content: a JSON document is an object, a
// YAML one has its openapi or swagger key on a line of its own. YAML is
// converted to the JSON that states the same, in the same order, and read
// as JSON is, so both forms give the same templates. Every template is checked as
// New checks it, so the errors name the line or the OpenAPI path at fault;
// templates read without error compile, unless one of them is the
// catch-all.
func Templates(r io.Reader) ([]string, error) { return templates(r, false) }

// templates is Templates, reading any document that is not JSON as YAML
// when isYAML is set.
func templates(r io.Reader, isYAML bool) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDocument+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDocument {
		return nil, fmt.Errorf("route document is larger than %d bytes", maxDocument)
	}
	b = bytes.TrimPrefix(b, []byte("\uFEFF")) // editors on Windows start files with a byte-order mark
	switch {
	case isJSONObject(b):
		return openAPI(b)
	case isYAML || isYAMLDocument(b):
		j, err := yamlToJSON(b)
		if err != nil {
			return nil, err
		}
		return openAPI(j)
	}
	return list(b)
}

// isJSONObject reports whether b starts like a JSON object. A template may
// start with a brace too ("{tenant}/users"), but never with "{" followed
// by a quote or a closing brace.
func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	b = bytes.TrimSpace(b[1:])
	return len(b) == 0 || b[0] == '"' || b[0] == '}'
}

// isYAMLDocument reports whether b is an OpenAPI or Swagger document in
// YAML: each of them has its version key on a line of its own.
func isYAMLDocument(b []byte) bool {
	for line := range strings.Lines(string(b)) {
		line = strings.Trim(strings.TrimSpace(line), `"'`)
		for _, key := range []string{"openapi", "swagger"} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				if rest = strings.TrimLeft(rest, `"' `); strings.HasPrefix(rest, ":") {
					return true
				}
			}
		}
	}
	return false
}

// problems collects the errors of a document, up to maxErrors of them.
type problems struct {
	errs []error
	more int
}

func (p *problems) add(err error) {
	if len(p.errs) < maxErrors {
		p.errs = append(p.errs, err)
	} else {
		p.more++
	}
}

func (p *problems) err() error {
	if p.more > 0 {
		p.errs = append(p.errs, fmt.Errorf("and %d more problems", p.more))
	}
	return errors.Join(p.errs...)
}

// list reads a plain list of templates.
func list(b []byte) ([]string, error) {
	var out []string
	var errs problems
	no := 0
	for line := range strings.Lines(string(b)) {
		no++
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := parse(line); err != nil {
			errs.add(fmt.Errorf("line %d: %w", no, err))
			continue
		}
		out = append(out, line)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no route templates found: expected an OpenAPI document or one template per line")
	}
	return out, nil
}

// server is an OpenAPI 3 Server Object.
type server struct {
	URL       string `json:"url"`
	Variables map[string]struct {
		Default *string `json:"default"`
	} `json:"variables"`
}

// openAPI reads the paths of an OpenAPI 3 or Swagger 2 document.
func openAPI(b []byte) ([]string, error) {
	var doc struct {
		OpenAPI  *string         `json:"openapi"`
		Swagger  *string         `json:"swagger"`
		BasePath string          `json:"basePath"`
		Servers  []server        `json:"servers"`
		Paths    json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, jsonError(b, err)
	}
	v3 := false
	var prefix string
	switch {
	case doc.OpenAPI != nil:
		if !strings.HasPrefix(*doc.OpenAPI, "3.") {
			return nil, fmt.Errorf("route document is OpenAPI %q; only OpenAPI 3.x and Swagger 2.0 are supported", *doc.OpenAPI)
		}
		v3 = true
		if len(doc.Servers) > 0 {
			p, err := serverPath(doc.Servers[0])
			if err != nil {
				return nil, fmt.Errorf("route document: servers[0].%w", err)
			}
			prefix = p
		}
	case doc.Swagger != nil:
		if *doc.Swagger != "2.0" {
			return nil, fmt.Errorf("route document is Swagger %q; only OpenAPI 3.x and Swagger 2.0 are supported", *doc.Swagger)
		}
		prefix = cleanPrefix(doc.BasePath)
	default:
		return nil, errors.New(`route document is neither OpenAPI 3 ("openapi": "3.x") nor Swagger 2 ("swagger": "2.0")`)
	}

	// The paths object is walked token by token, not decoded into a map, to
	// keep the document's order: the first of the paths that differ only in
	// parameter names names their route, and the author's order is the one
	// to expect there.
	dec := json.NewDecoder(bytes.NewReader(doc.Paths))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("route document has no paths: it needs a \"paths\" object")
	}
	var out []string
	var errs problems
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, jsonError(b, err)
		}
		key := t.(string) // an object's member names are strings
		var item json.RawMessage
		if err := dec.Decode(&item); err != nil {
			return nil, jsonError(b, err)
		}
		if strings.HasPrefix(key, "x-") {
			continue // an extension, not a path
		}
		if !strings.HasPrefix(key, "/") {
			errs.add(fmt.Errorf("paths[%q]: a path must begin with /", key))
			continue
		}
		var pi struct {
			Servers []server `json:"servers"`
		}
		if err := json.Unmarshal(item, &pi); err != nil || item[0] != '{' {
			errs.add(fmt.Errorf("paths[%q]: a path item must be an object (with valid servers, if any)", key))
			continue
		}
		p := prefix
		if v3 && len(pi.Servers) > 0 { // a path's own servers stand in for the document's
			if p, err = serverPath(pi.Servers[0]); err != nil {
				errs.add(fmt.Errorf("paths[%q].servers[0].%w", key, err))
				continue
			}
		}
		tmpl := p + key
		if _, err := parse(tmpl); err != nil {
			errs.add(fmt.Errorf("paths[%q]: %w", key, err))
			continue
		}
		out = append(out, tmpl)
	}
	if err := errs.err(); err != nil {
		return nil, fmt.Errorf("route document: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("route document has no paths")
	}
	return out, nil
}

// serverPath returns the path part of a server's URL, its variables
// replaced by their defaults: the prefix of every path it serves.
func serverPath(s server) (string, error) {
	var u strings.Builder
	rest := s.URL
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			u.WriteString(rest)
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("url %q has an unbalanced brace", s.URL)
		}
		name := rest[i+1 : i+j]
		v, ok := s.Variables[name]
		if !ok || v.Default == nil {
			return "", fmt.Errorf("url %q uses variable {%s}, which has no default in variables", s.URL, name)
		}
		u.WriteString(rest[:i])
		u.WriteString(*v.Default)
		rest = rest[i+j+1:]
	}
	pu, err := url.Parse(u.String())
	if err != nil {
		return "", fmt.Errorf("url %q: %v", s.URL, err)
	}
	return cleanPrefix(pu.Path), nil
}

// cleanPrefix makes a server's path a prefix for paths: rooted, without a
// trailing slash, and with "." and ".." resolved, so that a URL relative
// to the document (".", "v2", "") serves from the root of the host.
func cleanPrefix(p string) string {
	return strings.TrimSuffix(path.Join("/", p), "/")
}

// jsonError describes a JSON error with where in the document it is.
func jsonError(b []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line := 1 + bytes.Count(b[:min(int(syn.Offset), len(b))], []byte("\n"))
		if syn.Offset >= int64(len(b)) {
			return fmt.Errorf("route document is not valid JSON: it ends early, at line %d", line)
		}
		return fmt.Errorf("route document is not valid JSON: line %d: %v", line, err)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Errorf("route document: %s is a JSON %s, which OpenAPI does not allow there", typ.Field, typ.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("route document is not valid JSON: it ends early")
	}
	return fmt.Errorf("route document is not valid JSON: %v", err)
}
