package cli

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/macronode/macronode/pkg/identity"
)

// NodeIDsAnnotation is the annotation of a `keygen --k8s-secret` Secret
// that lists the node id of each ordinal's key: "0=<id>,1=<id>,...".
const NodeIDsAnnotation = "macronode.io/node-ids"

// k8sName is a Kubernetes object name (RFC 1123 subdomain, simplified to
// what a Secret name needs).
var k8sName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// writeKeySecret generates n node keys and writes them as the YAML of a
// Kubernetes Secret called name to path (mode 0600, never replacing a
// file): data key "<i>.key" holds the key of StatefulSet ordinal i, in the
// node.key file format. It prints "<node id>  <name>/<i>.key" per key to
// out; the keys themselves go only to the file.
func writeKeySecret(out io.Writer, path, name string, n int) error {
	if !k8sName.MatchString(name) {
		return usageErr("--k8s-secret %q is not a Kubernetes object name (lower-case letters, digits, '-' and '.')", name)
	}
	ids := make([]string, n)
	data := make([]string, n)
	for i := range n {
		key, err := identity.Generate()
		if err != nil {
			return failure(fmt.Errorf("keygen: %w", err))
		}
		id, err := identity.NodeID(key)
		if err != nil {
			return failure(fmt.Errorf("keygen: %w", err))
		}
		b, err := crypto.MarshalPrivateKey(key)
		if err != nil {
			return failure(fmt.Errorf("keygen: encode key: %w", err))
		}
		ids[i] = fmt.Sprintf("%d=%s", i, id)
		data[i] = fmt.Sprintf("  %d.key: %s\n", i, base64.StdEncoding.EncodeToString(b))
	}
	doc := "# Node keys of the macronode StatefulSet " + name + ": <ordinal>.key is the key of\n" +
		"# pod <statefulset>-<ordinal>. Written by `macronode keygen --k8s-secret`. Keep it secret.\n" +
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\n  annotations:\n" +
		"    " + NodeIDsAnnotation + ": \"" + strings.Join(ids, ",") + "\"\n" +
		"type: Opaque\ndata:\n" + strings.Join(data, "")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return failure(fmt.Errorf("keygen: %w (nothing written)", err))
	}
	if _, err := f.WriteString(doc); err != nil {
		_ = f.Close()
		return failure(fmt.Errorf("keygen: write %s: %w", path, err))
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return failure(fmt.Errorf("keygen: fsync %s: %w", path, err))
	}
	if err := f.Close(); err != nil {
		return failure(fmt.Errorf("keygen: close %s: %w", path, err))
	}
	for i, id := range ids {
		_, nodeID, _ := strings.Cut(id, "=")
		fmt.Fprintf(out, "%s  %s/%d.key\n", nodeID, name, i)
	}
	return nil
}
