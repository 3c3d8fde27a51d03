package e2e

import (
	"strings"
	"testing"
)

// TestAdminConfigRefusals (#9 §6): the real binary refuses, with exit 2
// naming field and source, a blank admin token and an admin plane exposed
// beyond loopback with no credential, unless MACRONODE_DEV_INSECURE=1.
func TestAdminConfigRefusals(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		code int
		want string
	}{
		{"blank token", []string{"RON_ADMIN_TOKEN= "}, 2, "admin_token (env RON_ADMIN_TOKEN): is blank"},
		{"exposed admin", []string{"RON_HTTP_ADDR=0.0.0.0:18080"}, 2, "http_addr (env RON_HTTP_ADDR): 0.0.0.0:18080 is not a loopback address"},
		{"exposed admin, dev insecure", []string{"RON_HTTP_ADDR=0.0.0.0:18080", "MACRONODE_DEV_INSECURE=1"}, 0, "INSECURE"},
	}
	for _, tc := range tests {
		res := runCLI(t, tc.env, "macronode", "check")
		if res.code != tc.code || !strings.Contains(res.out, tc.want) {
			t.Errorf("%s: macronode check exit %d (want %d), output %q (want %q)", tc.name, res.code, tc.code, res.out, tc.want)
		}
	}
}
