package index

import (
	"bytes"
	"errors"
	"path"
	"strings"
	"testing"
	"time"
)

func TestValidateName(t *testing.T) {
	long := strings.Repeat("a", MaxNameLen)
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"site/index.html", true},
		{"a-b_c.d/e-f/0.9", true},
		{".hidden", true},
		{"a/.b", true},
		{"a.", true},
		{long, true},
		{long + "a", false},
		{"", false},
		{"A", false},
		{"a b", false},
		{"a\x00", false},
		{"é", false},
		{"a?b", false},
		{"a%2f", false},
		{"/a", false},
		{"a/", false},
		{"/", false},
		{"a//b", false},
		{"..", false},
		{"a/../b", false},
		{"a..b", false},
		{"../a", false},
		{".", false},
		{"a/./b", false},
		{"./a", false},
		{"a/.", false},
	}
	for _, tc := range tests {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("ValidateName(%q) error %v does not wrap ErrBadName", tc.name, err)
		}
	}
}

func TestValidateAddress(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		addr string
		ok   bool
	}{
		{"b3:" + hex64, true},
		{"b3:" + strings.ToUpper(hex64), false},
		{"b3:" + hex64[:63], false},
		{"b3:" + hex64 + "0", false},
		{"b2:" + hex64, false},
		{hex64, false},
		{"b3:" + hex64[:63] + "g", false},
		{"", false},
	}
	for _, tc := range tests {
		err := ValidateAddress(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateAddress(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestParseTagList(t *testing.T) {
	tests := []struct {
		in           string
		v            uint64
		strong, weak bool // has(v,false), has(v,true)
	}{
		{`"3"`, 3, true, true},
		{`3`, 3, true, true},
		{` "1", "3" `, 3, true, true},
		{`W/"3"`, 3, false, true},
		{`*`, 42, true, true},
		{`"4"`, 3, false, false},
		{`abc`, 3, false, false},
		{`""`, 3, false, false},
		{`"+3"`, 3, false, false},
		{`"0"`, 0, false, false},
		{`"99999999999999999999999"`, 3, false, false},
	}
	for _, tc := range tests {
		tl := parseTagList(tc.in)
		if got := tl.has(tc.v, false); got != tc.strong {
			t.Errorf("parseTagList(%q).has(%d, strong) = %v, want %v", tc.in, tc.v, got, tc.strong)
		}
		if got := tl.has(tc.v, true); got != tc.weak {
			t.Errorf("parseTagList(%q).has(%d, weak) = %v, want %v", tc.in, tc.v, got, tc.weak)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "site/index.html", "a/../b", "a//b", "/a", "a/", ".", "a/./b", "A", "\xff", strings.Repeat("x", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if err := ValidateName(name); err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("error %v does not wrap ErrBadName", err)
			}
			return
		}
		// A valid name is a clean path: net/http routes /names/<name> to it
		// unchanged, and list prefixes accept it.
		if len(name) == 0 || len(name) > MaxNameLen {
			t.Fatalf("accepted name of %d bytes", len(name))
		}
		if p := "/names/" + name; path.Clean(p) != p {
			t.Fatalf("accepted %q, which cleans to %q", name, path.Clean(p))
		}
		if !validPrefix(name) || strings.Contains(name, "..") {
			t.Fatalf("accepted %q with bytes outside the alphabet", name)
		}
	})
}

func FuzzPutBody(f *testing.F) {
	good := `{"address":"b3:` + strings.Repeat("ab", 32) + `"}`
	for _, s := range []string{good, good + " \n", good + "{}", `{"address":"b3:00"}`, `{"address":1}`,
		`{"address":"x","extra":1}`, `[]`, `null`, ``, `{`, strings.Repeat(" ", 200) + good} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const max = 128
		addr, err := decodePutBody(bytes.NewReader(body), max)
		if err != nil {
			if addr != "" {
				t.Fatalf("error %v with address %q", err, addr)
			}
			return
		}
		if len(body) > max {
			t.Fatalf("accepted a %d-byte body over the %d-byte cap", len(body), max)
		}
		if err := ValidateAddress(addr); err != nil {
			t.Fatalf("accepted invalid address %q: %v", addr, err)
		}
	})
}

func TestDecodePutBody(t *testing.T) {
	addr := "b3:" + strings.Repeat("ab", 32)
	good := `{"address":"` + addr + `"}`
	tests := []struct {
		body    string
		wantErr error // nil: ok; errBodyTooLarge / ErrBadAddress; errAny: some other error
	}{
		{good, nil},
		{good + "\n  ", nil},
		{good + "{}", errAny},
		{good + "x", errAny},
		{`{"address":"` + addr + `","x":1}`, errAny},
		{`{"address":"b3:abc"}`, ErrBadAddress},
		{`{}`, ErrBadAddress},
		{`null`, ErrBadAddress},
		{`{"address":5}`, errAny},
		{``, errAny},
		{strings.Repeat(" ", 200) + good, errBodyTooLarge},
	}
	for _, tc := range tests {
		got, err := decodePutBody(strings.NewReader(tc.body), 128)
		switch {
		case tc.wantErr == nil:
			if err != nil || got != addr {
				t.Errorf("decodePutBody(%q) = %q, %v; want %q", tc.body, got, err, addr)
			}
		case tc.wantErr == errAny:
			if err == nil || errors.Is(err, ErrBadAddress) || errors.Is(err, errBodyTooLarge) {
				t.Errorf("decodePutBody(%q) error = %v, want a JSON error", tc.body, err)
			}
		default:
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("decodePutBody(%q) error = %v, want %v", tc.body, err, tc.wantErr)
			}
		}
	}
}

var errAny = errors.New("any error")

func TestPrecondCheck(t *testing.T) {
	cur := Record{Name: "n", Version: 3, UpdatedAt: time.Now()}
	h := func(kv ...string) precond {
		hdr := make(map[string][]string)
		for i := 0; i < len(kv); i += 2 {
			hdr[kv[i]] = append(hdr[kv[i]], kv[i+1])
		}
		return preconditions(hdr)
	}
	tests := []struct {
		desc   string
		pc     precond
		exists bool
		ok     bool
	}{
		{"none, exists", h(), true, true},
		{"none, absent", h(), false, true},
		{"if-match quoted ok", h("If-Match", `"3"`), true, true},
		{"if-match bare ok", h("If-Match", `3`), true, true},
		{"if-match list ok", h("If-Match", `"1", "3"`), true, true},
		{"if-match mismatch", h("If-Match", `"2"`), true, false},
		{"if-match weak never matches", h("If-Match", `W/"3"`), true, false},
		{"if-match garbage", h("If-Match", `abc`), true, false},
		{"if-match absent", h("If-Match", `"1"`), false, false},
		{"if-match star exists", h("If-Match", `*`), true, true},
		{"if-match star absent", h("If-Match", `*`), false, false},
		{"if-none-match star absent", h("If-None-Match", `*`), false, true},
		{"if-none-match star exists", h("If-None-Match", `*`), true, false},
		{"if-none-match version matches", h("If-None-Match", `"3"`), true, false},
		{"if-none-match other version", h("If-None-Match", `"2"`), true, true},
	}
	for _, tc := range tests {
		err := tc.pc.check(cur, tc.exists)
		if (err == nil) != tc.ok {
			t.Errorf("%s: check = %v, want ok=%v", tc.desc, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errPrecondition) {
			t.Errorf("%s: error %v does not wrap errPrecondition", tc.desc, err)
		}
	}
}
