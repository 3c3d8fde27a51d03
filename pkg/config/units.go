package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseDuration parses a duration written with a unit ("500ms", "10s",
// "1m30s"). Bare numbers are rejected, except "0".
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty duration (use a number with a unit: 500ms, 10s, 1m)")
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use a number with a unit: 500ms, 10s, 1m)", s)
	}
	return Duration(d), nil
}

// String formats the duration compactly: "10s", "1m", "1h30m", "500ms".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UnmarshalYAML accepts only string scalars such as "10s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return fmt.Errorf("invalid duration %s (write it as a string with a unit: \"500ms\", \"10s\", \"1m\")", nodeText(n))
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalJSON accepts only JSON strings such as "10s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("invalid duration %s (write it as a string with a unit: \"500ms\", \"10s\", \"1m\")", truncate(string(b)))
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so "KiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// ParseSize parses a byte count: plain digits ("1048576") or an integer with
// a binary ("64KiB", "1MiB", "1GiB") or decimal ("1KB", "1MB") unit.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size (use bytes or a unit: 65536, 64KiB, 1MiB)")
	}
	num, mult := t, int64(1)
	lower := strings.ToLower(t)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			num, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	if num == "" || strings.ContainsAny(num[:1], "+-") {
		if strings.HasPrefix(num, "-") {
			return 0, fmt.Errorf("invalid size %q: must not be negative", s)
		}
		return 0, fmt.Errorf("invalid size %q (use bytes or a unit: 65536, 64KiB, 1MiB)", s)
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (use bytes or a unit: 65536, 64KiB, 1MiB)", s)
	}
	if n > uint64(math.MaxInt64/mult) {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(int64(n) * mult), nil
}

// String formats the size with the largest exact binary unit ("64KiB",
// "1MiB"), or as plain bytes.
func (s Size) String() string {
	switch {
	case s != 0 && s%(1<<40) == 0:
		return strconv.FormatInt(int64(s>>40), 10) + "TiB"
	case s != 0 && s%(1<<30) == 0:
		return strconv.FormatInt(int64(s>>30), 10) + "GiB"
	case s != 0 && s%(1<<20) == 0:
		return strconv.FormatInt(int64(s>>20), 10) + "MiB"
	case s != 0 && s%(1<<10) == 0:
		return strconv.FormatInt(int64(s>>10), 10) + "KiB"
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalYAML accepts an integer or a string with a unit.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int") {
		return fmt.Errorf("invalid size %s (use bytes or a unit: 65536, 64KiB, 1MiB)", nodeText(n))
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalYAML writes the size as a string with a unit.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// UnmarshalJSON accepts a JSON integer or a string with a unit.
func (s *Size) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		str = string(b) // a JSON number: parsed as plain bytes below
	}
	v, err := ParseSize(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalJSON writes the size as a string with a unit.
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// nodeText renders a YAML node for an error message.
func nodeText(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!str" {
			return strconv.Quote(truncate(n.Value))
		}
		return truncate(n.Value)
	case yaml.MappingNode:
		return "(a mapping)"
	case yaml.SequenceNode:
		return "(a list)"
	}
	return "(unexpected value)"
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
