package storage

import (
	"errors"
	"math"
	"strings"
)

// etagMatches implements the weak comparison If-None-Match uses: "*" or any
// listed tag equal to etag, ignoring a W/ prefix.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// ifRangeAllows reports whether a Range header may be honoured given
// If-Range: absent, or strongly equal to our ETag. A date (we send no
// Last-Modified) or another tag means "send the whole object".
func ifRangeAllows(ifRange, etag string) bool {
	return ifRange == "" || strings.TrimSpace(ifRange) == etag
}

var (
	errRangeInvalid       = errors.New("malformed range")
	errRangeUnsatisfiable = errors.New("range not satisfiable")
)

// parseRange parses a single byte range ("bytes=a-b", "bytes=a-",
// "bytes=-n") against an object of size bytes. ok is false when the header
// is to be ignored (another unit, or several ranges, which we answer with
// the whole object as RFC 9110 allows). err is set for a malformed or
// unsatisfiable range (answered 416, as net/http does).
func parseRange(h string, size int64) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found {
		return 0, 0, false, nil
	}
	if strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, errRangeInvalid
	}
	if first == "" { // suffix: the last n bytes
		n, perr := parseDigits(last)
		if perr != nil {
			return 0, 0, false, perr
		}
		if n == 0 || size == 0 {
			return 0, 0, false, errRangeUnsatisfiable
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	a, perr := parseDigits(first)
	if perr != nil {
		return 0, 0, false, perr
	}
	end := size - 1
	if last != "" {
		b, perr := parseDigits(last)
		if perr != nil {
			return 0, 0, false, perr
		}
		if b < a {
			return 0, 0, false, errRangeInvalid
		}
		end = min(b, size-1)
	}
	if a >= size {
		return 0, 0, false, errRangeUnsatisfiable
	}
	return a, end - a + 1, true, nil
}

// parseDigits parses a non-empty run of ASCII digits (no sign, no spaces) of
// any length. A value past math.MaxInt64 saturates there: every position
// that large is past the end of any object, so a last-byte position means
// "to the end" (RFC 9110 §14.1.2), a first-byte position is unsatisfiable
// and a suffix length means the whole object.
func parseDigits(s string) (int64, error) {
	if s == "" {
		return 0, errRangeInvalid
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errRangeInvalid
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue // keep checking that the rest are digits
		}
		n = n*10 + d
	}
	return n, nil
}
