//go:build !linux

package storage

// renameNoReplace atomically renames oldpath to newpath unless newpath exists
// (fs.ErrExist), using link+unlink, which never replaces.
func renameNoReplace(oldpath, newpath string) error { return linkNoReplace(oldpath, newpath) }
