package config

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Print writes the effective configuration, one "field = value  # source"
// line per field in FieldPaths order. The admin token is shown as "(set)"
// or "", never its value; service env values are likewise hidden.
func (c *Config) Print(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, path := range c.FieldPaths() {
		v, err := c.lookup(path, false)
		if err != nil {
			return fmt.Errorf("print %s: %w", path, err)
		}
		val := formatValue(v, true)
		if path == "admin_token" {
			val = `""`
			if c.AdminToken != "" {
				val = "(set)"
			}
		}
		fmt.Fprintf(bw, "%s = %s  # %s\n", path, val, c.Source(path))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	return nil
}

// Value returns the raw formatted value of the field at path (one of
// FieldPaths): strings and list items quoted, durations and sizes in their
// short form, maps as {KEY="value", ...} with sorted keys.
//
// Unlike Print, Value does NOT redact: admin_token and services.*.env
// values are returned as they are. It exists to compare two configurations
// (what changed on a reload); never log or display its result. It does not
// modify c: a plane missing from c.Services reads as its DefaultService.
func (c *Config) Value(path string) (string, error) {
	v, err := c.lookup(path, false)
	if err != nil {
		return "", err
	}
	return formatValue(v, false), nil
}

// BinaryName is the default executable of a plane: "svc-<plane>".
func BinaryName(plane string) string {
	if strings.HasPrefix(plane, "svc-") {
		return plane
	}
	return "svc-" + plane
}

// ResolveBinary finds the executable of a plane. configured (the
// services.<plane>.binary setting) wins when set: a path is used as is, a
// bare name is searched like the default. The default, BinaryName(plane),
// is looked up beside the running macronode executable, then in $PATH.
func ResolveBinary(plane, configured string) (string, error) {
	exe, err := os.Executable()
	dir := ""
	if err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dir = filepath.Dir(exe)
	}
	return resolveBinary(plane, configured, dir, exec.LookPath)
}

func resolveBinary(plane, configured, exeDir string, lookPath func(string) (string, error)) (string, error) {
	name := configured
	if name == "" {
		name = BinaryName(plane)
	}
	if strings.ContainsRune(name, '/') {
		if err := isExecutable(name); err != nil {
			return "", fmt.Errorf("binary of %s: %w", plane, err)
		}
		return filepath.Abs(name)
	}
	if exeDir != "" {
		p := filepath.Join(exeDir, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	p, err := lookPath(name)
	if err != nil {
		where := "$PATH"
		if exeDir != "" {
			where = exeDir + " or $PATH"
		}
		return "", fmt.Errorf("binary of %s: %s not found in %s", plane, name, where)
	}
	return p, nil
}

func isExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}
