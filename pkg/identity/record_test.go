package identity

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
)

// sampleRecord is a valid record for node key priv and DHT key dht.
func sampleRecord(t testing.TB, priv, dht crypto.PrivKey, seq uint64) NodeRecord {
	t.Helper()
	id, err := NodeID(priv)
	if err != nil {
		t.Fatal(err)
	}
	dhtID, err := NodeID(dht)
	if err != nil {
		t.Fatal(err)
	}
	return NodeRecord{
		NodeID:       id.String(),
		OverlayAddrs: []string{"/ip4/127.0.0.1/tcp/9101", "/ip4/127.0.0.1/udp/9101/quic-v1"},
		DHTPeerID:    dhtID.String(),
		DHTAddrs:     []string{"/ip4/127.0.0.1/tcp/9201"},
		Version:      "v1.2.3",
		Seq:          seq,
		ReadyPlanes:  []string{"overlay", "dht"},
	}
}

func mustSign(t testing.TB, priv crypto.PrivKey, rec NodeRecord) []byte {
	t.Helper()
	b, err := Sign(priv, rec)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return b
}

// rawSeal signs any payload bytes as a node record envelope, bypassing
// Sign's checks, to build records that Verify must refuse.
type rawPayload struct {
	domain, codec string
	body          []byte
}

func (r *rawPayload) Domain() string                 { return r.domain }
func (r *rawPayload) Codec() []byte                  { return []byte(r.codec) }
func (r *rawPayload) MarshalRecord() ([]byte, error) { return r.body, nil }
func (r *rawPayload) UnmarshalRecord([]byte) error   { return nil }

func rawSeal(t testing.TB, priv crypto.PrivKey, domain, codec string, body []byte) []byte {
	t.Helper()
	env, err := record.Seal(&rawPayload{domain, codec, body}, priv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignVerifyRoundTrip(t *testing.T) {
	priv, dht := mustKey(t), mustKey(t)
	want := sampleRecord(t, priv, dht, 7)
	got, err := Verify(mustSign(t, priv, want))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Verify returned %+v, want %+v", got, want)
	}
}

func TestSignFillsAndChecksNodeID(t *testing.T) {
	priv, other := mustKey(t), mustKey(t)
	rec := sampleRecord(t, priv, other, 1)
	rec.NodeID = ""
	got, err := Verify(mustSign(t, priv, rec))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := NodeID(priv); got.NodeID != id.String() {
		t.Fatalf("NodeID %q, want the key's %s", got.NodeID, id)
	}
	if _, err := Sign(priv, sampleRecord(t, other, other, 1)); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("Sign for another node id: %v, want ErrWrongSigner", err)
	}
	bad := sampleRecord(t, priv, other, 1)
	bad.OverlayAddrs = []string{"not a multiaddr"}
	if _, err := Sign(priv, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Sign of an invalid record: %v, want ErrInvalid", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	priv, dht, other := mustKey(t), mustKey(t), mustKey(t)
	good := sampleRecord(t, priv, dht, 3)
	signed := mustSign(t, priv, good)
	goodJSON, err := (&payload{rec: good}).MarshalRecord()
	if err != nil {
		t.Fatal(err)
	}
	withRec := func(f func(r *NodeRecord)) []byte {
		r := good
		f(&r)
		b, err := (&payload{rec: r}).MarshalRecord()
		if err != nil {
			t.Fatal(err)
		}
		return rawSeal(t, priv, recordDomain, recordCodec, b)
	}
	flipped := bytes.Clone(signed)
	flipped[len(flipped)-1] ^= 1 // the signature is the envelope's last field
	many := make([]string, maxAddrs+1)
	for i := range many {
		many[i] = "/ip4/127.0.0.1/tcp/1"
	}
	nodeID, _ := NodeID(priv)

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"junk", []byte("hello, world"), ErrMalformed},
		{"oversized", make([]byte, MaxRecordBytes+1), ErrTooLarge},
		{"truncated", signed[:len(signed)/2], ErrMalformed},
		{"flipped signature bit", flipped, ErrBadSignature},
		{"signed by another key", rawSeal(t, other, recordDomain, recordCodec, goodJSON), ErrWrongSigner},
		{"other domain", rawSeal(t, priv, "libp2p-peer-record", recordCodec, goodJSON), ErrBadSignature},
		{"other payload type", rawSeal(t, priv, recordDomain, "/other", goodJSON), ErrMalformed},
		{"payload not JSON", rawSeal(t, priv, recordDomain, recordCodec, []byte("{")), ErrMalformed},
		{"data after the record", rawSeal(t, priv, recordDomain, recordCodec, append(bytes.Clone(goodJSON), "{}"...)), ErrMalformed},
		{"bad overlay addr", withRec(func(r *NodeRecord) { r.OverlayAddrs = []string{"/ip4/300.0.0.1/tcp/1"} }), ErrInvalid},
		{"addr with /p2p", withRec(func(r *NodeRecord) { r.OverlayAddrs = []string{"/ip4/127.0.0.1/tcp/1/p2p/" + nodeID.String()} }), ErrInvalid},
		{"too many dht addrs", withRec(func(r *NodeRecord) { r.DHTAddrs = many }), ErrInvalid},
		{"bad dht peer id", withRec(func(r *NodeRecord) { r.DHTPeerID = "Qmnope" }), ErrInvalid},
		{"long version", withRec(func(r *NodeRecord) { r.Version = strings.Repeat("v", maxVersion+1) }), ErrInvalid},
		{"empty plane name", withRec(func(r *NodeRecord) { r.ReadyPlanes = []string{""} }), ErrInvalid},
		{"non-canonical node id", withRec(func(r *NodeRecord) { r.NodeID = peer.ToCid(nodeID).String() }), ErrWrongSigner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyToleratesUnknownFields(t *testing.T) {
	priv := mustKey(t)
	id, _ := NodeID(priv)
	body := []byte(`{"node_id":"` + id.String() + `","overlay_addrs":[],"version":"v9","seq":5,"ready_planes":["overlay"],"future":{"x":1}}`)
	got, err := Verify(rawSeal(t, priv, recordDomain, recordCodec, body))
	if err != nil {
		t.Fatalf("Verify with an unknown field: %v", err)
	}
	if got.Seq != 5 || got.Version != "v9" {
		t.Fatalf("got %+v", got)
	}
}

func TestRecordValidator(t *testing.T) {
	priv, dht, other := mustKey(t), mustKey(t), mustKey(t)
	dhtID, _ := NodeID(dht)
	otherID, _ := NodeID(other)
	key := RecordKey(dhtID)
	if !strings.HasPrefix(key, "/mnnode/12D3Koo") {
		t.Fatalf("RecordKey = %q", key)
	}
	v1 := mustSign(t, priv, sampleRecord(t, priv, dht, 1))
	v2 := mustSign(t, priv, sampleRecord(t, priv, dht, 2))
	forOther := mustSign(t, priv, sampleRecord(t, priv, other, 9))

	validate := []struct {
		name  string
		key   string
		value []byte
		ok    bool
	}{
		{"own record", key, v1, true},
		{"record for another dht peer", key, forOther, false},
		{"key of another peer", RecordKey(otherID), v1, false},
		{"wrong namespace", "/pk/" + dhtID.String(), v1, false},
		{"key without namespace", dhtID.String(), v1, false},
		{"key with junk peer id", "/mnnode/xyz", v1, false},
		{"junk value", key, []byte("junk"), false},
	}
	for _, tt := range validate {
		t.Run("validate "+tt.name, func(t *testing.T) {
			err := RecordValidator{}.Validate(tt.key, tt.value)
			if (err == nil) != tt.ok {
				t.Fatalf("Validate: %v, want ok=%v", err, tt.ok)
			}
		})
	}

	selects := []struct {
		name    string
		values  [][]byte
		want    int
		wantErr bool
	}{
		{"newer last", [][]byte{v1, v2}, 1, false},
		{"newer first", [][]byte{v2, v1}, 0, false},
		{"equal keeps first", [][]byte{v1, v1}, 0, false},
		{"invalid skipped", [][]byte{[]byte("junk"), forOther, v1}, 2, false},
		{"none valid", [][]byte{[]byte("junk")}, 0, true},
		{"none", nil, 0, true},
	}
	for _, tt := range selects {
		t.Run("select "+tt.name, func(t *testing.T) {
			got, err := RecordValidator{}.Select(key, tt.values)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Select: %v, wantErr=%v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("Select = %d, want %d", got, tt.want)
			}
		})
	}
}
