package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The flood child: mnbench itself, run by macronode as the overlay plane's
// binary with envRole=roleFloodChild in the plane's env.
const (
	envRole        = "MNBENCH_ROLE"
	roleFloodChild = "flood-child"
	envFloodFor    = "MNBENCH_FLOOD_FOR"
	envFloodOut    = "MNBENCH_FLOOD_OUT"
	envFloodRate   = "MNBENCH_FLOOD_RATE" // lines/s; unset or 0: as fast as the pipe takes them
)

// floodResult is what the flood child writes to envFloodOut when done.
type floodResult struct {
	Lines   int64 `json:"lines"`
	StartNS int64 `json:"start_ns"`
	EndNS   int64 `json:"end_ns"`
}

// controlMsg is the subset of the control protocol (SPEC §6) the flood child
// speaks: newline-delimited JSON.
type controlMsg struct {
	Type     string `json:"type"`
	Service  string `json:"service,omitempty"`
	PID      int    `json:"pid,omitempty"`
	Token    string `json:"token,omitempty"`
	Version  string `json:"version,omitempty"`
	Protocol int    `json:"protocol,omitempty"`
	Addr     string `json:"addr,omitempty"`
}

// floodChild says hello and ready to the parent, heartbeats every second,
// and writes JSON log lines to stderr as fast as the pipe takes them for
// MNBENCH_FLOOD_FOR; then it writes its count to MNBENCH_FLOOD_OUT and idles
// until the parent shuts it down or goes away.
func floodChild() int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, `{"@level":"error","@message":"flood child","error":%q}`+"\n", err.Error())
		return exitError
	}
	dur, err := time.ParseDuration(os.Getenv(envFloodFor))
	if err != nil {
		return fail(fmt.Errorf("%s: %w", envFloodFor, err))
	}
	if os.Getenv("MACRONODE_CONTROL_SOCKET") == "" {
		return floodUnderRunit(dur, fail)
	}
	listen := "127.0.0.1:0"
	for i, a := range os.Args[1:] {
		if a == "--listen" && i+2 < len(os.Args) {
			listen = os.Args[i+2]
		}
	}
	ln, err := floodListener(listen)
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}
	mux.HandleFunc("GET /readyz", ok)
	mux.HandleFunc("GET /healthz", ok)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	conn, err := net.Dial("unix", os.Getenv("MACRONODE_CONTROL_SOCKET"))
	if err != nil {
		return fail(fmt.Errorf("dial control socket: %w", err))
	}
	var sendMu sync.Mutex
	enc := json.NewEncoder(conn) // Encode ends each message with '\n'
	send := func(m controlMsg) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return enc.Encode(m)
	}
	if err := send(controlMsg{Type: "hello", Service: os.Getenv("MACRONODE_SERVICE"), PID: os.Getpid(),
		Token: os.Getenv("MACRONODE_CONTROL_TOKEN"), Version: "bench", Protocol: 1}); err != nil {
		return fail(fmt.Errorf("send hello: %w", err))
	}
	if err := send(controlMsg{Type: "ready", Addr: ln.Addr().String()}); err != nil {
		return fail(fmt.Errorf("send ready: %w", err))
	}
	quit := make(chan struct{})
	go func() { // the parent's messages: exit on shutdown or when it goes away
		defer close(quit)
		sc := bufio.NewScanner(conn)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			var m controlMsg
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Type == "shutdown" {
				return
			}
		}
	}()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if send(controlMsg{Type: "heartbeat"}) != nil {
					return
				}
			}
		}
	}()

	// Give the bench time to see the node ready before the flood begins.
	select {
	case <-quit:
		return exitOK
	case <-time.After(500 * time.Millisecond):
	}
	if err := floodAndReport(os.Stderr, dur); err != nil {
		return fail(err)
	}
	<-quit
	_ = send(controlMsg{Type: "goodbye"})
	_ = conn.Close()
	_ = srv.Close()
	return exitOK
}

// floodUnderRunit is the flood child run by runsv, with no control socket:
// it floods its stdout (the pipe to svlogd), reports, and waits for runsv's
// SIGTERM.
func floodUnderRunit(dur time.Duration, fail func(error) int) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if err := floodAndReport(os.Stdout, dur); err != nil {
		return fail(err)
	}
	<-term
	return exitOK
}

// floodAndReport floods w for dur, then writes the result to envFloodOut.
func floodAndReport(w io.Writer, dur time.Duration) error {
	res, err := flood(w, dur)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(res)
	tmp := os.Getenv(envFloodOut) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if err := os.Rename(tmp, os.Getenv(envFloodOut)); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// flood writes numbered JSON log lines to w for d, through a 64 KiB buffer,
// at most $MNBENCH_FLOOD_RATE lines/s when that is set (then the buffer is
// flushed every 256 lines, and the writer sleeps while ahead of the pace).
func flood(w io.Writer, d time.Duration) (floodResult, error) {
	rate, _ := strconv.ParseFloat(os.Getenv(envFloodRate), 64)
	bw := bufio.NewWriterSize(w, 64<<10)
	prefix := []byte(`{"@level":"info","@message":"flood line","@module":"mnbench","n":`)
	line := make([]byte, 0, 128)
	var n int64
	start := time.Now()
	end := start.Add(d)
	for {
		for range 256 {
			line = append(line[:0], prefix...)
			line = strconv.AppendInt(line, n, 10)
			line = append(line, '}', '\n')
			if _, err := bw.Write(line); err != nil {
				return floodResult{}, fmt.Errorf("write log line: %w", err)
			}
			n++
		}
		now := time.Now()
		if now.After(end) {
			break
		}
		if due := start.Add(time.Duration(float64(n) / rate * float64(time.Second))); rate > 0 && due.After(now) {
			if err := bw.Flush(); err != nil {
				return floodResult{}, fmt.Errorf("flush log lines: %w", err)
			}
			time.Sleep(due.Sub(now))
		}
	}
	if err := bw.Flush(); err != nil {
		return floodResult{}, fmt.Errorf("flush log lines: %w", err)
	}
	return floodResult{Lines: n, StartNS: start.UnixNano(), EndNS: time.Now().UnixNano()}, nil
}

// pacedRate is the flood rate the parent must keep whole (issue 13: at
// least 1 M lines/s, with its output going to a file).
const pacedRate = 1e6

func benchLoglines(ctx context.Context, o *opts) error {
	runs := o.runsOr(3, 2)
	d := o.durOr(o.flood, 5*time.Second, 3*time.Second)
	t := newTable(o, "Supervisor", fmt.Sprintf("log lines through the parent: a child floods JSON lines to stderr for %s (parent RON_LOG_FORMAT=json, its output to a file); runit's svlogd on the same flood", d))
	defer t.print()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find mnbench executable: %w", err)
	}
	var childRate, parentRate, keptRate, dropped, inFile, rss, hwm []float64
	var firstErr error
	for i := range runs {
		r, err := loglinesRun(ctx, o, exe, d, i, 0)
		if err != nil {
			firstErr = err
			progress("  run %d/%d: %v", i+1, runs, err)
			break
		}
		childRate = append(childRate, r.childRate)
		parentRate = append(parentRate, r.parentRate)
		keptRate = append(keptRate, r.keptRate)
		dropped = append(dropped, r.dropped)
		inFile = append(inFile, r.inFile)
		rss = append(rss, r.rssMiB)
		hwm = append(hwm, r.hwmMiB)
		progress("  run %d/%d: child wrote %.0f lines/s, parent read %.0f and kept %.0f lines/s, dropped %.0f, RSS %.1f MiB",
			i+1, runs, r.childRate, r.parentRate, r.keptRate, r.dropped, r.rssMiB)
	}
	note := ""
	if firstErr != nil {
		note = "incomplete: " + firstErr.Error()
	}
	cr := t.add("child write rate (lines reached the pipe)", "lines/s", childRate, note)
	pr := t.add("parent read rate (macronode_child_log_lines_total)", "lines/s", parentRate, "rate end = last counter change, polled every 100ms")
	kr := t.add("parent kept rate (lines in its output file)", "lines/s", keptRate, "lines/s over the child's flood, or until the last line read if later")
	t.add("parent dropped lines (macronode_child_log_dropped_total)", "lines", dropped, "per run")
	t.add("parent dropped share", "x", fracs(dropped, inFile), "dropped / (kept + dropped)")
	t.add("parent RSS after the flood (VmRSS)", "MiB", rss, "")
	t.add("parent peak RSS (VmHWM)", "MiB", hwm, "")
	t.ratio("ratio parent read / child write", pr, cr, "1 = the parent kept up")

	// The goal's figure: a child paced at pacedRate lines/s, all kept?
	var pacedKept, pacedDropped []float64
	for i := range runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r, err := loglinesRun(ctx, o, exe, d, runs+i, pacedRate)
		if err != nil {
			progress("  paced run %d/%d: %v", i+1, runs, err)
			break
		}
		pacedKept = append(pacedKept, r.keptRate)
		pacedDropped = append(pacedDropped, r.dropped)
		progress("  paced run %d/%d: child wrote %.0f lines/s, parent kept %.0f lines/s, dropped %.0f", i+1, runs, r.childRate, r.keptRate, r.dropped)
	}
	t.add(fmt.Sprintf("child paced at %.0f lines/s: parent kept rate", pacedRate), "lines/s", pacedKept, "lines in its output file")
	t.add(fmt.Sprintf("child paced at %.0f lines/s: parent dropped lines", pacedRate), "lines", pacedDropped, "per run; goal 0")

	if ctx.Err() != nil {
		return ctx.Err()
	}
	var svRate, svChild []float64
	var why string
	for i := range runs {
		r, w, err := svlogdRun(ctx, o, exe, d, i)
		if w != "" || err != nil {
			why = w
			if err != nil {
				why = err.Error()
			}
			progress("  svlogd run %d/%d: %s", i+1, runs, why)
			break
		}
		svRate = append(svRate, r.kept)
		svChild = append(svChild, r.childRate)
		progress("  svlogd run %d/%d: child wrote %.0f lines/s, svlogd kept %.0f lines/s", i+1, runs, r.childRate, r.kept)
	}
	if len(svRate) == 0 {
		t.skip("runit svlogd: kept rate (lines in its current file)", why)
		return nil
	}
	t.add("runit svlogd: child write rate (svlogd paces it: a full pipe blocks)", "lines/s", svChild, why)
	sr := t.add("runit svlogd: kept rate (lines in its current file)", "lines/s", svRate, "svlogd drops none")
	t.ratio("ratio parent kept / svlogd kept", kr, sr, "")
	return nil
}

// fracs returns dropped[i] / (dropped[i] + kept[i]).
func fracs(dropped, kept []float64) []float64 {
	out := make([]float64, 0, len(dropped))
	for i := range dropped {
		if tot := dropped[i] + kept[i]; tot > 0 {
			out = append(out, dropped[i]/tot)
		}
	}
	return out
}

type loglinesResult struct {
	childRate, parentRate, keptRate, dropped, inFile, rssMiB, hwmMiB float64
}

func loglinesRun(ctx context.Context, o *opts, exe string, d time.Duration, i int, rate float64) (loglinesResult, error) {
	var r loglinesResult
	out := filepath.Join(o.tmp, "flood-"+strconv.Itoa(i)+".json")
	cfg := fmt.Sprintf("services:\n  overlay:\n    binary: %q\n    env:\n      %s: %s\n      %s: %q\n      %s: %q\n",
		exe, envRole, roleFloodChild, envFloodFor, d.String(), envFloodOut, out)
	if rate > 0 {
		cfg += fmt.Sprintf("      %s: %q\n", envFloodRate, strconv.FormatFloat(rate, 'f', 0, 64))
	}
	logPath := filepath.Join(o.tmp, "parent-"+strconv.Itoa(i)+".log")
	defer func() { _ = os.Remove(logPath) }()
	n, err := startReadyNode(ctx, o, nodeOpts{planes: []string{"overlay"}, config: cfg, log: logPath})
	if err != nil {
		return r, err
	}
	defer func() { _ = n.stop() }()
	var res floodResult
	err = eventually(ctx, d+30*time.Second, "flood child result "+out, func() (bool, error) {
		b, err := os.ReadFile(out)
		if err != nil {
			return false, err
		}
		return json.Unmarshal(b, &res) == nil, nil
	})
	if err != nil {
		return r, err
	}
	// Wait until the parent's counter stops moving: it has read everything.
	var lines, drop float64
	lastChange := time.Now()
	stableSince := time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, err := n.metrics(ctx, `service="overlay"`)
		if err != nil {
			return r, err
		}
		cur := m["macronode_child_log_lines_total"]
		if _, ok := m["macronode_child_log_lines_total"]; !ok {
			return r, errors.New("/metrics has no macronode_child_log_lines_total{service=\"overlay\"}")
		}
		now := time.Now()
		if cur != lines {
			lines, lastChange, stableSince = cur, now, now
		}
		drop = m["macronode_child_log_dropped_total"]
		if now.Sub(stableSince) >= 300*time.Millisecond && lines >= float64(res.Lines) {
			break
		}
		if now.After(deadline) {
			return r, fmt.Errorf("parent counted %.0f of %d lines after 60s", lines, res.Lines)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return r, err
		}
	}
	ps, err := readProcStat(n.proc.pid())
	if err != nil {
		return r, err
	}
	childDur := time.Duration(res.EndNS - res.StartNS)
	parentDur := max(lastChange.Sub(time.Unix(0, res.StartNS)), childDur)
	r.childRate = float64(res.Lines) / childDur.Seconds()
	r.parentRate = lines / parentDur.Seconds()
	// What reached the file: the parent has written all it kept once its
	// counters stopped, and stopping it flushes the rest.
	if err := n.stop(); err != nil {
		return r, fmt.Errorf("stop node: %w", err)
	}
	kept, err := countLines(logPath, []byte(`"flood line"`))
	if err != nil {
		return r, err
	}
	r.keptRate = kept / parentDur.Seconds()
	r.inFile = kept
	r.dropped = drop
	r.rssMiB = float64(ps.rssKiB) / 1024
	r.hwmMiB = float64(ps.hwmKiB) / 1024
	return r, nil
}

// floodListener serves on the socket the parent holds for the plane (fd 3,
// systemd's LISTEN_FDS convention, addressed to this pid), else binds addr.
func floodListener(addr string) (net.Listener, error) {
	if os.Getenv("LISTEN_FDS") == "1" && os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		f := os.NewFile(3, "listener")
		ln, err := net.FileListener(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("inherited listener: %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}
