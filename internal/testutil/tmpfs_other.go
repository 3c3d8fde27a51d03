//go:build !linux

package testutil

import "testing"

// SmallFS skips: mounting a tmpfs is Linux-only.
func SmallFS(tb testing.TB, _ string) string {
	tb.Skip("skipped: a small tmpfs to fill needs Linux")
	return ""
}

// Fill is never reached off Linux: SmallFS skips first.
func Fill(tb testing.TB, _ string) func() {
	tb.Skip("skipped: filling a file system needs Linux")
	return func() {}
}
