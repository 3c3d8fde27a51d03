package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// TestStoragePutAtAndListing drives storage's internal API on the real
// binaries: PUT /o/{addr} keeps a body only if it hashes to {addr}, GET /o
// pages through the stored addresses, and the gateway serves neither (nor
// the DHT's API); a blob served from local storage says so.
func TestStoragePutAtAndListing(t *testing.T) {
	// A first node only computes the addresses (its storage answers POST
	// /o); the harness runs one node at a time, so it is stopped first.
	blobs := [][]byte{randBytes(21, 5000), randBytes(22, 300_000), randBytes(23, 1)}
	var addrs []string
	hasher := startNode(t, nodeOpts{services: "storage"})
	for _, b := range blobs {
		addrs = append(addrs, putBlob(t, "http://"+hasher.addrs["storage"], b))
	}
	hasher.stop()

	n := startNode(t, nodeOpts{services: "gateway,storage"})
	storage := "http://" + n.addrs["storage"]
	octet := http.Header{"Content-Type": {"application/octet-stream"}}
	put := func(addr string, body []byte) (int, string) {
		t.Helper()
		resp, b, err := request("PUT", storage+"/o/"+addr, body, octet)
		if err != nil {
			t.Fatal(err)
		}
		var e errBody
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Code
	}
	// Wrong bytes for the address: refused, nothing kept.
	if code, c := put(addrs[0], blobs[1]); code != 422 || c != "hash_mismatch" {
		t.Fatalf("PUT with the wrong bytes = %d %q, want 422 hash_mismatch", code, c)
	}
	if resp, b, _ := request("GET", storage+"/o/"+addrs[0], nil, nil); resp.StatusCode != 404 {
		t.Fatalf("GET after a refused PUT = %d %s", resp.StatusCode, trunc(b))
	}
	for i, b := range blobs {
		if code, _ := put(addrs[i], b); code != 201 {
			t.Fatalf("PUT blob %d = %d, want 201", i, code)
		}
	}
	if code, _ := put(addrs[1], blobs[1]); code != 200 {
		t.Fatalf("PUT of a stored blob = %d, want 200", code)
	}
	for i, b := range blobs {
		resp, got, err := request("GET", n.gw("/o/"+addrs[i]), nil, nil)
		if err != nil || resp.StatusCode != 200 || sha(got) != sha(b) || resp.Header.Get("X-Macronode-Source") != "local" {
			t.Fatalf("GET blob %d through the gateway = %v %v, source %q", i, resp.StatusCode, err, resp.Header.Get("X-Macronode-Source"))
		}
	}

	// Paging with limit=2 yields every address once, sorted.
	var listed []string
	after := ""
	for range 5 {
		var page struct {
			Addresses []string `json:"addresses"`
			Next      string   `json:"next"`
		}
		if code := getJSON(t, storage+"/o?limit=2&after="+after, &page); code != 200 {
			t.Fatalf("GET /o = %d", code)
		}
		listed = append(listed, page.Addresses...)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	want := slices.Clone(addrs)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("listing = %v, want %v", listed, want)
	}
	if resp, b, _ := request("GET", storage+"/o?after=nope", nil, nil); resp.StatusCode != 400 {
		t.Fatalf("GET /o?after=nope = %d %s", resp.StatusCode, trunc(b))
	}

	// Internal APIs are not reachable through the gateway.
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/o", 405},
		{"GET", "/o?after=&limit=10", 405},
		{"PUT", "/o/" + addrs[0], 405},
		{"GET", "/dht/providers/" + addrs[0], 404},
		{"POST", "/dht/providers/" + addrs[0], 404},
		{"GET", "/overlay/peers", 404},
	} {
		resp, b, err := request(tc.method, n.gw(tc.path), blobs[2], nil)
		if err != nil {
			t.Fatal(err)
		}
		assertJSONError(t, tc.method+" "+tc.path+" (gateway)", resp, b, tc.want)
	}
	// Without the DHT and overlay the gateway never goes remote: a miss is
	// storage's 404.
	resp, b, _ := request("GET", n.gw("/o/b3:"+sha(nil)), nil, nil)
	assertJSONError(t, "GET /o/<unknown> (no remote planes)", resp, b, 404)
}
