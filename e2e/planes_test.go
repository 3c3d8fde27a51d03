package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Issue 4: the planes, driven through the gateway.

// planesServices runs the gateway with only the backends these tests use.
const planesServices = "gateway,storage,index"

// objectRe matches a stored object's path below DATA_DIR/storage.
var objectRe = regexp.MustCompile(`^objects/[0-9a-f]{2}/[0-9a-f]{64}$`)

// putResp is the answer of POST /o.
type putResp struct {
	Address string `json:"address"`
	Size    int64  `json:"size"`
}

// randBytes returns n deterministic pseudo-random bytes for seed.
func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// putBlob POSTs data to base+"/o" and returns the address: 201 when new,
// 200 when the same bytes were already stored (deduplicated).
func putBlob(t testing.TB, base string, data []byte) string {
	t.Helper()
	resp, b, err := request("POST", base+"/o", data, http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil {
		t.Fatal(err)
	}
	var p putResp
	if (resp.StatusCode != 201 && resp.StatusCode != 200) || json.Unmarshal(b, &p) != nil || p.Size != int64(len(data)) || !strings.HasPrefix(p.Address, "b3:") {
		t.Fatalf("POST /o (%d bytes) = %d %s, want 201 (or 200 if known) {\"address\":\"b3:...\",\"size\":%d}", len(data), resp.StatusCode, trunc(b), len(data))
	}
	return p.Address
}

// getBlob GETs base+"/o/"+addr and requires a clean 200.
func getBlob(t testing.TB, base, addr string) []byte {
	t.Helper()
	resp, b, err := request("GET", base+"/o/"+addr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /o/%s = %d %s", addr, resp.StatusCode, trunc(b))
	}
	return b
}

// blake3File hashes a file with a BLAKE3 implementation independent of ours.
func blake3File(path string) (sum, tool string, err error) {
	if p, lerr := exec.LookPath("b3sum"); lerr == nil {
		out, err := exec.Command(p, "--no-names", path).Output()
		return strings.TrimSpace(string(out)), "b3sum", err
	}
	if p, lerr := exec.LookPath("python3"); lerr == nil && exec.Command(p, "-c", "import blake3").Run() == nil {
		script := "import blake3,sys\nh=blake3.blake3()\nf=open(sys.argv[1],'rb')\n" +
			"while True:\n c=f.read(1<<20)\n if not c: break\n h.update(c)\nprint(h.hexdigest())\n"
		out, err := exec.Command(p, "-c", script, path).Output()
		return strings.TrimSpace(string(out)), "python3 blake3", err
	}
	return "", "", nil
}

// TestBigBlobRoundTrip: 100 MiB in through the gateway and back out, byte
// for byte, under its independently computed BLAKE3 address; then named.
func TestBigBlobRoundTrip(t *testing.T) {
	const size = 100 << 20
	path := filepath.Join(t.TempDir(), "blob")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	src := rand.NewChaCha8([32]byte{'e', '2', 'e'})
	if _, err := io.CopyN(io.MultiWriter(f, h), src, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(h.Sum(nil))

	n := startNode(t, nodeOpts{services: planesServices})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	req, _ := http.NewRequestWithContext(ctx, "POST", n.gw("/o"), in)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := bigClient.Do(req)
	if err != nil {
		t.Fatalf("POST /o (100 MiB): %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p putResp
	if (resp.StatusCode != 201 && resp.StatusCode != 200) || json.Unmarshal(b, &p) != nil || p.Size != size || !regexp.MustCompile(`^b3:[0-9a-f]{64}$`).MatchString(p.Address) {
		t.Fatalf("POST /o (100 MiB) = %d %s, want 201 {\"address\":\"b3:<64 hex>\",\"size\":%d}", resp.StatusCode, trunc(b), size)
	}

	req, _ = http.NewRequestWithContext(ctx, "GET", n.gw("/o/"+p.Address), nil)
	resp, err = bigClient.Do(req)
	if err != nil {
		t.Fatalf("GET /o/%s: %v", p.Address, err)
	}
	gh := sha256.New()
	got, err := io.Copy(gh, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || got != size || hex.EncodeToString(gh.Sum(nil)) != want {
		t.Fatalf("GET /o/%s = %d, %d bytes, read err %v, sha256 match %v; want 200 with the same %d bytes",
			p.Address, resp.StatusCode, got, err, hex.EncodeToString(gh.Sum(nil)) == want, size)
	}

	t.Run("address is BLAKE3", func(t *testing.T) {
		sum, tool, err := blake3File(path)
		if tool == "" {
			t.Skip("REPORT: no independent BLAKE3: install b3sum (Debian package b3sum) or python3 -m pip install blake3")
		}
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if p.Address != "b3:"+sum {
			t.Errorf("address %s, but %s says b3:%s", p.Address, tool, sum)
		}
	})

	t.Run("name it", func(t *testing.T) {
		var put map[string]any
		code, err := tryJSON("PUT", n.gw("/names/e2e/file"), map[string]string{"address": p.Address}, &put)
		if err != nil || code != 201 {
			t.Fatalf("PUT /names/e2e/file = %d %v %v, want 201", code, put, err)
		}
		if v, _ := put["version"].(float64); v != 1 {
			t.Errorf("PUT /names/e2e/file version = %v, want 1 (%v)", put["version"], put)
		}
		var rec map[string]any
		if code := getJSON(t, n.gw("/names/e2e/file"), &rec); code != 200 || rec["address"] != p.Address {
			t.Errorf("GET /names/e2e/file = %d %v, want 200 with address %s", code, rec, p.Address)
		}
	})
}

// gatedReader blocks its first Read until gate is closed.
type gatedReader struct {
	gate <-chan struct{}
	r    io.Reader
}

func (g *gatedReader) Read(p []byte) (int, error) {
	<-g.gate
	return g.r.Read(p)
}

// TestStorageCrashDuringUploads: kill -9 svc-storage with uploads in flight;
// every upload answered 201 survives intact and no temp file is left.
func TestStorageCrashDuringUploads(t *testing.T) {
	const (
		total = 40
		free  = 10 // uploads sent whole at once; the rest stall half-way until the kill
		size  = 1 << 20
	)
	n := startNode(t, nodeOpts{services: planesServices})
	blobs := make([][]byte, total)
	for i := range blobs {
		blobs[i] = randBytes(uint64(1000+i), size)
	}
	gate := make(chan struct{})
	var gateOnce sync.Once
	openGate := func() { gateOnce.Do(func() { close(gate) }) }
	defer openGate()

	type result struct {
		code int
		addr string
		err  error
	}
	results := make([]result, total)
	var created, freeDone atomic.Int32
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var body io.Reader = bytes.NewReader(blobs[i])
			if i >= free {
				body = io.MultiReader(bytes.NewReader(blobs[i][:size/2]), &gatedReader{gate, bytes.NewReader(blobs[i][size/2:])})
			}
			req, _ := http.NewRequestWithContext(ctx, "POST", n.gw("/o"), body)
			req.ContentLength = size
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := bigClient.Do(req)
			r := result{err: err}
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r.code = resp.StatusCode
				var p putResp
				if r.code == 201 && json.Unmarshal(b, &p) == nil {
					r.addr = p.Address
					created.Add(1)
				}
			}
			results[i] = r
			if i < free {
				freeDone.Add(1)
			}
		}(i)
	}
	eventually(t, time.Minute, func() (bool, string) {
		return created.Load() >= 3 || freeDone.Load() == free,
			fmt.Sprintf("%d created, %d of the %d unstalled uploads done", created.Load(), freeDone.Load(), free)
	})
	if created.Load() < 3 {
		openGate()
		wg.Wait()
		t.Fatalf("fewer than 3 uploads succeeded before the crash: %+v", results[:free])
	}
	old := childPID(t, n, "storage")
	signalChild(t, old, "svc-storage", syscall.SIGKILL)
	openGate()
	wg.Wait()

	eventually(t, restartTimeout, func() (bool, string) {
		code, r, err := n.readyz()
		if err != nil || code != 200 {
			return false, fmt.Sprintf("/readyz %d %+v %v", code, r, err)
		}
		st, err := n.status()
		return err == nil && st.Services["storage"].PID != old, fmt.Sprintf("storage %+v", st.Services["storage"])
	})

	ok, failed := 0, map[string]int{}
	for i, r := range results {
		if r.addr == "" {
			key := fmt.Sprint(r.code)
			if r.err != nil {
				key = "transport error"
			}
			failed[key]++
			continue
		}
		ok++
		got := getBlob(t, n.gw(""), r.addr)
		if sha(got) != sha(blobs[i]) {
			t.Errorf("upload %d answered 201 %s but GET returns %d different bytes", i, r.addr, len(got))
		}
	}
	t.Logf("uploads: %d created before/around the crash, failures by status %v", ok, failed)
	if ok == total {
		t.Logf("REPORT: no upload was cut by the crash (the stalled ones may have been buffered by the gateway)")
	}
	// A failed upload can simply be retried.
	for i, r := range results {
		if r.addr == "" {
			addr := putBlob(t, n.gw(""), blobs[i])
			if sha(getBlob(t, n.gw(""), addr)) != sha(blobs[i]) {
				t.Errorf("retried upload %d is not intact", i)
			}
			break
		}
	}
	if left := storageLeftovers(t, filepath.Join(n.dataDir, "storage")); len(left) > 0 {
		t.Errorf("temp files left under DATA_DIR/storage after the crash and restart: %v", left)
	}
}

// storageLeftovers lists regular files under root that are neither stored
// objects nor quarantined ones.
func storageLeftovers(t testing.TB, root string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "quarantine" {
				return filepath.SkipDir
			}
			return nil
		}
		// LOCK is the store's flock file (one svc-storage per data dir).
		if !objectRe.MatchString(rel) && rel != "LOCK" {
			left = append(left, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return left
}

// TestStorageTamper: a flipped byte on disk is never served as a clean 200,
// and the object is quarantined; storing it again heals it.
func TestStorageTamper(t *testing.T) {
	n := startNode(t, nodeOpts{services: planesServices})
	blob := randBytes(7, 1<<20)
	addr := putBlob(t, n.gw(""), blob)
	hexAddr := strings.TrimPrefix(addr, "b3:")
	root := filepath.Join(n.dataDir, "storage")
	obj := filepath.Join(root, "objects", hexAddr[:2], hexAddr)
	if !fileExists(obj) {
		var all []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		t.Fatalf("object %s not at %s; files under %s: %v", addr, obj, root, all)
	}
	f, err := os.OpenFile(obj, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	const at = 512<<10 + 7
	if _, err := f.ReadAt(one[:], at); err != nil {
		t.Fatal(err)
	}
	one[0] ^= 0x01
	if _, err := f.WriteAt(one[:], at); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	resp, err := bigClient.Get(n.gw("/o/" + addr))
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		clean := resp.StatusCode == 200 && rerr == nil
		switch {
		case clean && sha(body) != sha(blob):
			t.Errorf("tampered object served as a clean 200 (%d bytes)", len(body))
		case clean:
			t.Logf("REPORT: GET after tampering served the original bytes (a cache?)")
		default:
			t.Logf("GET after tampering: status %d, %d bytes, read error %v", resp.StatusCode, len(body), rerr)
		}
	} else {
		t.Logf("GET after tampering: transport error %v", err)
	}
	eventually(t, 5*time.Second, func() (bool, string) {
		q := 0
		_ = filepath.WalkDir(filepath.Join(root, "quarantine"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				q++
			}
			return nil
		})
		return !fileExists(obj) && q > 0, fmt.Sprintf("object still in place: %v; files in quarantine/: %d", fileExists(obj), q)
	})
	if resp, b, err := request("GET", n.gw("/o/"+addr), nil, nil); err == nil && resp.StatusCode == 200 && sha(b) != sha(blob) {
		t.Errorf("after quarantine GET still serves tampered bytes")
	}
	if again := putBlob(t, n.gw(""), blob); again != addr {
		t.Errorf("re-storing the same bytes gave %s, want %s", again, addr)
	}
	if sha(getBlob(t, n.gw(""), addr)) != sha(blob) {
		t.Errorf("re-stored object is not intact")
	}
}

// TestGatewayBasics: ping, bad addresses and unknown objects answer JSON.
func TestGatewayBasics(t *testing.T) {
	n := startNode(t, nodeOpts{services: planesServices})
	var ping map[string]any
	if code := getJSON(t, n.gw("/ingress/ping"), &ping); code != 200 || ping["ok"] != true ||
		ping["service"] != "svc-gateway" || ping["profile"] != "macronode" {
		t.Errorf("GET /ingress/ping = %d %v", code, ping)
	}
	for _, bad := range []string{"not-an-address", "b3:1234", "b3:" + strings.Repeat("z", 64), "sha256:" + strings.Repeat("0", 64)} {
		resp, b, err := request("GET", n.gw("/o/"+bad), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		assertJSONError(t, "GET /o/"+bad, resp, b, 400)
	}
	resp, b, err := request("GET", n.gw("/o/b3:"+strings.Repeat("0", 64)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertJSONError(t, "GET /o/<unknown address>", resp, b, 404)
	resp, b, err = request("GET", n.gw("/no/such/route"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertJSONError(t, "GET /no/such/route (gateway)", resp, b, 404)
}
