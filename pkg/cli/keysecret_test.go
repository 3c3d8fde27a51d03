package cli

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/macronode/macronode/pkg/identity"
)

// keygen --k8s-secret writes a Secret whose <i>.key entries are node keys
// whose ids are the printed ones and the annotation's, in ordinal order.
func TestKeygenK8sSecret(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.yaml")
	r := run(t, nil, "keygen", "--count", "3", "--k8s-secret", "macronode-keys", "--out", path)
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	printed := keygenLines(t, r.stdout)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v, %v; want mode 0600", fi, err)
	}
	var doc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name        string            `yaml:"name"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Type string            `yaml:"type"`
		Data map[string]string `yaml:"data"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decode %s: %v\n%s", path, err, b)
	}
	if doc.APIVersion != "v1" || doc.Kind != "Secret" || doc.Metadata.Name != "macronode-keys" || doc.Type != "Opaque" || len(doc.Data) != 3 {
		t.Fatalf("secret %+v", doc)
	}
	var annotated []string
	for i, name := range []string{"0.key", "1.key", "2.key"} {
		raw, err := base64.StdEncoding.DecodeString(doc.Data[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		key, err := identity.Read(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		id, err := identity.NodeID(key)
		if err != nil {
			t.Fatal(err)
		}
		if printed["macronode-keys/"+name] != id.String() {
			t.Errorf("%s holds %s, keygen printed %q", name, id, printed["macronode-keys/"+name])
		}
		annotated = append(annotated, string(rune('0'+i))+"="+id.String())
	}
	if got := doc.Metadata.Annotations[NodeIDsAnnotation]; got != strings.Join(annotated, ",") {
		t.Errorf("annotation %q, want %q", got, strings.Join(annotated, ","))
	}

	// Never over an existing file; a bad name is a usage error.
	if r := run(t, nil, "keygen", "--count", "3", "--k8s-secret", "macronode-keys", "--out", path); r.code != ExitFailure || !strings.Contains(r.stderr, "file exists") {
		t.Errorf("second run: exit %d, %q", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Error("the second run changed the secret file")
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if r := run(t, nil, "keygen", "--k8s-secret", "Bad_Name", "--out", bad); r.code != ExitUsage || fileExists(bad) {
		t.Errorf("bad name: exit %d, %q, file written %v", r.code, r.stderr, fileExists(bad))
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
