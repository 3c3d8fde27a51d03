package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlLeaves parses data and walks it against the Config type: unknown keys,
// unknown planes and duplicate keys are problems; each leaf is decoded later
// into the field's own type. A syntax error is returned as err.
func yamlLeaves(data []byte) ([]leaf, []lineError, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil // an empty file sets nothing
		}
		return nil, nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("line %d: a config file holds a single YAML document", extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil, nil
	}
	w := treeWalker{mapWord: "a mapping"}
	w.walk(root, reflect.TypeOf(Config{}), "")
	return w.leaves, w.errs, nil
}

// treeWalker walks a yaml.Node tree (from YAML, or built from JSON) against
// the Config type.
type treeWalker struct {
	mapWord string // "a mapping" (YAML) or "an object" (JSON), for messages
	// decoder returns how to decode a leaf node; nil means n.Decode.
	decoder func(n *yaml.Node) func(ptr any) error
	leaves  []leaf
	errs    []lineError
}

func (w *treeWalker) errorf(n *yaml.Node, format string, args ...any) {
	w.errs = append(w.errs, lineError{n.Line, fmt.Errorf(format, args...)})
}

// mapping returns the key/value pairs of a mapping node, reporting
// duplicates and anything that is not a mapping.
func (w *treeWalker) mapping(n *yaml.Node, where string) [][2]*yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		w.errorf(n, "%s must be %s, not %s", where, w.mapWord, nodeText(n))
		return nil
	}
	seen := map[string]bool{}
	var pairs [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.errorf(k, "%s: keys must be plain names", where)
			continue
		}
		if k.Value == "<<" {
			w.errorf(k, "%s: merge keys (<<) are not supported", where)
			continue
		}
		if seen[k.Value] {
			w.errorf(k, "duplicate key %q in %s", k.Value, where)
			continue
		}
		seen[k.Value] = true
		pairs = append(pairs, [2]*yaml.Node{k, v})
	}
	return pairs
}

func (w *treeWalker) walk(n *yaml.Node, t reflect.Type, prefix string) {
	where := strings.TrimSuffix(prefix, ".")
	if where == "" {
		where = "the top level"
	}
	for _, kv := range w.mapping(n, where) {
		k, v := kv[0], kv[1]
		f, ok := structField(t, k.Value)
		if !ok {
			if prefix == "" {
				w.errorf(k, "unknown field %q", k.Value)
			} else {
				w.errorf(k, "unknown field %q in %s", k.Value, where)
			}
			continue
		}
		path := prefix + k.Value
		switch {
		case f.Type == servicesType:
			for _, pv := range w.mapping(v, path) {
				if !isPlane(pv[0].Value) {
					w.errorf(pv[0], "unknown service %q under services (known: %s)", pv[0].Value, strings.Join(Planes, ", "))
					continue
				}
				w.walk(pv[1], serviceType, path+"."+pv[0].Value+".")
			}
		case f.Type.Kind() == reflect.Struct:
			w.walk(v, f.Type, path+".")
		default:
			decode := v.Decode
			if w.decoder != nil {
				decode = w.decoder(v)
			}
			w.leaves = append(w.leaves, leaf{path: path, line: v.Line, decode: decode})
		}
	}
}
