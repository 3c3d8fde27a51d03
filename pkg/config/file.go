package config

import (
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
	line   int
	decode func(ptr any) error
}

// lineError is one problem of a config file at a line (0: no line).
type lineError struct {
	line int
	err  error
}

func (e lineError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %v", e.line, e.err)
	}
	return e.err.Error()
}

func (e lineError) Unwrap() error { return e.err }

// applyFile overlays the file at path onto c, recording "file <path>" as
// the source of every field the file sets. origin says who named the file
// ("--config", "RON_CONFIG") for errors about the file as a whole.
func (c *Config) applyFile(path, origin string) error {
	fail := func(err error) error {
		return fmt.Errorf("config file %s (from %s): %w", path, origin, err)
	}
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".yaml" && ext != ".yml" && ext != ".json" {
		return fail(fmt.Errorf("unsupported extension %q (use .yaml, .yml or .json)", ext))
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return fail(err)
	}
	if len(data) > maxFileBytes {
		return fail(fmt.Errorf("larger than %d bytes", maxFileBytes))
	}
	return c.applyData(path, ext, data)
}

// applyData overlays a file's contents; ext selects the format. Every
// problem the file has (syntax aside) is reported at once, in line order:
// unknown keys, duplicate keys and values that do not parse. Valid values
// are applied even when others are not.
func (c *Config) applyData(path, ext string, data []byte) error {
	var leaves []leaf
	var problems []lineError
	var err error
	if ext == ".json" {
		leaves, problems, err = jsonLeaves(data)
	} else {
		leaves, problems, err = yamlLeaves(data)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, l := range leaves {
		if err := c.applyLeaf(l, "file "+path); err != nil {
			problems = append(problems, lineError{l.line, err})
		}
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].line < problems[j].line })
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = fmt.Errorf("%s: %w", path, p)
	}
	return errors.Join(errs...)
}

func (c *Config) applyLeaf(l leaf, source string) error {
	dst, err := c.field(l.path)
	if err != nil {
		return err
	}
	v := reflect.New(dst.Type())
	if err := l.decode(v.Interface()); err != nil {
		return fmt.Errorf("%s: %s", l.path, cleanDecodeError(err))
	}
	dst.Set(v.Elem())
	c.setSource(l.path, source)
	c.normalise(l.path, dst)
	return nil
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
