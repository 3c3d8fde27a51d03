//go:build unix

package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestDataDirLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "storage")
	first, err := OpenDisk(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An upload in progress in the first store.
	inflight := filepath.Join(dir, "tmp", "put-inflight")
	if err := os.WriteFile(inflight, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenDisk(dir, nil)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "data dir "+dir+" is in use by another process") {
		t.Fatalf("second OpenDisk = %v, want ErrInUse", err)
	}
	if _, err := New(Config{DataDir: dir}, nil, prometheus.NewRegistry()); !errors.Is(err, ErrInUse) {
		t.Fatalf("second New = %v, want ErrInUse", err)
	}
	if _, err := os.Stat(inflight); err != nil {
		t.Fatalf("the second store touched the first one's temp file: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenDisk(dir, nil)
	if err != nil {
		t.Fatalf("OpenDisk after Close: %v", err)
	}
	defer again.Close()
	if _, err := os.Stat(inflight); !os.IsNotExist(err) {
		t.Fatalf("stray temp file survived a clean start: %v", err)
	}
}
