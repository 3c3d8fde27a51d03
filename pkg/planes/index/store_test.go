package index

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func noCheck(Record, bool) error { return nil }

// eachStore runs fn against a fresh bbolt store and a fresh memory store.
func eachStore(t *testing.T, fn func(t *testing.T, st store)) {
	t.Run("bolt", func(t *testing.T) {
		st, err := openBolt(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer st.close()
		fn(t, st)
	})
	t.Run("mem", func(t *testing.T) {
		st := newMemStore()
		defer st.close()
		fn(t, st)
	})
}

func TestStoreVersionsAndTombstones(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		now := time.Now()
		for want := uint64(1); want <= 3; want++ {
			rec, created, err := st.put("a", addrN(int(want)), now, noCheck)
			if err != nil || rec.Version != want || created != (want == 1) {
				t.Fatalf("put #%d = %+v created=%v err=%v", want, rec, created, err)
			}
		}
		if st.count() != 1 {
			t.Fatalf("count = %d, want 1", st.count())
		}
		if err := st.del("a", noCheck); err != nil {
			t.Fatal(err)
		}
		if err := st.del("a", noCheck); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete = %v, want ErrNotFound", err)
		}
		if _, err := st.get("a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get after delete = %v, want ErrNotFound", err)
		}
		if st.count() != 0 {
			t.Fatalf("count = %d, want 0", st.count())
		}
		// Re-created: continues from the tombstone, so an old ETag stays stale.
		rec, created, err := st.put("a", addrN(9), now, noCheck)
		if err != nil || rec.Version != 4 || !created {
			t.Fatalf("re-create = %+v created=%v err=%v, want version 4", rec, created, err)
		}
		got, err := st.get("a")
		if err != nil || got.Address != addrN(9) || got.Version != 4 || !got.UpdatedAt.Equal(now.UTC()) {
			t.Fatalf("get = %+v, %v", got, err)
		}
		// A refused check writes nothing.
		refuse := func(Record, bool) error { return fmt.Errorf("%w: test", errPrecondition) }
		if _, _, err := st.put("a", addrN(1), now, refuse); !errors.Is(err, errPrecondition) {
			t.Fatalf("refused put = %v", err)
		}
		if err := st.del("a", refuse); !errors.Is(err, errPrecondition) {
			t.Fatalf("refused delete = %v", err)
		}
		if got, _ := st.get("a"); got.Version != 4 {
			t.Fatalf("version after refused writes = %d, want 4", got.Version)
		}
	})
}

func TestStoreList(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		names := []string{"b/2", "a", "b/1", "b/10", "c", "b", "ba"}
		for _, n := range names {
			if _, _, err := st.put(n, addrN(1), time.Now(), noCheck); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			prefix, after string
			limit         int
			want          []string
		}{
			{"", "", 100, []string{"a", "b", "b/1", "b/10", "b/2", "ba", "c"}},
			{"", "", 2, []string{"a", "b"}},
			{"", "b", 3, []string{"b/1", "b/10", "b/2"}},
			{"b/", "", 100, []string{"b/1", "b/10", "b/2"}},
			{"b/", "b/1", 100, []string{"b/10", "b/2"}},
			{"b/", "a", 100, []string{"b/1", "b/10", "b/2"}},
			{"b/", "b/2", 100, nil},
			{"b/", "z", 100, nil},
			{"zz", "", 100, nil},
			{"b", "b/2", 100, []string{"ba"}},
		}
		for _, tc := range tests {
			recs, err := st.list(tc.prefix, tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("list(%q, %q, %d) = %v, want %v", tc.prefix, tc.after, tc.limit, got, tc.want)
			}
		}
	})
}

func TestStoreClosed(t *testing.T) {
	eachStore(t, func(t *testing.T, st store) {
		if err := st.close(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.get("a"); !errors.Is(err, errClosed) {
			t.Errorf("get after close = %v, want errClosed", err)
		}
		if _, _, err := st.put("a", addrN(1), time.Now(), noCheck); !errors.Is(err, errClosed) {
			t.Errorf("put after close = %v, want errClosed", err)
		}
		if _, err := st.list("", "", 1); !errors.Is(err, errClosed) {
			t.Errorf("list after close = %v, want errClosed", err)
		}
	})
}

// addrN is a valid content address derived from n.
func addrN(n int) string {
	return fmt.Sprintf("b3:%064x", n)
}
