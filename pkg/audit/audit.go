// Package audit is the node's audit log (SPEC §5): one JSON line per admin
// POST (who, what, result), reload (with its diff), fault, crash and
// circuit-breaker trip, at data_dir/audit/audit.log, rotated by size keeping
// a fixed number of files. Append returns once the line is on stable storage
// (write, then fsync), so an admin action is answered only after its record
// is durable. Under amnesia the log is a memory ring and nothing touches disk.
package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxBytes   = 10 << 20 // rotate the current file past this size
	DefaultKeep       = 5        // files kept, the current one included
	DefaultMemRecords = 1000     // records kept in memory under amnesia
	FileName          = "audit.log"
)

// The record kinds.
const (
	KindAdmin   = "admin"   // an admin POST
	KindReload  = "reload"  // a reload (the POST's own record when it came over HTTP)
	KindFault   = "fault"   // a fault injected over the admin API
	KindCrash   = "crash"   // a child died without being asked to
	KindBreaker = "breaker" // a crash-loop circuit breaker opened
	KindGap     = "gap"     // the log fell behind the events and lost some
)

// Record is one audit line.
type Record struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Who       string    `json:"who"`            // "token:<fingerprint>", "mtls:<subject>", "addr:<ip>", "signal", "supervisor"
	Peer      string    `json:"peer,omitempty"` // the client's address, for an admin request
	Action    string    `json:"action"`         // e.g. "POST /api/v1/services/storage/fault"
	Service   string    `json:"service,omitempty"`
	Result    string    `json:"result"` // e.g. "202", "ok", "error: ..."
	RequestID string    `json:"request_id,omitempty"`
	Detail    any       `json:"detail,omitempty"` // the reload diff, the fault, the exit
}

// Options configures a Log.
type Options struct {
	Dir        string // directory of audit.log; empty: memory only (amnesia)
	MaxBytes   int64  // DefaultMaxBytes when <= 0
	Keep       int    // DefaultKeep when <= 0
	MemRecords int    // DefaultMemRecords when <= 0
}

// Log is the audit log. It is safe for concurrent use.
type Log struct {
	opts Options

	mu   sync.Mutex
	f    *os.File // nil in memory mode
	size int64
	mem  []Record // memory mode: oldest first, at most MemRecords
}

// Open opens (creating 0700/0600) the audit log in opts.Dir, or a memory
// log when Dir is empty.
func Open(opts Options) (*Log, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.MemRecords <= 0 {
		opts.MemRecords = DefaultMemRecords
	}
	l := &Log{opts: opts}
	if opts.Dir == "" {
		return l, nil
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create %s: %w", opts.Dir, err)
	}
	if err := l.openCurrent(); err != nil {
		return nil, err
	}
	return l, nil
}

// Path is the current file's path ("" in memory mode).
func (l *Log) Path() string {
	if l.opts.Dir == "" {
		return ""
	}
	return filepath.Join(l.opts.Dir, FileName)
}

func (l *Log) openCurrent() error {
	f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("audit: stat: %w", err)
	}
	if err := syncDir(l.opts.Dir); err != nil {
		_ = f.Close()
		return err
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Append writes one record and returns once it is durable (fsync). A zero
// Time is set to now.
func (l *Log) Append(r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opts.Dir == "" {
		if len(l.mem) == l.opts.MemRecords {
			l.mem = append(l.mem[:0], l.mem[1:]...)
		}
		l.mem = append(l.mem, r)
		return nil
	}
	if l.f == nil {
		return errors.New("audit: log is closed")
	}
	if l.size > 0 && l.size+int64(len(line)) > l.opts.MaxBytes {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit: fsync: %w", err)
	}
	return nil
}

// rotate shifts audit.log.N-1 ... audit.log to audit.log.N ... audit.log.1,
// dropping the oldest, and opens a fresh audit.log.
func (l *Log) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("audit: close for rotation: %w", err)
	}
	l.f = nil
	base := l.Path()
	for i := l.opts.Keep - 1; i >= 1; i-- {
		from := base
		if i > 1 {
			from = base + "." + strconv.Itoa(i-1)
		}
		if err := os.Rename(from, base+"."+strconv.Itoa(i)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotate: %w", err)
		}
	}
	if l.opts.Keep == 1 {
		if err := os.Remove(base); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotate: %w", err)
		}
	}
	return l.openCurrent()
}

// Read returns the records at or after since (zero: all), oldest first, at
// most the last limit of them (limit <= 0: all).
func (l *Log) Read(since time.Time, limit int) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Record
	keep := func(r Record) {
		if r.Time.Before(since) {
			return
		}
		out = append(out, r)
		if limit > 0 && len(out) > 2*limit {
			out = append(out[:0], out[len(out)-limit:]...)
		}
	}
	if l.opts.Dir == "" {
		for _, r := range l.mem {
			keep(r)
		}
	} else {
		for i := l.opts.Keep - 1; i >= 0; i-- {
			path := l.Path()
			if i > 0 {
				path += "." + strconv.Itoa(i)
			}
			if err := readFile(path, keep); err != nil {
				return nil, err
			}
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// readFile feeds each record of one file to f; a missing file is empty and
// an undecodable line (a torn write at a crash) is skipped.
func readFile(path string, f func(Record)) error {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: read: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			f(r)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("audit: read %s: %w", path, err)
	}
	return nil
}

// Close closes the current file; later Appends fail.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: fsync dir: %w", err)
	}
	return nil
}
