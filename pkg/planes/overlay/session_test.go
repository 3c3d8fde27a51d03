package overlay

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/macronode/macronode/internal/testutil"
	"github.com/macronode/macronode/pkg/planes/overlay/oap"
)

// hello sends a HELLO on st and returns the answer's frame.
func hello(t *testing.T, c *conn, h oap.Hello) oap.Frame {
	t.Helper()
	if err := c.write(oap.TypeHello, h.Encode()); err != nil {
		t.Fatalf("write HELLO: %v", err)
	}
	f, err := c.read()
	if err != nil {
		t.Fatalf("read HELLO answer: %v", err)
	}
	return f
}

func TestHandshake(t *testing.T) {
	a, b := newNode(t, nil), newNode(t, nil)
	connect(t, a, b)
	self := a.srv.NodeID().String()
	other := b.srv.NodeID().String() // a valid id, but not the authenticated peer
	tests := []struct {
		name       string
		hello      oap.Hello
		want       oap.Type
		wantReason string
	}{
		{"own node id", oap.Hello{Version: oap.Version, MaxFrame: 1 << 20, NodeID: self}, oap.TypeAccept, ""},
		{"another node's id", oap.Hello{Version: oap.Version, MaxFrame: 1 << 20, NodeID: other}, oap.TypeReject, "authenticated peer"},
		{"wrong version", oap.Hello{Version: 9, MaxFrame: 1 << 20, NodeID: self}, oap.TypeReject, "unsupported version"},
		{"tiny max frame", oap.Hello{Version: oap.Version, MaxFrame: 10, NodeID: self}, oap.TypeReject, "malformed HELLO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn(rawStream(t, a, b), 1<<20, 1<<20, a.srv.metrics)
			f := hello(t, c, tt.hello)
			if f.Type != tt.want {
				t.Fatalf("answer %s, want %s", f.Type, tt.want)
			}
			if tt.want == oap.TypeAccept {
				if max, err := oap.DecodeU32(f.Payload); err != nil || max != DefaultMaxFrameBytes {
					t.Fatalf("ACCEPT max_frame %d, %v", max, err)
				}
				return
			}
			if reason, _ := oap.DecodeReason(f.Payload); !strings.Contains(reason, tt.wantReason) {
				t.Fatalf("reason %q, want it to mention %q", reason, tt.wantReason)
			}
		})
	}
	if got := testutil.Metric(t, b.reg, "macronode_overlay_sessions_total", "side", "server", "result", "rejected"); got != 3 {
		t.Fatalf("server rejected sessions = %v, want 3", got)
	}
}

// TestBadFramesCloseOnlyThatStream sends bad frames after a good handshake
// (and before one) and checks that each closes its stream only: a session
// opened beside it keeps working, and the count of rejected frames grows.
func TestBadFramesCloseOnlyThatStream(t *testing.T) {
	a, b := newNode(t, func(c *Config) { c.MaxFrameBytes = 4096; c.ChunkBytes = 1024 }), newNode(t, func(c *Config) { c.MaxFrameBytes = 4096; c.ChunkBytes = 1024 })
	connect(t, a, b)
	blob := randBytes(t, 5000)
	addr := b.storage.put(blob, false)
	okHello := oap.Hello{Version: oap.Version, MaxFrame: 4096, NodeID: a.srv.NodeID().String()}

	header := func(typ byte, flags byte, n uint32) []byte {
		h := []byte{typ, flags, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(h[2:], n)
		return h
	}
	tests := []struct {
		name      string
		handshake bool
		junk      []byte
		reason    string
	}{
		{"oversized frame", true, header(byte(oap.TypeStat), 0, 4097), "oversized"},
		{"unknown type", true, header(0x7e, 0, 0), "unknown_type"},
		{"flags set", true, header(byte(oap.TypeStat), 0x80, 3), "bad_flags"},
		{"truncated frame", true, append(header(byte(oap.TypeStat), 0, 67), "b3:"...), "truncated"},
		{"server frame from a client", true, header(byte(oap.TypeData), 0, 0), "unexpected"},
		{"bad STAT address", true, append(header(byte(oap.TypeStat), 0, 3), "xyz"...), "malformed"},
		{"junk instead of HELLO", false, []byte("GET / HTTP/1.1\r\n\r\n"), "unknown_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A good session beside the bad one.
			good := newConn(rawStream(t, a, b), 1<<20, 4096, a.srv.metrics)
			if f := hello(t, good, okHello); f.Type != oap.TypeAccept {
				t.Fatalf("good session: %s", f.Type)
			}
			before := testutil.Metric(t, b.reg, "macronode_overlay_rejected_frames_total", "reason", tt.reason)

			st := rawStream(t, a, b)
			c := newConn(st, 1<<20, 4096, a.srv.metrics)
			if tt.handshake {
				if f := hello(t, c, okHello); f.Type != oap.TypeAccept {
					t.Fatalf("bad session handshake: %s", f.Type)
				}
			}
			if _, err := st.Write(tt.junk); err != nil {
				t.Fatalf("write junk: %v", err)
			}
			if tt.reason == "truncated" {
				_ = st.CloseWrite() // the frame's end never comes
			}
			if f, err := c.read(); err == nil {
				t.Fatalf("the stream answered %s after junk; want it closed", f.Type)
			}
			eventually(t, 5e9, "rejected frame counted", func() bool {
				return testutil.Metric(t, b.reg, "macronode_overlay_rejected_frames_total", "reason", tt.reason) == before+1
			})

			// The good session and the connection are unharmed.
			ss := &session{conn: good, peer: b.srv.NodeID()}
			size, err := ss.stat(addr)
			if err != nil || size != uint64(len(blob)) {
				t.Fatalf("STAT on the good session: %d, %v", size, err)
			}
			if !a.srv.connected(b.srv.NodeID()) {
				t.Fatal("the connection was closed, not just the stream")
			}
		})
	}
}

func TestPerPeerStreamLimit(t *testing.T) {
	a, b := newNode(t, nil), newNode(t, func(c *Config) { c.MaxStreamsPerPeer = 2 })
	connect(t, a, b)
	h := oap.Hello{Version: oap.Version, MaxFrame: 1 << 20, NodeID: a.srv.NodeID().String()}
	for i := range 2 {
		c := newConn(rawStream(t, a, b), 1<<20, 1<<20, a.srv.metrics)
		if f := hello(t, c, h); f.Type != oap.TypeAccept {
			t.Fatalf("session %d: %s, want ACCEPT", i, f.Type)
		}
	}
	c := newConn(rawStream(t, a, b), 1<<20, 1<<20, a.srv.metrics)
	f, err := c.read() // the REJECT comes before any HELLO is read
	if err != nil {
		t.Fatalf("third stream: %v", err)
	}
	if reason, _ := oap.DecodeReason(f.Payload); f.Type != oap.TypeReject || !strings.Contains(reason, "busy") {
		t.Fatalf("third stream: %s %q, want REJECT busy", f.Type, reason)
	}
}
