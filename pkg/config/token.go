package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// CredentialName is the systemd credential (LoadCredential=admin_token:...)
// that holds the admin token when neither admin_token nor admin_token_file
// is set.
const CredentialName = "admin_token"

// maxTokenFileBytes caps the size of an admin token file.
const maxTokenFileBytes = 4 << 10

// readAdminTokenFile resolves admin_token_file (or the systemd credential)
// and reads the token it holds into AdminToken, whose source becomes
// "admin_token_file <path>". Surrounding whitespace (a trailing newline) is
// trimmed; a blank file is refused, as is setting both admin_token and
// admin_token_file.
func (c *Config) readAdminTokenFile(env map[string]string) error {
	if c.AdminTokenFile == "" && c.AdminToken == "" {
		if dir := env["CREDENTIALS_DIRECTORY"]; dir != "" {
			p := filepath.Join(dir, CredentialName)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				c.AdminTokenFile = p
				c.setSource("admin_token_file", "env CREDENTIALS_DIRECTORY")
			}
		}
	}
	if c.AdminTokenFile == "" {
		return nil
	}
	fail := func(format string, args ...any) error {
		return FieldError{Field: "admin_token_file", Source: c.Source("admin_token_file"), Msg: fmt.Sprintf(format, args...)}
	}
	if c.AdminToken != "" {
		return fail("set only one of admin_token_file and admin_token (set by %s)", c.Source("admin_token"))
	}
	f, err := os.Open(c.AdminTokenFile)
	if err != nil {
		return fail("%v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return fail("read %s: %v", c.AdminTokenFile, err)
	}
	if len(data) > maxTokenFileBytes {
		return fail("%s is larger than %d bytes; it should hold only the token", c.AdminTokenFile, maxTokenFileBytes)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return fail("%s is blank: it must hold the admin token", c.AdminTokenFile)
	}
	c.AdminToken = token
	c.setSource("admin_token", "admin_token_file "+c.AdminTokenFile)
	return nil
}
