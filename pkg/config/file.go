package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxFileBytes caps the size of a config file.
const maxFileBytes = 4 << 20

// leaf is one value found in a file, addressed by its field path.
type leaf struct {
	path   string
	line   int // 0 when unknown (JSON)
	decode func(ptr any) error
}

// applyFile overlays the file at path onto c, recording "file <path>" as
// the source of every field the file sets.
func (c *Config) applyFile(path string) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".yaml" && ext != ".yml" && ext != ".json" {
		return fmt.Errorf("config file %s: unsupported extension %q (use .yaml, .yml or .json)", path, ext)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return fmt.Errorf("config file %s: larger than %d bytes", path, maxFileBytes)
	}
	return c.applyData(path, ext, data)
}

// applyData overlays a file's contents; ext selects the format.
func (c *Config) applyData(path, ext string, data []byte) error {
	var leaves []leaf
	var err error
	if ext == ".json" {
		leaves, err = jsonLeaves(data)
	} else {
		leaves, err = yamlLeaves(data)
	}
	if err != nil {
		return prefixErrors(path, err)
	}
	var errs []error
	for _, l := range leaves {
		if err := c.applyLeaf(l, "file "+path); err != nil {
			errs = append(errs, err)
		}
	}
	return prefixErrors(path, errors.Join(errs...))
}

func (c *Config) applyLeaf(l leaf, source string) error {
	where := ""
	if l.line > 0 {
		where = fmt.Sprintf("line %d: ", l.line)
	}
	dst, err := c.field(l.path)
	if err != nil {
		return fmt.Errorf("%s%w", where, err)
	}
	v := reflect.New(dst.Type())
	if err := l.decode(v.Interface()); err != nil {
		return fmt.Errorf("%s%s: %s", where, l.path, cleanDecodeError(err))
	}
	dst.Set(v.Elem())
	c.setSource(l.path, source)
	return nil
}

// prefixErrors puts "path: " in front of each joined error.
func prefixErrors(path string, err error) error {
	if err == nil {
		return nil
	}
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) && len(multi.Unwrap()) > 1 {
		errs := multi.Unwrap()
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = prefixErrors(path, e)
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// cleanDecodeError strips the decoders' prefixes so messages read as
// "cannot unmarshal !!str `x` into int".
func cleanDecodeError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			if _, rest, ok := strings.Cut(m, ": "); ok && strings.HasPrefix(m, "line ") {
				m = rest
			}
			msgs[i] = m
		}
		return strings.Join(msgs, "; ")
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return fmt.Sprintf("cannot use a JSON %s as %s", ute.Value, ute.Type)
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// yamlLeaves parses data and walks it against the Config type: unknown keys,
// unknown planes and duplicate keys are errors; each leaf is decoded later
// into the field's own type.
func yamlLeaves(data []byte) ([]leaf, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file sets nothing
		}
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("line %d: a config file holds a single YAML document", extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	var w yamlWalker
	w.walk(root, reflect.TypeOf(Config{}), "")
	return w.leaves, errors.Join(w.errs...)
}

type yamlWalker struct {
	leaves []leaf
	errs   []error
}

func (w *yamlWalker) errorf(n *yaml.Node, format string, args ...any) {
	w.errs = append(w.errs, fmt.Errorf("line %d: "+format, append([]any{n.Line}, args...)...))
}

// mapping returns the key/value pairs of a mapping node, reporting
// duplicates and anything that is not a mapping.
func (w *yamlWalker) mapping(n *yaml.Node, where string) [][2]*yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		w.errorf(n, "%s must be a mapping, not %s", where, nodeText(n))
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

func (w *yamlWalker) walk(n *yaml.Node, t reflect.Type, prefix string) {
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
			node := v
			w.leaves = append(w.leaves, leaf{path: path, line: v.Line, decode: node.Decode})
		}
	}
}

// jsonLeaves is yamlLeaves for JSON documents (no line numbers).
func jsonLeaves(data []byte) ([]leaf, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("line %d: %w", lineAt(data, se.Offset), err)
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("line %d: unexpected data after the JSON object", lineAt(data, dec.InputOffset()))
	}
	if root == nil {
		return nil, nil
	}
	var leaves []leaf
	var errs []error
	var walk func(v any, t reflect.Type, prefix string)
	walk = func(v any, t reflect.Type, prefix string) {
		where := strings.TrimSuffix(prefix, ".")
		if where == "" {
			where = "the top level"
		}
		obj, ok := v.(map[string]any)
		if !ok {
			if v != nil {
				errs = append(errs, fmt.Errorf("%s must be an object", where))
			}
			return
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := structField(t, k)
			if !ok {
				if prefix == "" {
					errs = append(errs, fmt.Errorf("unknown field %q", k))
				} else {
					errs = append(errs, fmt.Errorf("unknown field %q in %s", k, where))
				}
				continue
			}
			path := prefix + k
			switch {
			case f.Type == servicesType:
				planes, ok := obj[k].(map[string]any)
				if !ok && obj[k] != nil {
					errs = append(errs, fmt.Errorf("%s must be an object", path))
				}
				names := make([]string, 0, len(planes))
				for p := range planes {
					names = append(names, p)
				}
				sort.Strings(names)
				for _, p := range names {
					if !isPlane(p) {
						errs = append(errs, fmt.Errorf("unknown service %q under services (known: %s)", p, strings.Join(Planes, ", ")))
						continue
					}
					walk(planes[p], serviceType, path+"."+p+".")
				}
			case f.Type.Kind() == reflect.Struct:
				walk(obj[k], f.Type, path+".")
			default:
				raw, err := json.Marshal(obj[k])
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", path, err))
					continue
				}
				leaves = append(leaves, leaf{path: path, decode: func(ptr any) error { return json.Unmarshal(raw, ptr) }})
			}
		}
	}
	walk(root, reflect.TypeOf(Config{}), "")
	return leaves, errors.Join(errs...)
}

func lineAt(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}
