package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

var goodHex = strings.Repeat("0123456789abcdef", 4)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"good", "b3:" + goodHex, true},
		{"all zero", "b3:" + strings.Repeat("0", 64), true},
		{"upper hex", "b3:" + strings.ToUpper(goodHex), false},
		{"one upper", "b3:A" + goodHex[1:], false},
		{"upper prefix", "B3:" + goodHex, false},
		{"no prefix", goodHex, false},
		{"other algo", "sha256:" + goodHex, false},
		{"short", "b3:" + goodHex[:63], false},
		{"long", "b3:" + goodHex + "0", false},
		{"empty", "", false},
		{"prefix only", "b3:", false},
		{"non hex", "b3:" + goodHex[:63] + "g", false},
		{"slash", "b3:" + goodHex[:62] + "/a", false},
		{"dotdot", "b3:../" + goodHex[:61], false},
		{"space", "b3: " + goodHex[:63], false},
		{"nul", "b3:" + goodHex[:63] + "\x00", false},
		{"utf8", "b3:" + goodHex[:62] + "é", false},
		{"trailing newline", "b3:" + goodHex + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAddress(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatalf("ParseAddress(%q): %v", tt.in, err)
				}
				if got := FormatAddress(a); got != tt.in {
					t.Fatalf("round trip: %q != %q", got, tt.in)
				}
				return
			}
			if !errors.Is(err, ErrBadAddress) {
				t.Fatalf("ParseAddress(%q) = %v, want ErrBadAddress", tt.in, err)
			}
		})
	}
}

func TestAddressOfMatchesBlake3(t *testing.T) {
	data := []byte("hello macronode")
	want := blake3.Sum256(data)
	if AddressOf(data) != want {
		t.Fatal("AddressOf differs from blake3.Sum256")
	}
	// Known BLAKE3 test vector: the hash of the empty input.
	if got := FormatAddress(AddressOf(nil)); got != "b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Fatalf("empty input hashes to %s", got)
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"b3:" + goodHex, "b3:" + strings.ToUpper(goodHex), "", "b3:", "b3:../../etc/passwd", goodHex, "b3:" + goodHex + "00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrBadAddress) {
				t.Fatalf("error %v does not wrap ErrBadAddress", err)
			}
			return
		}
		// Anything accepted is canonical: it formats back to itself and
		// contains nothing but the prefix and lowercase hex.
		if FormatAddress(a) != s {
			t.Fatalf("accepted %q but formats as %q", s, FormatAddress(a))
		}
		if strings.ContainsAny(s[3:], "/\\.:ABCDEF") {
			t.Fatalf("accepted %q with unsafe characters", s)
		}
	})
}

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
