//go:build !unix

package storage

import "os"

// lockDir does not lock on platforms without flock: running two stores on
// one data dir there is the operator's responsibility.
func lockDir(string) (*os.File, error) { return nil, nil }
