package mailbox

import (
	"flag"
	"net/url"
	"testing"
	"time"
)

func TestParseReceiveParams(t *testing.T) {
	cases := []struct {
		q    string
		want receiveParams
		bad  string
	}{
		{"", receiveParams{Max: 10, Visibility: 30 * time.Second}, ""},
		{"max=1&visibility=200ms&wait=5s", receiveParams{Max: 1, Visibility: 200 * time.Millisecond, Wait: 5 * time.Second}, ""},
		{"max=100&visibility=12h&wait=20", receiveParams{Max: 100, Visibility: 12 * time.Hour, Wait: 20 * time.Second}, ""},
		{"wait=0s", receiveParams{Max: 10, Visibility: 30 * time.Second}, ""},
		{"max=", receiveParams{}, "max"},
		{"max=1.5", receiveParams{}, "max"},
		{"visibility=0s", receiveParams{}, "visibility"},
		{"visibility=13h", receiveParams{}, "visibility"},
		{"wait=-1s", receiveParams{}, "wait"},
		{"wait=", receiveParams{}, "wait"},
		{"x=1", receiveParams{}, "x"},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.q)
		got, err := parseReceiveParams(q)
		if c.bad != "" {
			pe, ok := err.(*paramError)
			if !ok || pe.Param != c.bad {
				t.Errorf("%q: err %v, want one naming %q", c.q, err, c.bad)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q = %+v, %v; want %+v", c.q, got, err, c.want)
		}
	}
}

func TestParseReceiptsBody(t *testing.T) {
	cases := []struct {
		body string
		kind receiptsKind
		n    int
		d    time.Duration
		bad  string
	}{
		{`{"receipts":["a","b"]}`, kindAck, 2, 0, ""},
		{`{"receipts":["a"],"delay":"2s"}`, kindNack, 1, 2 * time.Second, ""},
		{`{"receipts":["a"]}`, kindNack, 1, 0, ""},
		{`{"receipts":["a"]}`, kindExtend, 1, 30 * time.Second, ""},
		{`{"receipts":["a"],"visibility":"5m"}`, kindExtend, 1, 5 * time.Minute, ""},
		{`{"receipts":["a"],"visibility":"5m"}`, kindNack, 0, 0, "visibility"},
		{`{"receipts":["a"],"delay":"5m"}`, kindExtend, 0, 0, "delay"},
		{`{"receipts":[""]}`, kindAck, 0, 0, "receipts"},
		{`{"receipts":"a"}`, kindAck, 0, 0, "body"},
		{`{"receipts":["a"]} {}`, kindAck, 0, 0, "body"},
		{`{"receipts":["a"],"extra":1}`, kindAck, 0, 0, "body"},
		{`null`, kindAck, 0, 0, "receipts"},
	}
	for _, c := range cases {
		rs, d, err := parseReceiptsBody([]byte(c.body), c.kind)
		if c.bad != "" {
			pe, ok := err.(*paramError)
			if !ok || pe.Param != c.bad {
				t.Errorf("%s: err %v, want one naming %q", c.body, err, c.bad)
			}
			continue
		}
		if err != nil || len(rs) != c.n || d != c.d {
			t.Errorf("%s = %v %v %v", c.body, rs, d, err)
		}
	}
}

func TestFormatID(t *testing.T) {
	for _, tc := range []struct {
		seq  uint64
		want string
	}{{0, "0000000000000000"}, {1, "0000000000000001"}, {0xabc, "0000000000000abc"}, {^uint64(0), "ffffffffffffffff"}} {
		if got := formatID(tc.seq); got != tc.want {
			t.Errorf("formatID(%d) = %q, want %q", tc.seq, got, tc.want)
		}
		if seq, ok := parseID(tc.want); !ok || seq != tc.seq {
			t.Errorf("parseID(%q) = %d %v", tc.want, seq, ok)
		}
	}
}

func TestReceiptShape(t *testing.T) {
	r := newReceipt(42, 3)
	if seq, ok := receiptSeq(r); !ok || seq != 42 {
		t.Fatalf("receiptSeq(%q) = %d %v", r, seq, ok)
	}
	if newReceipt(42, 3) == r {
		t.Fatal("two deliveries got the same receipt")
	}
	for _, bad := range []string{"", "x", formatID(1), formatID(1) + ".1", formatID(1) + ".x.0123456789abcdef", "zz.1.0123456789abcdef"} {
		if _, ok := receiptSeq(bad); ok {
			t.Errorf("receiptSeq(%q) accepted", bad)
		}
	}
}

func FuzzParseReceiveParams(f *testing.F) {
	for _, s := range []string{"", "max=10&visibility=30s&wait=0s", "max=101", "wait=20", "visibility=1ms",
		"max=1&max=2", "%zz", "wait=9223372036854775807ns", "visibility=1e9h", "x=&&&=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := parseReceiveParams(q)
		if err != nil {
			return
		}
		if p.Max < 1 || p.Max > MaxReceiveMax || p.Visibility < MinVisibility || p.Visibility > MaxVisibility || p.Wait < 0 || p.Wait > MaxWait {
			t.Fatalf("%q accepted out-of-range %+v", raw, p)
		}
	})
}

func FuzzAckBody(f *testing.F) {
	for _, s := range []string{`{"receipts":["a"]}`, `{"receipts":[]}`, `{"receipts":["a"],"delay":"1s"}`,
		`{"receipts":["a"],"visibility":"1h"}`, `[]`, `{"receipts":[1]}`, `{"receipts":null}`, "\x00", `{"receipts":["` + formatID(1) + `.1.0123456789abcdef"]}`} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, k uint8) {
		kind := receiptsKind(k % 3)
		rs, d, err := parseReceiptsBody(body, kind)
		if err != nil {
			return
		}
		if len(rs) == 0 || len(rs) > MaxReceiptsPerCall || d < 0 || d > MaxVisibility {
			t.Fatalf("%q accepted %d receipts, duration %s", body, len(rs), d)
		}
		for _, r := range rs {
			if r == "" || len(r) > maxReceiptLen {
				t.Fatalf("%q accepted receipt %q", body, r)
			}
			receiptSeq(r)
		}
	})
}

func TestRegisterFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("svc-mailbox", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if c.MaxMessageBytes != DefaultMaxMessageBytes || c.MaxDeliveries != DefaultMaxDeliveries ||
		c.IdempotencyWindow != DefaultIdempotencyWindow || c.SegmentBytes != DefaultSegmentBytes {
		t.Fatalf("defaults = %+v", c)
	}
	err := fs.Parse([]string{"--max-depth=7", "--max-boxes=3", "--segment-bytes=65536", "--max-message-bytes=1024"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxDepth != 7 || c.MaxBoxes != 3 || c.SegmentBytes != 65536 || c.MaxMessageBytes != 1024 {
		t.Fatalf("parsed = %+v", c)
	}
}
