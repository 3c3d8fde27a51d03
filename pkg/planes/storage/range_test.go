package storage

import (
	"errors"
	"strings"
	"testing"
)

var goodHex = strings.Repeat("0123456789abcdef", 4)

func TestParseRange(t *testing.T) {
	tests := []struct {
		h             string
		size          int64
		start, length int64
		ok            bool
		err           error
	}{
		{"bytes=0-99", 1000, 0, 100, true, nil},
		{"bytes=10-10", 1000, 10, 1, true, nil},
		{"bytes=990-", 1000, 990, 10, true, nil},
		{"bytes=-10", 1000, 990, 10, true, nil},
		{"bytes=-2000", 1000, 0, 1000, true, nil},
		{"bytes=500-5000", 1000, 500, 500, true, nil},
		{"bytes= 5-6 ", 1000, 5, 2, true, nil},
		{"bytes=999-999", 1000, 999, 1, true, nil},
		{"bytes=1000-", 1000, 0, 0, false, errRangeUnsatisfiable},
		{"bytes=1000-2000", 1000, 0, 0, false, errRangeUnsatisfiable},
		{"bytes=-0", 1000, 0, 0, false, errRangeUnsatisfiable},
		{"bytes=0-", 0, 0, 0, false, errRangeUnsatisfiable},
		{"bytes=-5", 0, 0, 0, false, errRangeUnsatisfiable},
		{"bytes=5-3", 1000, 0, 0, false, errRangeInvalid},
		{"bytes=abc", 1000, 0, 0, false, errRangeInvalid},
		{"bytes=-", 1000, 0, 0, false, errRangeInvalid},
		{"bytes=+1-2", 1000, 0, 0, false, errRangeInvalid},
		{"bytes=1--2", 1000, 0, 0, false, errRangeInvalid},
		{"bytes=99999999999999999999-", 1000, 0, 0, false, errRangeUnsatisfiable},
		// Positions past the end, however large, mean "to the end".
		{"bytes=0-9223372036854775807", 1000, 0, 1000, true, nil},
		{"bytes=0-9223372036854775808", 1000, 0, 1000, true, nil},
		{"bytes=10-99999999999999999999999999", 1000, 10, 990, true, nil},
		{"bytes=0-9223372036854775807", 1, 0, 1, true, nil},
		{"bytes=-9223372036854775807", 1000, 0, 1000, true, nil},
		{"bytes=-99999999999999999999", 1000, 0, 1000, true, nil},
		{"bytes=9223372036854775807-", 1000, 0, 0, false, errRangeUnsatisfiable},
		{"bytes=9223372036854775807-9223372036854775807", 1000, 0, 0, false, errRangeUnsatisfiable},
		{"bytes=0-99999999999999999999x", 1000, 0, 0, false, errRangeInvalid},
		{"bytes=00000000000000000000005-6", 1000, 5, 2, true, nil},
		{"bytes=0-1,5-6", 1000, 0, 0, false, nil},
		{"items=0-5", 1000, 0, 0, false, nil},
	}
	for _, tt := range tests {
		start, length, ok, err := parseRange(tt.h, tt.size)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("parseRange(%q, %d) err = %v, want %v", tt.h, tt.size, err, tt.err)
			continue
		}
		if ok != tt.ok || start != tt.start || length != tt.length {
			t.Errorf("parseRange(%q, %d) = %d,%d,%v want %d,%d,%v", tt.h, tt.size, start, length, ok, tt.start, tt.length, tt.ok)
		}
	}
}

func TestETagMatches(t *testing.T) {
	etag := `"b3:` + goodHex + `"`
	tests := []struct {
		h    string
		want bool
	}{
		{etag, true},
		{"W/" + etag, true},
		{`"x", ` + etag, true},
		{"*", true},
		{`"x"`, false},
		{"b3:" + goodHex, false},
	}
	for _, tt := range tests {
		if got := etagMatches(tt.h, etag); got != tt.want {
			t.Errorf("etagMatches(%q) = %v", tt.h, got)
		}
	}
}
