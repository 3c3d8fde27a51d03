package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pollEvery is the polling period of eventually.
const pollEvery = 25 * time.Millisecond

// eventually polls cond until it returns true or timeout passes; then it
// fails the test with cond's last explanation.
func eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", timeout, why)
		}
		time.Sleep(pollEvery)
	}
}

// client is used for every small request. Large transfers use bigClient.
var client = &http.Client{Timeout: 30 * time.Second}

// bigClient has no overall timeout: large transfers carry their own context.
var bigClient = &http.Client{}

// readyz is the body of GET /readyz.
type readyz struct {
	Ready bool              `json:"ready"`
	Mode  string            `json:"mode"`
	Deps  map[string]string `json:"deps"`
}

// serviceStatus is one entry of /api/v1/status "services".
type serviceStatus struct {
	State         string  `json:"state"`
	PID           int     `json:"pid"`
	Restarts      int     `json:"restarts"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Ready         bool    `json:"ready"`
	Listen        string  `json:"listen"`
	LastExit      string  `json:"last_exit"`
	LastError     string  `json:"last_error"`
	Exits         []struct {
		PID         int    `json:"pid"`
		Code        int    `json:"code"`
		Signal      string `json:"signal"`
		Description string `json:"description"`
		Reason      string `json:"reason"`
	} `json:"exits"`
}

// nodeStatus is the body of GET /api/v1/status.
type nodeStatus struct {
	UptimeSeconds float64                  `json:"uptime_seconds"`
	Profile       string                   `json:"profile"`
	HTTPAddr      string                   `json:"http_addr"`
	MetricsAddr   string                   `json:"metrics_addr"`
	LogLevel      string                   `json:"log_level"`
	Ready         bool                     `json:"ready"`
	Services      map[string]serviceStatus `json:"services"`
}

// errBody is the JSON error shape of every HTTP error (SPEC §9).
type errBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// request sends one request and reads the whole answer, honouring 429 and
// Retry-After as a well-behaved client does (see doHonouring429).
func request(method, url string, body []byte, hdr http.Header) (*http.Response, []byte, error) {
	return doHonouring429(client, method, url, body, func(req *http.Request) {
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		if body != nil && req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
	})
}

// retry429Budget bounds how long one call keeps honouring 429s before it
// hands the 429 to its caller.
const retry429Budget = 30 * time.Second

// doHonouring429 sends one request and reads the whole answer. A 429 (rate
// limit or a cap: the request was not processed) is retried after the
// answer's Retry-After (1s when absent or unreadable, at most 5s a wait),
// for up to retry429Budget in all; then the 429 is returned. Waiting the
// server's Retry-After is protocol pacing, not test synchronization.
func doHonouring429(c *http.Client, method, url string, body []byte, prepare func(*http.Request)) (*http.Response, []byte, error) {
	giveUp := time.Now().Add(retry429Budget)
	for {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, url, rd)
		if err != nil {
			return nil, nil, fmt.Errorf("build %s %s: %w", method, url, err)
		}
		if prepare != nil {
			prepare(req)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w", method, url, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return resp, b, fmt.Errorf("%s %s: read body: %w", method, url, err)
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			return resp, b, nil
		}
		wait := retryAfter(resp.Header.Get("Retry-After"))
		if time.Now().Add(wait).After(giveUp) {
			return resp, b, nil
		}
		time.Sleep(wait)
	}
}

// retryAfter reads a Retry-After in seconds (RFC 9110 §10.2.3; the
// HTTP-date form is not used by macronode): 1s when absent or malformed,
// at most 5s.
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(v)
	switch {
	case err != nil || s < 0:
		return time.Second
	case s > 5:
		return 5 * time.Second
	default:
		return time.Duration(s)*time.Second + 50*time.Millisecond
	}
}

// tryJSON sends a request (body marshalled as JSON unless nil) and decodes a
// JSON answer into out (when out is not nil and the body is non-empty).
func tryJSON(method, url string, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("marshal: %w", err)
		}
	}
	resp, b, err := request(method, url, body, nil)
	if err != nil {
		return 0, err
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %d: decode %q: %w", method, url, resp.StatusCode, trunc(b), err)
		}
	}
	return resp.StatusCode, nil
}

// getJSON GETs url and decodes the JSON answer into v; it fails the test on
// transport or decoding errors and returns the status.
func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	code, err := tryJSON("GET", url, nil, v)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return code
}

// postJSON POSTs in as JSON (nil: empty body) and decodes the answer into out.
func postJSON(t testing.TB, url string, in, out any) int {
	t.Helper()
	code, err := tryJSON("POST", url, in, out)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return code
}

// status fetches /api/v1/status.
func (n *node) status() (nodeStatus, error) {
	var st nodeStatus
	code, err := tryJSON("GET", n.url("/api/v1/status"), nil, &st)
	if err == nil && code != 200 {
		err = fmt.Errorf("/api/v1/status answered %d", code)
	}
	return st, err
}

// mustStatus is status that fails the test on error.
func (n *node) mustStatus() nodeStatus {
	n.t.Helper()
	st, err := n.status()
	if err != nil {
		n.t.Fatalf("%v", err)
	}
	return st
}

// childPID is services.<name>.pid from /api/v1/status.
func childPID(t testing.TB, n *node, name string) int {
	t.Helper()
	st := n.mustStatus()
	s, ok := st.Services[name]
	if !ok {
		t.Fatalf("status has no service %q: %+v", name, st.Services)
	}
	if s.PID <= 0 {
		t.Fatalf("status shows no pid for %q: %+v", name, s)
	}
	return s.PID
}

// readyzNow fetches /readyz once.
func (n *node) readyz() (int, readyz, error) {
	var r readyz
	code, err := tryJSON("GET", n.url("/readyz"), nil, &r)
	return code, r, err
}

// scrape fetches a /metrics page.
func scrape(t testing.TB, url string) string {
	t.Helper()
	resp, b, err := request("GET", url, nil, nil)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: status %d: %s", url, resp.StatusCode, trunc(b))
	}
	return string(b)
}

// metricValue finds the first sample of name whose labels include all of
// want, in Prometheus text exposition.
func metricValue(text, name string, want map[string]string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		mname, labels, value, ok := parseSample(line)
		if !ok || mname != name {
			continue
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
				break
			}
		}
		if match {
			return value, true
		}
	}
	return 0, false
}

// hasMetric reports whether any sample of name exists.
func hasMetric(text, name string) bool {
	_, ok := metricValue(text, name, nil)
	return ok
}

// parseSample splits `name{k="v",...} value [timestamp]`.
func parseSample(line string) (name string, labels map[string]string, value float64, ok bool) {
	labels = map[string]string{}
	rest := line
	if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
		name = line[:i]
		rest = line[i+1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, "=\"")
			if eq < 0 {
				return "", nil, 0, false
			}
			key := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return "", nil, 0, false
			}
			labels[key] = val.String()
		}
	} else {
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			return "", nil, 0, false
		}
		name, rest = line[:sp], line[sp:]
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return "", nil, 0, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return "", nil, 0, false
	}
	return name, labels, v, true
}

// cliResult is one finished CLI invocation.
type cliResult struct {
	code int
	out  string // stdout and stderr interleaved
}

// runCLI runs a built binary with the clean base environment plus env, and
// fails the test if it has not exited within cliTimeout.
func runCLI(t testing.TB, env []string, name string, args ...string) cliResult {
	t.Helper()
	var out syncBuffer
	code := runBinary(t, env, &out, &out, name, args...)
	return cliResult{code: code, out: out.String()}
}

// runBinary runs a built binary with the clean base environment plus env,
// its stdout and stderr to the writers given, in its own process group
// (killed whole at cliTimeout, which fails the test), and returns its exit
// code.
func runBinary(t testing.TB, env []string, stdout, stderr interface {
	io.Writer
	String() string
}, name string, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(name), args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		out := "stdout:\n" + stdout.String() + "\nstderr:\n" + stderr.String()
		if any(stdout) == any(stderr) {
			out = "output:\n" + stdout.String()
		}
		t.Fatalf("%s %s did not exit within %v; %s", name, strings.Join(args, " "), cliTimeout, out)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode()
}

// trunc shortens a body for messages.
func trunc(b []byte) string {
	const max = 600
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// fileExists reports whether p exists.
func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
