package gateway

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkLocalGet measures the hot path of a blob GET that storage
// answers: with the remote path wired (a miss check in ModifyResponse,
// nothing on a hit) and without. "storage HEAD" is one HEAD round trip to
// storage, the cost a check-before-proxy design would add to every GET.
func BenchmarkLocalGet(b *testing.B) {
	blob, addr := blobOf(4096)
	for _, bc := range []struct {
		name   string
		remote bool
		head   bool
	}{{"remote off", false, false}, {"remote on", true, false}, {"storage HEAD", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			c := newCluster(b, bc.remote)
			res, err := c.client.Post(c.ts.URL+"/o", "application/octet-stream", bytes.NewReader(blob))
			if err != nil || res.StatusCode != 201 {
				b.Fatalf("POST: %v %v", res, err)
			}
			res.Body.Close()
			url := c.ts.URL + "/o/" + addr
			method := http.MethodGet
			client := c.client
			if bc.head {
				url, method = c.srv.storage.target.String()+"/o/"+addr, http.MethodHead
				client = &http.Client{Transport: c.srv.storage.transport}
			}
			b.ResetTimer()
			for range b.N {
				req, _ := http.NewRequest(method, url, nil)
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || !bc.head && n != int64(len(blob)) {
					b.Fatalf("status %d, %d bytes", res.StatusCode, n)
				}
			}
		})
	}
}
