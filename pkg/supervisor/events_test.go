package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/events"
)

func TestParseFaultKind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FaultKind
		bad  bool
	}{
		{in: "kill", want: FaultKill},
		{in: "term", want: FaultTerm},
		{in: "stop", want: FaultStop},
		{in: "KILL", bad: true},
		{in: "", bad: true},
		{in: "segv", bad: true},
	} {
		got, err := ParseFaultKind(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseFaultKind(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// busHarness runs one fake child with an event bus and a subscriber that
// sees everything from the first event on.
func busHarness(t *testing.T, mode string) (*harness, *events.Sub) {
	t.Helper()
	bus, err := events.New(events.NewBoot(), 0)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := bus.Subscribe("", true, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	h := startHarness(t, []Spec{fakeSpec(t, "svc", mode)}, func(o *Options) { o.Events = bus })
	return h, sub
}

// nextEvent waits for the next event of one of the types (skipping others).
func nextEvent(t *testing.T, sub *events.Sub, types ...string) events.Event {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case ev := <-sub.C():
			for _, typ := range types {
				if ev.Type == typ {
					return ev
				}
			}
		case <-sub.Done():
			t.Fatal("subscription dropped")
		case <-deadline.C:
			t.Fatalf("no %v event", types)
		}
	}
}

func decode[T any](t *testing.T, ev events.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(ev.Data, &v); err != nil {
		t.Fatalf("%s data %s: %v", ev.Type, ev.Data, err)
	}
	return v
}

// A kill fault is a real SIGKILL: the stream shows fault, unready, exited
// (killed, with the fault as reason), then a new child spawned and ready.
func TestFaultKillEvents(t *testing.T) {
	h, sub := busHarness(t, "good")
	st := h.waitReady("svc", 0)
	if sp := decode[SpawnedEvent](t, nextEvent(t, sub, events.Spawned)); sp.PID != st.PID {
		t.Fatalf("spawned pid %d, status pid %d", sp.PID, st.PID)
	}
	nextEvent(t, sub, events.Ready)

	pid, err := h.s.Fault("svc", FaultKill, 0)
	if err != nil || pid != st.PID {
		t.Fatalf("Fault = %d, %v; want pid %d", pid, err, st.PID)
	}
	var got []string
	for _, typ := range []string{events.Fault, events.Unready, events.Exited, events.Spawned, events.Ready} {
		ev := nextEvent(t, sub, typ)
		got = append(got, ev.Type)
		switch typ {
		case events.Exited:
			ex := decode[ExitedEvent](t, ev)
			if ex.PID != pid || ex.Signal != "killed" || ex.Expected || !strings.Contains(ex.Reason, "fault") {
				t.Errorf("exited %+v", ex)
			}
		case events.Spawned:
			if sp := decode[SpawnedEvent](t, ev); sp.PID == pid || sp.Restarts != 1 {
				t.Errorf("spawned %+v after killing %d", sp, pid)
			}
		}
	}
	t.Logf("events: %v", got)
}

func TestFaultTermRestarts(t *testing.T) {
	h, sub := busHarness(t, "good")
	st := h.waitReady("svc", 0)
	if _, err := h.s.Fault("svc", FaultTerm, 0); err != nil {
		t.Fatal(err)
	}
	ex := decode[ExitedEvent](t, nextEvent(t, sub, events.Exited))
	if ex.PID != st.PID || ex.Restart == "none" {
		t.Errorf("exited %+v", ex)
	}
	h.waitReady("svc", st.PID)
}

// procState is the state letter of /proc/pid/stat ('T' when stopped).
func procState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(string(b), ')')
	return b[i+2]
}

// A stop fault freezes the child with SIGSTOP and thaws it with SIGCONT
// when the duration ends (here before liveness would replace it).
func TestFaultStopThenContinue(t *testing.T) {
	h, sub := busHarness(t, "good")
	st := h.waitReady("svc", 0)
	if _, err := h.s.Fault("svc", FaultStop, 0); err == nil {
		t.Fatal("stop without a duration accepted")
	}
	if _, err := h.s.Fault("svc", FaultStop, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	f := decode[FaultEvent](t, nextEvent(t, sub, events.Fault))
	if f.Kind != FaultStop || f.PID != st.PID || f.DurationSeconds != 0.5 {
		t.Errorf("fault event %+v", f)
	}
	eventually(t, 5*time.Second, "child stopped", func() bool { return procState(t, st.PID) == 'T' })
	eventually(t, 5*time.Second, "child continued", func() bool { return procState(t, st.PID) != 'T' })
	if now := h.status("svc"); now.PID != st.PID {
		t.Errorf("child replaced: pid %d -> %d", st.PID, now.PID)
	}
}

func TestFaultRefused(t *testing.T) {
	h, sub := busHarness(t, "crash")
	if _, err := h.s.Fault("nope", FaultKill, 0); !errors.Is(err, ErrUnknownService) {
		t.Errorf("unknown service: %v", err)
	}
	if err := h.s.Stop("svc"); err != nil {
		t.Fatal(err)
	}
	// The stopped event, not the state: "stopped" is also the state before
	// the first spawn, which may come before the Stop is handled.
	nextEvent(t, sub, events.Stopped)
	if _, err := h.s.Fault("svc", FaultKill, 0); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no child: %v", err)
	}
}
