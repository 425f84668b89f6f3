// Package openapi holds the OpenAPI 3 document of usaged's HTTP API,
// openapi.yaml, and serves it. The document is the contract: the tests of
// package openapi check that it is well formed and that its bodies have
// the fields of the wire types the server uses, and usaged's end-to-end
// tests that every operation it lists is served and every route served is
// listed.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed openapi.yaml
var document []byte

// YAML returns the document as written.
func YAML() []byte { return document }

var (
	jsonOnce sync.Once
	jsonDoc  []byte
	jsonErr  error
)

// JSON returns the document as JSON.
func JSON() ([]byte, error) {
	jsonOnce.Do(func() {
		var v any
		if jsonErr = yaml.Unmarshal(document, &v); jsonErr != nil {
			return
		}
		jsonDoc, jsonErr = json.Marshal(v)
	})
	return jsonDoc, jsonErr
}

// Mux is where Register adds the routes: an *http.ServeMux, or a server's
// router that puts them behind its middleware.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register serves the document at GET /openapi.json and GET /openapi.yaml.
func Register(mux Mux) {
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(document)
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		b, err := JSON()
		if err != nil { // the tests parse the document, so this does not happen
			http.Error(w, "the OpenAPI document does not parse", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
}

// methods are the operations of an OpenAPI path item.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Operations returns every operation the document lists, as "METHOD /path"
// with the path's {parameters}, sorted.
func Operations() ([]string, error) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(document, &doc); err != nil {
		return nil, fmt.Errorf("openapi: the document does not parse: %w", err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for m := range item {
			if slices.Contains(methods, m) {
				ops = append(ops, strings.ToUpper(m)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops, nil
}
