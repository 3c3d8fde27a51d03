package cli

import (
	"strings"
	"testing"
)

func TestCrashes(t *testing.T) {
	t.Parallel()
	f := newFakeNode(t, "")
	f.services = map[string]any{
		"storage": map[string]any{"state": "running", "pid": 7, "exits": []any{
			map[string]any{"time": "2025-01-02T03:04:05Z", "pid": 4242, "code": 2, "description": "exit status 2", "uptime_seconds": 192.3,
				"last_lines": []string{"\tmain.go:7", "goroutine 9 [sleep]:"}, "restart": "immediate",
				"crash_block": []string{"panic: boom", "", "goroutine 1 [running]:", "main.main()"}},
			map[string]any{"time": "2025-01-02T03:05:00Z", "pid": 4300, "code": 137, "signal": "killed", "description": "signal: killed",
				"uptime_seconds": 0.25, "reason": "heartbeat timeout", "last_lines": []string{"serving"}, "restart": "backoff", "restart_delay_seconds": 0.4},
		}},
		"gateway": map[string]any{"state": "running", "pid": 8, "exits": []any{}},
	}
	env := []string{"RON_HTTP_ADDR=" + f.addr()}

	r := run(t, env, "crashes")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := "storage  2025-01-02T03:04:05Z  pid 4242  exit status 2  up 3m12s  restart immediate\n" +
		"  crash:\n    panic: boom\n    \n    goroutine 1 [running]:\n    main.main()\n" +
		"storage  2025-01-02T03:05:00Z  pid 4300  signal: killed  up 250ms  restart backoff in 400ms\n" +
		"  reason: heartbeat timeout\n  last lines:\n    serving\n"
	if r.stdout != want {
		t.Errorf("crashes printed:\n%s\nwant:\n%s", r.stdout, want)
	}

	if r := run(t, env, "crashes", "gateway"); r.code != ExitOK || r.stdout != "no exits kept\n" {
		t.Errorf("crashes gateway: exit %d, %q", r.code, r.stdout)
	}
	if r := run(t, env, "crashes", "nosuch"); r.code != ExitUsage || !strings.Contains(r.stderr, `unknown service "nosuch"`) {
		t.Errorf("crashes nosuch: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(t, env, "crashes", "a", "b"); r.code != ExitUsage {
		t.Errorf("crashes a b: exit %d, want usage", r.code)
	}
}
