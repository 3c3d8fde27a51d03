package index

import (
	"errors"
	"fmt"
	"strings"

	"github.com/macronode/macronode/pkg/address"
)

// MaxNameLen is the longest name, in bytes, that the index accepts.
const MaxNameLen = 255

// ErrBadName is wrapped by every error ValidateName returns.
var ErrBadName = errors.New("bad name")

// ErrBadAddress is wrapped by every error ValidateAddress returns; so is
// address.ErrBad.
var ErrBadAddress = address.ErrBad

// ValidateName reports whether name may be bound in the index. A name is
// 1..255 bytes of [a-z0-9._/-] read as '/'-separated segments: it has no
// leading or trailing '/', no empty segment ("//"), no "." segment and no ".."
// anywhere. These rules make every valid name a clean URL path, so
// /names/<name> reaches it verbatim (net/http would redirect "a/./b" or "a//b"
// to another name) and no name can be mistaken for a relative path.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is empty", ErrBadName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: name is %d bytes, the limit is %d", ErrBadName, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("%w: byte %q at offset %d is not one of [a-z0-9._/-]", ErrBadName, name[i], i)
		}
	}
	switch {
	case name[0] == '/':
		return fmt.Errorf("%w: name starts with '/'", ErrBadName)
	case name[len(name)-1] == '/':
		return fmt.Errorf("%w: name ends with '/'", ErrBadName)
	case strings.Contains(name, "//"):
		return fmt.Errorf("%w: name has an empty segment (\"//\")", ErrBadName)
	case strings.Contains(name, ".."):
		return fmt.Errorf("%w: name contains \"..\"", ErrBadName)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "." {
			return fmt.Errorf("%w: name has a \".\" segment", ErrBadName)
		}
	}
	return nil
}

// validPrefix reports whether s may be used as a list prefix or cursor: the
// name alphabet and length, with no structural rules (a prefix such as "a/"
// is not itself a name).
func validPrefix(s string) bool {
	if len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return false
		}
	}
	return true
}

func nameByte(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/' || c == '-'
}

// ValidateAddress reports whether addr is a content address of the form
// "b3:" followed by 64 lowercase hex digits (pkg/address). Its errors wrap
// ErrBadAddress.
func ValidateAddress(addr string) error {
	return address.Validate(addr)
}
