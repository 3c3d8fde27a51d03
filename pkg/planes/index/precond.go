package index

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// errPrecondition is returned by a store write whose If-Match/If-None-Match
// check failed; the handler answers 412.
var errPrecondition = errors.New("precondition failed")

// etag is the entity tag of a record: its version, quoted.
func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// tagList is one parsed If-Match or If-None-Match header: "*" or a list of
// versions. Entries that are not versions are kept out: they can never match.
type tagList struct {
	any    bool
	strong []uint64 // "3" or bare 3
	weak   []uint64 // W/"3": only If-None-Match (weak comparison) matches these
}

// parseTagList parses the comma-separated entity tags of a header. Versions
// may be quoted ("3") or bare (3), as clients send both.
func parseTagList(h string) tagList {
	var tl tagList
	for part := range strings.SplitSeq(h, ",") {
		p := strings.TrimSpace(part)
		if p == "*" {
			tl.any = true
			continue
		}
		weak := false
		if rest, ok := strings.CutPrefix(p, "W/"); ok {
			weak, p = true, rest
		}
		if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
			p = p[1 : len(p)-1]
		}
		if p == "" || p[0] == '+' {
			continue
		}
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil || v == 0 {
			continue
		}
		if weak {
			tl.weak = append(tl.weak, v)
		} else {
			tl.strong = append(tl.strong, v)
		}
	}
	return tl
}

func (tl tagList) has(v uint64, weakOK bool) bool {
	if tl.any {
		return true
	}
	for _, s := range tl.strong {
		if s == v {
			return true
		}
	}
	if weakOK {
		for _, s := range tl.weak {
			if s == v {
				return true
			}
		}
	}
	return false
}

// precond holds a request's conditional headers; nil lists mean "absent".
type precond struct {
	match     *tagList
	noneMatch *tagList
}

// preconditions reads If-Match and If-None-Match from h.
func preconditions(h http.Header) precond {
	var pc precond
	if vs := h.Values("If-Match"); len(vs) > 0 {
		tl := parseTagList(strings.Join(vs, ","))
		pc.match = &tl
	}
	if vs := h.Values("If-None-Match"); len(vs) > 0 {
		tl := parseTagList(strings.Join(vs, ","))
		pc.noneMatch = &tl
	}
	return pc
}

// check decides a conditional write against the current record (exists
// false when the name is unbound). It returns an error wrapping
// errPrecondition when the write must not happen.
func (pc precond) check(cur Record, exists bool) error {
	if pc.match != nil {
		if !exists {
			return fmt.Errorf("%w: If-Match given but the name does not exist", errPrecondition)
		}
		if !pc.match.has(cur.Version, false) {
			return fmt.Errorf("%w: If-Match does not match current version %d", errPrecondition, cur.Version)
		}
	}
	if pc.noneMatch != nil && exists && pc.noneMatch.has(cur.Version, true) {
		if pc.noneMatch.any {
			return fmt.Errorf("%w: If-None-Match: * but the name exists at version %d", errPrecondition, cur.Version)
		}
		return fmt.Errorf("%w: If-None-Match matches current version %d", errPrecondition, cur.Version)
	}
	return nil
}
