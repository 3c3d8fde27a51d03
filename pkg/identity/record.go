package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
)

// Limits on a signed node record and its fields. Verify refuses anything
// larger before parsing it.
const (
	MaxRecordBytes = 16 << 10 // a whole signed record
	maxAddrs       = 32       // per address list
	maxAddrBytes   = 256      // one multiaddr, as a string
	maxPlanes      = 16
	maxPlaneBytes  = 32
	maxVersion     = 128
)

// Envelope domain and payload type of a signed node record: the signature
// covers both, so a node record cannot be passed off as another libp2p
// record type, or the reverse.
const (
	recordDomain = "macronode-node-record"
	recordCodec  = "/macronode/node-record/1"
)

// Errors wrapped by Verify, so callers can count refusals by reason.
var (
	ErrTooLarge     = errors.New("signed record too large")
	ErrMalformed    = errors.New("malformed signed record")
	ErrBadSignature = errors.New("bad signature")
	ErrWrongSigner  = errors.New("node id is not the signer")
	ErrInvalid      = errors.New("invalid node record")
)

// NodeRecord binds a node's overlay, its DHT host and its ready planes to its
// node id. Multiaddrs are strings without a /p2p suffix. Seq orders a node's
// records: a receiver keeps the highest it has seen, so a node must never
// reuse a Seq, also across restarts (the overlay uses a clock-based Seq).
type NodeRecord struct {
	NodeID       string   `json:"node_id"`
	OverlayAddrs []string `json:"overlay_addrs"`
	DHTPeerID    string   `json:"dht_peer_id,omitempty"`
	DHTAddrs     []string `json:"dht_addrs,omitempty"`
	Version      string   `json:"version"`
	Seq          uint64   `json:"seq"`
	ReadyPlanes  []string `json:"ready_planes"`
}

// Sign signs rec with the node key priv and returns the signed record (a
// libp2p record.Envelope). An empty NodeID is filled in with priv's node id;
// another one is an error, as is any field Verify would refuse.
func Sign(priv crypto.PrivKey, rec NodeRecord) ([]byte, error) {
	if priv == nil || priv.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("sign node record: %w", ErrNotEd25519)
	}
	id, err := NodeID(priv)
	if err != nil {
		return nil, err
	}
	if rec.NodeID == "" {
		rec.NodeID = id.String()
	}
	if rec.NodeID != id.String() {
		return nil, fmt.Errorf("sign node record: %w: record names %s, key is %s", ErrWrongSigner, rec.NodeID, id)
	}
	if err := rec.validate(); err != nil {
		return nil, fmt.Errorf("sign node record: %w", err)
	}
	env, err := record.Seal(&payload{rec: rec}, priv)
	if err != nil {
		return nil, fmt.Errorf("sign node record: %w", err)
	}
	b, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode signed node record: %w", err)
	}
	if len(b) > MaxRecordBytes {
		return nil, fmt.Errorf("sign node record: %w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// Verify checks a signed node record and returns it. It refuses input over
// MaxRecordBytes, anything that is not a node record envelope, a signer that
// is not an ed25519 key, a bad signature, a NodeID that is not the signer's,
// and a record with invalid fields.
func Verify(b []byte) (NodeRecord, error) {
	if len(b) > MaxRecordBytes {
		return NodeRecord{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxRecordBytes)
	}
	// Check the cheap parts before the signature.
	env, err := record.UnmarshalEnvelope(b)
	if err != nil {
		return NodeRecord{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !bytes.Equal(env.PayloadType, []byte(recordCodec)) {
		return NodeRecord{}, fmt.Errorf("%w: payload type is not a node record", ErrMalformed)
	}
	if env.PublicKey.Type() != crypto.Ed25519 {
		return NodeRecord{}, fmt.Errorf("%w: signer: %w", ErrMalformed, ErrNotEd25519)
	}
	var p payload
	if _, err := record.ConsumeTypedEnvelope(b, &p); err != nil {
		if errors.Is(err, record.ErrInvalidSignature) {
			return NodeRecord{}, ErrBadSignature
		}
		return NodeRecord{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return NodeRecord{}, fmt.Errorf("%w: signer: %w", ErrMalformed, err)
	}
	if p.rec.NodeID != signer.String() {
		return NodeRecord{}, fmt.Errorf("%w: record names %q, signed by %s", ErrWrongSigner, p.rec.NodeID, signer)
	}
	if err := p.rec.validate(); err != nil {
		return NodeRecord{}, err
	}
	return p.rec, nil
}

// validate checks every field's syntax and size; the errors wrap ErrInvalid.
func (r NodeRecord) validate() error {
	if err := validPeerID("node_id", r.NodeID); err != nil {
		return err
	}
	if r.DHTPeerID != "" {
		if err := validPeerID("dht_peer_id", r.DHTPeerID); err != nil {
			return err
		}
	}
	if err := validAddrs("overlay_addrs", r.OverlayAddrs); err != nil {
		return err
	}
	if err := validAddrs("dht_addrs", r.DHTAddrs); err != nil {
		return err
	}
	if len(r.Version) > maxVersion {
		return fmt.Errorf("%w: version longer than %d bytes", ErrInvalid, maxVersion)
	}
	if len(r.ReadyPlanes) > maxPlanes {
		return fmt.Errorf("%w: more than %d ready planes", ErrInvalid, maxPlanes)
	}
	for _, p := range r.ReadyPlanes {
		if p == "" || len(p) > maxPlaneBytes {
			return fmt.Errorf("%w: ready plane name %q: empty or longer than %d bytes", ErrInvalid, p, maxPlaneBytes)
		}
	}
	return nil
}

// validPeerID accepts a peer id in its canonical text form only, so that
// comparing ids as strings is comparing peers.
func validPeerID(field, s string) error {
	id, err := peer.Decode(s)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, field, err)
	}
	if id.String() != s {
		return fmt.Errorf("%w: %s: %q is not in canonical form %s", ErrInvalid, field, s, id)
	}
	return nil
}

func validAddrs(field string, addrs []string) error {
	if len(addrs) > maxAddrs {
		return fmt.Errorf("%w: %s: more than %d addresses", ErrInvalid, field, maxAddrs)
	}
	for _, s := range addrs {
		if len(s) > maxAddrBytes {
			return fmt.Errorf("%w: %s: address longer than %d bytes", ErrInvalid, field, maxAddrBytes)
		}
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("%w: %s: %q: %w", ErrInvalid, field, s, err)
		}
		if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
			return fmt.Errorf("%w: %s: %q has a /p2p component", ErrInvalid, field, s)
		}
	}
	return nil
}

// payload adapts NodeRecord to libp2p's record.Record; its JSON encoding is
// what the envelope signs.
type payload struct{ rec NodeRecord }

func (*payload) Domain() string { return recordDomain }
func (*payload) Codec() []byte  { return []byte(recordCodec) }

func (p *payload) MarshalRecord() ([]byte, error) { return json.Marshal(p.rec) }

// UnmarshalRecord decodes one JSON object and nothing after it. Unknown
// fields are ignored, so a newer node's records stay readable.
func (p *payload) UnmarshalRecord(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var rec NodeRecord
	if err := dec.Decode(&rec); err != nil {
		return fmt.Errorf("decode node record: %w", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errors.New("decode node record: data after the record")
	}
	p.rec = rec
	return nil
}
