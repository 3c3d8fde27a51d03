package admin

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/macronode/macronode/pkg/supervisor"
)

// TestWireShape pins the JSON of a service in /api/v1/status: the keys the
// e2e tests, the CLI and operators' scripts read.
func TestWireShape(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		st   supervisor.Status
		want string
	}{
		{"every field", supervisor.Status{
			Name: "storage", State: supervisor.StateBackoff, PID: 7, Restarts: 2, UptimeSeconds: 1.5, Ready: false,
			Critical: true, Listen: "127.0.0.1:9300", LastExit: "signal: killed", LastError: "boom",
			NextRestart: at, BackoffDelay: 0.2,
			Exits: []supervisor.Exit{{Time: at, PID: 6, Code: 137, Signal: "killed", Description: "signal: killed",
				UptimeSeconds: 3, Reason: "heartbeat timeout", LastLines: []string{"a"}, Restart: "backoff", RestartDelaySeconds: 0.2}},
		}, `{"state":"backoff","pid":7,"restarts":2,"uptime_seconds":1.5,"ready":false,"critical":true,"listen":"127.0.0.1:9300",` +
			`"last_exit":"signal: killed","last_error":"boom","next_restart":"2025-01-02T03:04:05Z","backoff_seconds":0.2,` +
			`"exits":[{"time":"2025-01-02T03:04:05Z","pid":6,"code":137,"signal":"killed","description":"signal: killed",` +
			`"uptime_seconds":3,"reason":"heartbeat timeout","last_lines":["a"],"restart":"backoff","restart_delay_seconds":0.2}]}`},
		{"zero values omitted", supervisor.Status{Name: "dht", State: supervisor.StateRunning},
			`{"state":"running","pid":0,"restarts":0,"uptime_seconds":0,"ready":false,"critical":false,"listen":"",` +
				`"last_exit":"","last_error":"","exits":[]}`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(serviceStatusOf(tc.st))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}
