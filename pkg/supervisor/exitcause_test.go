package supervisor

import "testing"

func TestExitCause(t *testing.T) {
	tests := []struct {
		name string
		exit Exit
		want string
	}{
		{"oom beats the signal", Exit{OOMKilled: true, Signal: "killed", Code: 137}, CauseOOM},
		{"hung", Exit{Reason: "heartbeat timeout", Signal: "killed", Code: 137}, CauseHung},
		{"start timeout", Exit{Reason: "start timeout", Signal: "killed", Code: 137}, CauseStartTimeout},
		{"fault drill", Exit{Reason: "fault injected: kill", Signal: "killed", Code: 137}, CauseFault},
		{"operator stop", Exit{Reason: "stop requested", Signal: "terminated", Code: 143}, CauseStopped},
		{"final exit", Exit{Restart: "none", Code: 0}, CauseStopped},
		{"panic", Exit{CrashBlock: []string{"panic: boom"}, Code: 2}, CausePanic},
		{"kill -9", Exit{Signal: "killed", Code: 137}, CauseSignal},
		{"exit 1", Exit{Code: 1}, CauseError},
		{"exit 0 unasked", Exit{}, CauseClean},
	}
	for _, tc := range tests {
		if got := exitCause(tc.exit); got != tc.want {
			t.Errorf("%s: cause %q, want %q", tc.name, got, tc.want)
		}
	}
}
