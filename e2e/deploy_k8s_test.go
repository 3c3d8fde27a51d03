package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// k8sObjects is every object of the manifests, decoded strictly.
type k8sObjects struct {
	sts        []*appsv1.StatefulSet
	services   map[string]*corev1.Service
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

var yamlDocSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeManifests decodes every document of every *.yaml in dirs into its
// k8s.io/api type with UnmarshalStrict: an unknown or misplaced field fails.
func decodeManifests(t *testing.T, dirs ...string) k8sObjects {
	t.Helper()
	objs := k8sObjects{services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no manifests in %s (%v)", dir, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, doc := range yamlDocSep.Split(string(b), -1) {
				var tm metav1.TypeMeta
				if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
					t.Fatalf("%s doc %d: %v", f, i+1, err)
				}
				if tm.Kind == "" {
					continue // comments only
				}
				var obj any
				switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
				case "apps/v1 StatefulSet":
					obj = &appsv1.StatefulSet{}
				case "v1 Service":
					obj = &corev1.Service{}
				case "v1 ConfigMap":
					obj = &corev1.ConfigMap{}
				case "v1 Secret":
					obj = &corev1.Secret{}
				default:
					t.Fatalf("%s doc %d: %s is not a kind this test knows", f, i+1, gvk)
				}
				if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
					t.Fatalf("%s doc %d (%s): %v", f, i+1, tm.Kind, err)
				}
				switch o := obj.(type) {
				case *appsv1.StatefulSet:
					objs.sts = append(objs.sts, o)
				case *corev1.Service:
					objs.services[o.Name] = o
				case *corev1.ConfigMap:
					objs.configMaps[o.Name] = o
				case *corev1.Secret:
					objs.secrets[o.Name] = o
				}
			}
		}
	}
	return objs
}

// effective is `macronode config print` of a config file under env: field
// -> value as printed (strings unquoted).
func effective(t *testing.T, env []string, path string) map[string]string {
	t.Helper()
	r := runCLI(t, env, "macronode", "config", "print", "--config", path)
	if r.code != 0 {
		t.Fatalf("config print %s: exit %d\n%s", path, r.code, r.out)
	}
	out := map[string]string{}
	for _, l := range strings.Split(r.out, "\n") {
		k, v, ok := strings.Cut(l, " = ")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, "  # ")
		out[k] = strings.Trim(v, `"`)
	}
	return out
}

// portOf is the port of a host:port.
func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// containerPort resolves a probe's or Service's port (number or name).
func containerPort(t *testing.T, c corev1.Container, p intstr.IntOrString, proto corev1.Protocol) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal && (proto == "" || cp.Protocol == proto) {
			return cp.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q (%s)", c.Name, p.StrVal, proto)
	return 0
}

// TestKubernetesManifests (#12 §6): deploy/k8s/gen.sh, run with this run's
// macronode, plus the static manifests decode strictly into k8s.io/api
// types, and they agree with each other, with the image's environment, the
// config defaults and the SPEC's probe routes.
func TestKubernetesManifests(t *testing.T) {
	const ns = "test-ns"
	out := filepath.Join(t.TempDir(), "out")
	gen := exec.Command("sh", filepath.Join("..", "deploy", "k8s", "gen.sh"))
	gen.Env = append(baseEnv(), "NAMESPACE="+ns, "OUT="+out, "MACRONODE="+bin("macronode"))
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, b)
	}
	objs := decodeManifests(t, filepath.Join("..", "deploy", "k8s"), out)
	if len(objs.sts) != 1 {
		t.Fatalf("%d StatefulSets, want 1", len(objs.sts))
	}
	sts := objs.sts[0]
	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	replicas := int(*sts.Spec.Replicas)
	if replicas != 3 {
		t.Errorf("replicas %d, want 3", replicas)
	}

	// Identity: one key per ordinal, mounted as the pod's node.key.
	keys, admin, cm := objs.secrets["macronode-keys"], objs.secrets["macronode-admin"], objs.configMaps["macronode-config"]
	if keys == nil || admin == nil || cm == nil {
		t.Fatalf("gen.sh made secrets %v and config maps %v", objs.secrets, objs.configMaps)
	}
	if len(keys.Data) != replicas {
		t.Errorf("the keys Secret holds %d keys for %d replicas", len(keys.Data), replicas)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	var podIndex bool
	for _, e := range c.Env {
		podIndex = podIndex || (e.Name == "POD_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.labels['apps.kubernetes.io/pod-index']")
	}
	if !podIndex {
		t.Errorf("POD_INDEX is not the pod-index label: %+v", c.Env)
	}

	// Each pod's config: valid, and naming the others' ids.
	env := []string{}
	for k, v := range imageEnv(t) {
		env = append(env, k+"="+v)
	}
	tokenFile := filepath.Join(t.TempDir(), "admin_token")
	if err := os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenMount := mounts["/run/secrets/macronode"]
	if v := volumes[tokenMount.Name]; v.Secret == nil || v.Secret.SecretName != admin.Name {
		t.Errorf("/run/secrets/macronode is not the admin Secret: %+v", v)
	}
	if _, ok := admin.StringData["admin_token"]; !ok {
		t.Errorf("the admin Secret has no admin_token")
	}
	cfgMount := mounts["/etc/macronode"]
	if v := volumes[cfgMount.Name]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("/etc/macronode is not the ConfigMap: %+v", v)
	}
	if !slices.Equal(c.Args, []string{"run", "--config", "/etc/macronode/node-$(POD_INDEX).yaml"}) {
		t.Errorf("args %v", c.Args)
	}
	var eff map[string]string
	for i := range replicas {
		text, ok := cm.Data[fmt.Sprintf("node-%d.yaml", i)]
		if !ok {
			t.Fatalf("the ConfigMap has no node-%d.yaml", i)
		}
		if !strings.Contains(text, "admin_token_file: /run/secrets/macronode/admin_token\n") {
			t.Fatalf("node-%d.yaml does not read the mounted token", i)
		}
		// The only host-specific path: the mounted token, here a temp file.
		path := filepath.Join(t.TempDir(), fmt.Sprintf("node-%d.yaml", i))
		local := strings.Replace(text, "/run/secrets/macronode/admin_token", tokenFile, 1)
		if err := os.WriteFile(path, []byte(local), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := runCLI(t, nil, "macronode", "config", "validate", path); r.code != 0 {
			t.Errorf("config validate node-%d.yaml: exit %d\n%s", i, r.code, r.out)
		}
		eff = effective(t, env, path)
		self := fmt.Sprintf("/dns4/macronode-%d.macronode.%s.svc.cluster.local/tcp/9101", i, ns)
		if !strings.Contains(eff["network.announce"], `"`+self+`"`) {
			t.Errorf("node-%d announces %s, want %s", i, eff["network.announce"], self)
		}
		for j := range replicas {
			want := fmt.Sprintf("/dns4/macronode-%d.macronode.%s.svc.cluster.local/tcp/9101/p2p/%s", j, ns, keyID(t, keys.Data[fmt.Sprintf("%d.key", j)]))
			if got := strings.Contains(eff["network.bootstrap"], `"`+want+`"`); got != (i != j) {
				t.Errorf("node-%d bootstrap %s: has %s = %v, want %v", i, eff["network.bootstrap"], want, got, i != j)
			}
		}
	}
	if k := mounts["/data/node.key"]; volumes[k.Name].Secret == nil || volumes[k.Name].Secret.SecretName != keys.Name || k.SubPathExpr != "$(POD_INDEX).key" {
		t.Errorf("node.key mount %+v from %+v, want the keys Secret's $(POD_INDEX).key", k, volumes[k.Name])
	}
	dataDir := eff["data_dir"]
	if m, ok := mounts[dataDir]; !ok || !slices.ContainsFunc(sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == m.Name }) {
		t.Errorf("data_dir %s is not a PVC mount (%+v)", dataDir, m)
	}
	if mounts["/data/node.key"].MountPath != filepath.Join(dataDir, "node.key") {
		t.Errorf("the key is not at data_dir/node.key")
	}
	if _, ok := mounts[eff["run_dir"]]; !ok {
		t.Errorf("run_dir %s is not a writable mount (the root filesystem is read-only)", eff["run_dir"])
	}

	// Probes against the SPEC routes on the admin port.
	adminPort := portOf(t, eff["http_addr"])
	for name, tc := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}, "startup": {c.StartupProbe, ""}} {
		if tc.p == nil || tc.p.HTTPGet == nil {
			t.Errorf("no %s HTTP probe", name)
			continue
		}
		if tc.path != "" && tc.p.HTTPGet.Path != tc.path {
			t.Errorf("%s probe path %s, want %s", name, tc.p.HTTPGet.Path, tc.path)
		}
		if !slices.Contains([]string{"/readyz", "/healthz"}, tc.p.HTTPGet.Path) {
			t.Errorf("%s probe path %s is not a probe route", name, tc.p.HTTPGet.Path)
		}
		if got := containerPort(t, c, tc.p.HTTPGet.Port, corev1.ProtocolTCP); got != adminPort {
			t.Errorf("%s probe port %d, admin listens on %d", name, got, adminPort)
		}
	}
	ann := sts.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(int(adminPort)) || eff["metrics_public"] != "true" {
		t.Errorf("scrape annotations %v, metrics_public %s", ann, eff["metrics_public"])
	}

	// Stop budget: preStop, then the node's shutdown_timeout + 5s.
	shutdown, err := time.ParseDuration(eff["shutdown_timeout"])
	if err != nil {
		t.Fatal(err)
	}
	var preStop int64
	if l := c.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Sleep == nil {
		t.Errorf("no preStop drain")
	} else {
		preStop = l.PreStop.Sleep.Seconds
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < preStop+int64(shutdown.Seconds())+5 {
		t.Errorf("terminationGracePeriodSeconds %s < preStop %d + shutdown_timeout %v + 5s", graceText(pod.TerminationGracePeriodSeconds), preStop, shutdown)
	}

	// Security context.
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v: want non-root", psc)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container securityContext %+v: want read-only root, no escalation, drop ALL", sc)
	}

	// Services: headless for p2p and admin per pod, a load balancer for the
	// gateway only.
	headless, lb := objs.services[sts.Spec.ServiceName], objs.services["macronode-gateway"]
	if headless == nil || lb == nil {
		t.Fatalf("services %v, want %s and macronode-gateway", objs.services, sts.Spec.ServiceName)
	}
	for _, s := range []*corev1.Service{headless, lb} {
		for k, v := range s.Spec.Selector {
			if sts.Spec.Template.Labels[k] != v {
				t.Errorf("service %s selects %s=%s, the pods are labelled %v", s.Name, k, v, sts.Spec.Template.Labels)
			}
		}
	}
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("service %s: clusterIP %q, publishNotReadyAddresses %v; want headless, published before ready", headless.Name, headless.Spec.ClusterIP, headless.Spec.PublishNotReadyAddresses)
	}
	var hp []string
	for _, p := range headless.Spec.Ports {
		hp = append(hp, fmt.Sprintf("%d/%s", containerPort(t, c, p.TargetPort, p.Protocol), p.Protocol))
	}
	for _, want := range []string{"9101/TCP", "9201/TCP", fmt.Sprintf("%d/TCP", adminPort)} {
		if !slices.Contains(hp, want) {
			t.Errorf("headless service ports %v lack %s", hp, want)
		}
	}
	gwPort := portOf(t, eff["services.gateway.listen"])
	if lb.Spec.Type != corev1.ServiceTypeLoadBalancer || len(lb.Spec.Ports) != 1 || containerPort(t, c, lb.Spec.Ports[0].TargetPort, corev1.ProtocolTCP) != gwPort {
		t.Errorf("service %s: type %s ports %+v, want a LoadBalancer to the gateway's port %d only", lb.Name, lb.Spec.Type, lb.Spec.Ports, gwPort)
	}
	if eff["gateway_trusted_proxies"] == "[]" {
		t.Errorf("gateway_trusted_proxies is empty behind a load balancer")
	}
}

// keyID is the node id of a node.key's bytes, as `macronode id` reads it
// from a data_dir (no node answers on the address given).
func keyID(t *testing.T, key []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "node.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "macronode", "id", "--data-dir", dir, "--http-addr", freeAddr(t))
	id := strings.TrimSpace(r.out)
	if r.code != 0 || !strings.HasPrefix(id, "12D3KooW") {
		t.Fatalf("macronode id of a Secret key: exit %d, %q", r.code, r.out)
	}
	return id
}

func graceText(g *int64) string {
	if g == nil {
		return "unset"
	}
	return strconv.FormatInt(*g, 10)
}
