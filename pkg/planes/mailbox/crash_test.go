package mailbox

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "MAILBOX_TEST_CRASH_CHILD_DIR"

// runCrashChild serves a durable plane on 127.0.0.1:0, prints the address
// and serves until it is killed.
func runCrashChild(dir string) {
	s, err := New(Config{DataDir: dir}, nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	_ = srv.Serve(ln)
	os.Exit(1)
}

// TestKill9LosesNothing runs the plane in a child process, sends to it from
// many clients, leases some messages, SIGKILLs it mid-stream and reopens the
// store: every send that got 201 is there, and the leased message is
// visible again (leases are not durable) with its delivery counted.
func TestKill9LosesNothing(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read child address: %v", err)
	}
	base := "http://" + strings.TrimSpace(addr) + "/mailboxes/crash"
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	// One lease taken before the crash, to be visible again after it.
	if _, err := post(client, base+"/messages", []byte("leased"), http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	out, err := post(client, base+"/receive?visibility=1h", nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var rr struct{ Messages []apiMsg }
	if err := json.Unmarshal(out, &rr); err != nil || len(rr.Messages) != 1 {
		t.Fatalf("receive: %s %v", out, err)
	}
	leaseReceipt := rr.Messages[0].Receipt

	var mu sync.Mutex
	acked := map[string]string{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf("g%d-%d", g, i)
				out, err := post(client, base+"/messages", []byte(body), http.StatusCreated)
				if err != nil {
					return // the child died under us: this send was not acknowledged
				}
				var r map[string]string
				if json.Unmarshal(out, &r) == nil {
					mu.Lock()
					acked[r["id"]] = body
					mu.Unlock()
				}
			}
		}()
	}
	eventually(t, 10*time.Second, "some acknowledged sends", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	stop()
	wg.Wait()

	e := newEnv(t, Config{DataDir: dir})
	if info := e.info("crash"); info.InFlight != 0 {
		t.Fatalf("a lease survived kill -9: %+v", info)
	}
	if n, _ := e.ack("crash", leaseReceipt); n != 0 {
		t.Fatal("a pre-crash receipt acked after kill -9")
	}
	got := map[string]string{}
	for {
		msgs := e.receive("crash", "max=100")
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			got[m.ID] = m.data(t)
			// The sends after the lease carried its delivery count to disk.
			if m.ID == rr.Messages[0].ID && m.Deliveries != 2 {
				t.Fatalf("leased message after kill -9: deliveries %d, want 2", m.Deliveries)
			}
		}
	}
	if got[rr.Messages[0].ID] != "leased" {
		t.Fatalf("the message leased before kill -9 is not visible again: %q", got[rr.Messages[0].ID])
	}
	for id, body := range acked {
		if got[id] != body {
			t.Fatalf("acknowledged message %s (%q) lost or changed after kill -9: got %q", id, body, got[id])
		}
	}
	t.Logf("%d acknowledged sends before kill -9, %d messages recovered", len(acked), len(got))
}
