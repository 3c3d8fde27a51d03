package address

import (
	"errors"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

var goodHex = strings.Repeat("0123456789abcdef", 4)

func TestParse(t *testing.T) {
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
			a, err := Parse(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatalf("Parse(%q): %v", tt.in, err)
				}
				if got := Format(a); got != tt.in {
					t.Fatalf("round trip: %q != %q", got, tt.in)
				}
				return
			}
			if !errors.Is(err, ErrBad) {
				t.Fatalf("Parse(%q) = %v, want ErrBad", tt.in, err)
			}
		})
	}
}

func TestOfMatchesBlake3(t *testing.T) {
	data := []byte("hello macronode")
	want := blake3.Sum256(data)
	if Of(data) != want {
		t.Fatal("Of differs from blake3.Sum256")
	}
	// Known BLAKE3 test vector: the hash of the empty input.
	if got := Format(Of(nil)); got != "b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Fatalf("empty input hashes to %s", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"b3:" + goodHex, "b3:" + strings.ToUpper(goodHex), "", "b3:", "b3:../../etc/passwd", goodHex, "b3:" + goodHex + "00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBad) {
				t.Fatalf("error %v does not wrap ErrBad", err)
			}
			return
		}
		// Anything accepted is canonical: it formats back to itself and
		// contains nothing but the prefix and lowercase hex.
		if Format(a) != s {
			t.Fatalf("accepted %q but formats as %q", s, Format(a))
		}
		if strings.ContainsAny(s[3:], "/\\.:ABCDEF") {
			t.Fatalf("accepted %q with unsafe characters", s)
		}
	})
}
