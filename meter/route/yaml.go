package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// yamlToJSON converts a YAML document to the JSON that states the same,
// keeping the order of every mapping: openAPI reads the paths in the
// document's order. Aliases are expanded, to at most a million nodes more
// than the document has bytes (a document without aliases has fewer nodes
// than bytes) and maxDocument bytes of output, so that a few nested aliases
// cannot grow a small file without bound.
func yamlToJSON(b []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("route document is not valid YAML: %v", err)
	}
	if doc.Kind == 0 { // no document at all
		return nil, errors.New("route document is empty YAML")
	}
	w := yamlWriter{nodes: len(b) + 1<<20}
	if err := w.node(&doc, false); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}

type yamlWriter struct {
	buf   bytes.Buffer
	depth int
	nodes int // how many more nodes may be written
}

// errYAMLTooLarge is the error of a document whose aliases expand beyond
// the limits of yamlToJSON.
var errYAMLTooLarge = errors.New("route document is YAML whose aliases expand beyond any real document: write the repeated parts out")

// node writes n as JSON. version says n is the value of the root's openapi
// or swagger key, which is kept as written: "swagger: 2.0" unquoted is a
// YAML number, and "2" is no version.
func (w *yamlWriter) node(n *yaml.Node, version bool) error {
	if w.nodes--; w.nodes < 0 || w.buf.Len() > maxDocument {
		return errYAMLTooLarge
	}
	if w.depth++; w.depth > 1000 {
		return errors.New("route document is YAML nested deeper than 1000 levels")
	}
	defer func() { w.depth-- }()
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			w.buf.WriteString("null")
			return nil
		}
		return w.root(n.Content[0])
	case yaml.AliasNode:
		return w.node(n.Alias, version)
	case yaml.SequenceNode:
		w.buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				w.buf.WriteByte(',')
			}
			if err := w.node(c, false); err != nil {
				return err
			}
		}
		w.buf.WriteByte(']')
		return nil
	case yaml.MappingNode:
		return w.mapping(n, false)
	case yaml.ScalarNode:
		return w.scalar(n, version)
	}
	return fmt.Errorf("route document: line %d: YAML node kind %d is not supported", n.Line, n.Kind)
}

// root writes the document's top node, whose version keys are kept as
// written.
func (w *yamlWriter) root(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return w.node(n, false)
	}
	w.depth++
	defer func() { w.depth-- }()
	return w.mapping(n, true)
}

func (w *yamlWriter) mapping(n *yaml.Node, root bool) error {
	w.buf.WriteByte('{')
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("route document: line %d: a YAML key that is not a scalar has no JSON form", k.Line)
		}
		if k.Tag == "!!merge" {
			return fmt.Errorf("route document: line %d: YAML merge keys (<<) are not supported: write the keys out", k.Line)
		}
		if i > 0 {
			w.buf.WriteByte(',')
		}
		w.str(k.Value) // JSON keys are strings: a YAML key 200 is "200"
		w.buf.WriteByte(':')
		if err := w.node(v, root && (k.Value == "openapi" || k.Value == "swagger")); err != nil {
			return err
		}
	}
	w.buf.WriteByte('}')
	return nil
}

func (w *yamlWriter) scalar(n *yaml.Node, version bool) error {
	if version {
		w.str(n.Value)
		return nil
	}
	switch n.ShortTag() {
	case "!!str", "!!binary", "!!timestamp":
		w.str(n.Value)
		return nil
	case "!!null":
		w.buf.WriteString("null")
		return nil
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("route document: line %d: %v", n.Line, err)
		}
		w.buf.WriteString(strconv.FormatBool(v))
		return nil
	case "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("route document: line %d: %v", n.Line, err)
		}
		j, err := json.Marshal(v)
		if err != nil { // .inf and .nan have no JSON form
			w.str(n.Value)
			return nil
		}
		w.buf.Write(j)
		return nil
	}
	w.str(n.Value) // a custom tag: its text
	return nil
}

func (w *yamlWriter) str(s string) {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		plain = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\'
	}
	if plain { // most names and paths need no escaping
		w.buf.WriteByte('"')
		w.buf.WriteString(s)
		w.buf.WriteByte('"')
		return
	}
	j, _ := json.Marshal(s) // a string always marshals
	w.buf.Write(j)
}
