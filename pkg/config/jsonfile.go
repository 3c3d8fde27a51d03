package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxJSONDepth bounds the nesting of a JSON config file (the deepest real
// setting is services.<plane>.backoff.initial).
const maxJSONDepth = 32

// jsonLeaves is yamlLeaves for JSON documents. The document is read token
// by token into a yaml.Node tree with line numbers, so the same walker
// judges both formats; duplicate keys at any depth are problems (JSON
// decoders would silently keep the last), and leaves decode with
// encoding/json.
func jsonLeaves(data []byte) ([]leaf, []lineError, error) {
	p := &jsonParser{data: data, dec: json.NewDecoder(bytes.NewReader(data)), values: map[*yaml.Node]any{}}
	p.dec.UseNumber()
	for i, b := range data {
		if b == '\n' {
			p.newlines = append(p.newlines, i)
		}
	}
	root, _, err := p.value("the top level", 0)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil // an empty file sets nothing
		}
		return nil, nil, p.syntaxError(err)
	}
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("line %d: unexpected data after the JSON object", p.line(p.dec.InputOffset()))
	}
	if root.Tag == "!!null" {
		return nil, nil, nil
	}
	w := treeWalker{mapWord: "an object", errs: p.errs, decoder: func(n *yaml.Node) func(any) error {
		val := p.values[n]
		return func(ptr any) error {
			raw, err := json.Marshal(val)
			if err != nil {
				return err
			}
			return json.Unmarshal(raw, ptr)
		}
	}}
	w.walk(root, reflect.TypeOf(Config{}), "")
	return w.leaves, w.errs, nil
}

type jsonParser struct {
	data     []byte
	dec      *json.Decoder
	newlines []int              // offsets of '\n' in data
	values   map[*yaml.Node]any // each node's decoded value, for leaves
	errs     []lineError        // duplicate keys
}

// line is the 1-based line of the byte just before offset (the end of the
// token the decoder last returned; a JSON token never spans lines).
func (p *jsonParser) line(offset int64) int {
	return 1 + sort.SearchInts(p.newlines, int(offset)-1)
}

func (p *jsonParser) syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("line %d: %w", p.line(se.Offset), err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("line %d: unexpected end of JSON input", p.line(int64(len(p.data))))
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// value reads one JSON value; where names it for messages.
func (p *jsonParser) value(where string, depth int) (*yaml.Node, any, error) {
	tok, err := p.dec.Token()
	if err != nil {
		if depth > 0 {
			err = midValue(err)
		}
		return nil, nil, err
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Line: p.line(p.dec.InputOffset())}
	var val any
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, nil, fmt.Errorf("line %d: nested deeper than %d levels", n.Line, maxJSONDepth)
		}
		switch t {
		case '{':
			val, err = p.object(n, where, depth)
		case '[':
			val, err = p.array(n, where, depth)
		default:
			err = fmt.Errorf("line %d: unexpected %q", n.Line, t)
		}
		if err != nil {
			return nil, nil, err
		}
	case string:
		n.Tag, n.Value, val = "!!str", t, t
	case json.Number:
		n.Tag, n.Value, val = "!!int", t.String(), t
		if strings.ContainsAny(n.Value, ".eE") {
			n.Tag = "!!float"
		}
	case bool:
		n.Tag, n.Value, val = "!!bool", fmt.Sprint(t), t
	case nil:
		n.Tag, n.Value = "!!null", "null"
	}
	p.values[n] = val
	return n, val, nil
}

func (p *jsonParser) object(n *yaml.Node, where string, depth int) (map[string]any, error) {
	n.Kind, n.Tag = yaml.MappingNode, "!!map"
	obj := map[string]any{}
	for p.dec.More() {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, midValue(err)
		}
		key, ok := tok.(string)
		if !ok { // the decoder only yields string keys; be safe anyway
			return nil, fmt.Errorf("line %d: object keys must be strings", p.line(p.dec.InputOffset()))
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: p.line(p.dec.InputOffset())}
		childWhere := strings.TrimPrefix(where+"."+key, "the top level.")
		child, cv, err := p.value(childWhere, depth+1)
		if err != nil {
			return nil, err
		}
		if _, dup := obj[key]; dup {
			p.errs = append(p.errs, lineError{k.Line, fmt.Errorf("duplicate key %q in %s", key, where)})
			continue
		}
		obj[key] = cv
		n.Content = append(n.Content, k, child)
	}
	if _, err := p.dec.Token(); err != nil { // the closing '}'
		return nil, midValue(err)
	}
	return obj, nil
}

func (p *jsonParser) array(n *yaml.Node, where string, depth int) ([]any, error) {
	n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
	arr := []any{}
	for i := 0; p.dec.More(); i++ {
		child, cv, err := p.value(fmt.Sprintf("%s[%d]", where, i), depth+1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, cv)
		n.Content = append(n.Content, child)
	}
	if _, err := p.dec.Token(); err != nil { // the closing ']'
		return nil, midValue(err)
	}
	return arr, nil
}

// midValue turns the end of input inside a value into io.ErrUnexpectedEOF
// (a bare io.EOF means an empty file).
func midValue(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
