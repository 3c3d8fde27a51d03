package config

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// SourceDefault is the source of a value nobody overrode.
const SourceDefault = "default"

var osEnviron = os.Environ

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

// field resolves a field path to an addressable value inside c.
func (c *Config) field(path string) (reflect.Value, error) {
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
		if c.Services == nil {
			c.Services = map[string]*Service{}
		}
		if c.Services[plane] == nil {
			c.Services[plane] = DefaultService(plane)
		}
		v = reflect.ValueOf(c.Services[plane]).Elem()
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
	return nil
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

// formatValue renders v for Print.
func formatValue(v reflect.Value) string {
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
		// Values may hold secrets: show which keys are set, never the values.
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String()+"=(set)")
		}
		sort.Strings(keys)
		return "{" + strings.Join(keys, ", ") + "}"
	}
	return fmt.Sprint(v.Interface())
}
