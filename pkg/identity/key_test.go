package identity

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func mustKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func marshal(t testing.TB, k crypto.PrivKey) []byte {
	t.Helper()
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateDistinctEd25519(t *testing.T) {
	a, b := mustKey(t), mustKey(t)
	if a.Type() != crypto.Ed25519 {
		t.Fatalf("type %v, want ed25519", a.Type())
	}
	if a.Equals(b) {
		t.Fatal("two generated keys are equal")
	}
}

func TestRead(t *testing.T) {
	good := mustKey(t)
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error // nil: success; errAny: some error
	}{
		{"ed25519 key", marshal(t, good), nil},
		{"empty", nil, errAny},
		{"junk", []byte("not a key at all"), errAny},
		{"secp256k1 key", marshal(t, secp), ErrNotEd25519},
		{"oversized", bytes.Repeat([]byte{1}, maxKeyBytes+1), errAny},
		{"truncated", marshal(t, good)[:20], errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Read(bytes.NewReader(tt.in))
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Read: %v", err)
			case tt.wantErr == nil:
				if !k.Equals(good) {
					t.Fatal("Read returned another key")
				}
			case err == nil:
				t.Fatal("Read accepted bad input")
			case tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("Read: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// errAny marks a table case that must fail, with any error.
var errAny = errors.New("any error")

func TestReadFromInheritedDescriptor(t *testing.T) {
	key := mustKey(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		_, _ = w.Write(marshal(t, key))
		_ = w.Close()
	}()
	got, err := Load("/dev/fd/" + strconv.Itoa(int(r.Fd())))
	if err != nil {
		t.Fatalf("Load from /dev/fd: %v", err)
	}
	if !got.Equals(key) {
		t.Fatal("key read from the pipe differs")
	}
}

func TestWriteLoadModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "node.key")
	key := mustKey(t)
	if err := Write(path, key); err != nil {
		t.Fatalf("Write: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v, want 0700", dst.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !got.Equals(key) {
		t.Fatal("loaded key differs from the written one")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("dir holds %d entries, want only the key (no temp file left)", len(ents))
	}
	// Never replace a key.
	if err := Write(path, mustKey(t)); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Write: %v, want fs.ErrExist", err)
	}
	if again, _ := Load(path); !again.Equals(key) {
		t.Fatal("second Write replaced the key")
	}
}

func TestWriteRefusesOtherKeyTypes(t *testing.T) {
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k")
	if err := Write(path, secp); !errors.Is(err, ErrNotEd25519) {
		t.Fatalf("Write secp256k1: %v, want ErrNotEd25519", err)
	}
	if err := Write(path, nil); err == nil {
		t.Fatal("Write(nil) succeeded")
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dht", "dht.key")
	k1, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created=%v err=%v, want created", created, err)
	}
	k2, created, err := LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created=%v err=%v, want loaded", created, err)
	}
	if !k1.Equals(k2) {
		t.Fatal("LoadOrCreate returned a different key the second time")
	}
}

func TestLoadOrCreateRefusesACorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path); err == nil {
		t.Fatal("LoadOrCreate accepted a corrupt key file (and must not replace it)")
	}
	if b, _ := os.ReadFile(path); string(b) != "garbage" {
		t.Fatal("the corrupt file was replaced")
	}
}

func TestLoadOrCreateConcurrentAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	const n = 8
	keys := make([]crypto.PrivKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], _, errs[i] = LoadOrCreate(path)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreate %d: %v", i, errs[i])
		}
		if !keys[i].Equals(keys[0]) {
			t.Fatalf("LoadOrCreate %d returned another key than 0", i)
		}
	}
}
