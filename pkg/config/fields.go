package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// SourceDefault is the source of a value nobody overrode.
const SourceDefault = "default"

var (
	durationType = reflect.TypeOf(Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
	servicesType = reflect.TypeOf(map[string]*Service(nil))
	serviceType  = reflect.TypeOf(Service{})
)

// FieldPaths lists every settable field path ("http_addr", "admin_tls.cert",
// "services.storage.backoff.initial", ...) in a stable order: top-level
// fields in declaration order, then each plane in Planes order.
func (c *Config) FieldPaths() []string {
	var out []string
	leafPaths(reflect.TypeOf(Config{}), "", &out)
	return out
}

func leafPaths(t reflect.Type, prefix string, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		switch {
		case f.Type == servicesType:
			for _, p := range Planes {
				leafPaths(serviceType, prefix+name+"."+p+".", out)
			}
		case f.Type.Kind() == reflect.Struct:
			leafPaths(f.Type, prefix+name+".", out)
		default:
			*out = append(*out, prefix+name)
		}
	}
}

// yamlName returns the field's key in files and paths, "" if it has none.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// structField finds the field of struct type t whose key is name.
func structField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); yamlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldNames lists the keys of struct type t, for error messages.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if n := yamlName(t.Field(i)); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func isPlane(name string) bool {
	for _, p := range Planes {
		if p == name {
			return true
		}
	}
	return false
}

// field resolves a field path to an addressable value inside c, creating
// a plane's DefaultService entry if c lacks it (for setting).
func (c *Config) field(path string) (reflect.Value, error) {
	return c.lookup(path, true)
}

// lookup resolves a field path. With create false it never modifies c: a
// plane missing from c.Services reads as its DefaultService values.
func (c *Config) lookup(path string, create bool) (reflect.Value, error) {
	v := reflect.ValueOf(c).Elem()
	parts := strings.Split(path, ".")
	for i := 0; i < len(parts); i++ {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, fmt.Errorf("unknown field %q", path)
		}
		f, ok := structField(v.Type(), parts[i])
		if !ok {
			return reflect.Value{}, fmt.Errorf("unknown field %q", path)
		}
		v = v.FieldByIndex(f.Index)
		if f.Type != servicesType {
			continue
		}
		if i+2 >= len(parts) {
			return reflect.Value{}, fmt.Errorf("unknown field %q (name a plane setting, e.g. services.storage.listen)", path)
		}
		plane := parts[i+1]
		if !isPlane(plane) {
			return reflect.Value{}, fmt.Errorf("unknown service %q in %q (known: %s)", plane, path, strings.Join(Planes, ", "))
		}
		svc := c.Services[plane]
		if svc == nil {
			svc = DefaultService(plane)
			if create {
				if c.Services == nil {
					c.Services = map[string]*Service{}
				}
				c.Services[plane] = svc
			}
		}
		v = reflect.ValueOf(svc).Elem()
		i++
	}
	if v.Kind() == reflect.Struct {
		return reflect.Value{}, fmt.Errorf("field %q is a group; name one of its fields (%s)", path, strings.Join(fieldNames(v.Type()), ", "))
	}
	return v, nil
}

// Set parses value for the field at path and records source for it. It is
// how environment variables and flags are applied.
func (c *Config) Set(path, value, source string) error {
	v, err := c.field(path)
	if err != nil {
		return err
	}
	if err := setString(v, value); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	c.setSource(path, source)
	c.normalise(path, v)
	return nil
}

// lowerCaseFields hold keywords compared in lower case: "INFO" is stored as
// "info", whichever layer set it.
var lowerCaseFields = map[string]bool{"log_level": true, "log_format": true, "pq_mode": true}

// normalise canonicalises the value just set at path (v is its field).
func (c *Config) normalise(path string, v reflect.Value) {
	if lowerCaseFields[path] && v.Kind() == reflect.String {
		v.SetString(strings.ToLower(strings.TrimSpace(v.String())))
	}
}

func (c *Config) setSource(path, source string) {
	if c.Sources == nil {
		c.Sources = map[string]string{}
	}
	c.Sources[path] = source
}

// Source reports which layer set the field at path ("default" if none did).
func (c *Config) Source(path string) string {
	if s, ok := c.Sources[path]; ok {
		return s
	}
	return SourceDefault
}

// setString parses s into v according to v's type.
func setString(v reflect.Value, s string) error {
	switch v.Type() {
	case durationType:
		d, err := ParseDuration(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(d))
		return nil
	case sizeType:
		n, err := ParseSize(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(n))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := parseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(int64(n))
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		v.Set(reflect.ValueOf(splitList(s)))
	case reflect.Map:
		m := map[string]string{}
		for _, kv := range splitList(s) {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("invalid entry %q (want KEY=VALUE,KEY2=VALUE2)", kv)
			}
			m[k] = val
		}
		v.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("cannot set a %s from text", v.Type())
	}
	return nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, nil
	case "0", "f", "false", "no", "n", "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q (use true or false)", s)
}

// splitList splits "a, b,c" into [a b c], dropping empty items.
func splitList(s string) []string {
	out := []string{}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// formatValue renders v for Print (redact true: map values hidden) or for
// Value (redact false: everything as it is).
func formatValue(v reflect.Value, redact bool) string {
	switch v.Type() {
	case durationType, sizeType:
		return fmt.Sprint(v.Interface())
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = strconv.Quote(v.Index(i).String())
		}
		return "[" + strings.Join(items, ", ") + "]"
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		items := make([]string, len(keys))
		for i, k := range keys {
			val := "(set)" // values may hold secrets: Print shows only which keys are set
			if !redact {
				val = strconv.Quote(v.MapIndex(reflect.ValueOf(k)).String())
			}
			items[i] = mapKey(k) + "=" + val
		}
		return "{" + strings.Join(items, ", ") + "}"
	}
	return fmt.Sprint(v.Interface())
}

// mapKey shows a map key bare when it is a plain name, else quoted, so
// that distinct maps always format differently.
func mapKey(k string) string {
	if k == "" {
		return `""`
	}
	for _, r := range k {
		if !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return strconv.Quote(k)
		}
	}
	return k
}
