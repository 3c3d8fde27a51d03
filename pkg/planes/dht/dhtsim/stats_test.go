package main

import (
	"bufio"
	"math"
	"strings"
	"testing"
)

func TestQuantile(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		q    float64
		want float64
	}{
		{"empty", nil, 0.5, math.NaN()},
		{"one", []float64{7}, 0.99, 7},
		{"median odd", []float64{3, 1, 2}, 0.5, 2},
		{"median even takes the lower", []float64{4, 1, 3, 2}, 0.5, 2},
		{"p99 of 100 is the 99th", seq(100), 0.99, 99},
		{"p99 of 10 is the max", seq(10), 0.99, 10},
		{"q 0 is the min", []float64{5, 9, 2}, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := quantile(tt.xs, tt.q)
			if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
				t.Fatalf("quantile = %v, want %v", got, tt.want)
			}
		})
	}
}

func seq(n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[n-1-i] = float64(i + 1) // reversed: quantile must sort
	}
	return xs
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		rss, peak float64
		wantErr   bool
	}{
		{"both", "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n", 1, 2, false},
		{"no peak", "VmRSS:\t1024 kB\n", 0, 0, true},
		{"bad unit", "VmRSS:\t1 MB\nVmHWM:\t1 kB\n", 0, 0, true},
		{"bad number", "VmRSS:\tx kB\nVmHWM:\t1 kB\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, peak, err := parseStatus(bufio.NewScanner(strings.NewReader(tt.in)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && (rss != tt.rss || peak != tt.peak) {
				t.Fatalf("rss, peak = %v, %v; want %v, %v", rss, peak, tt.rss, tt.peak)
			}
		})
	}
}

func TestPhaseStats(t *testing.T) {
	var p phaseStats
	if !math.IsNaN(p.successPct()) {
		t.Fatalf("success of no lookups = %v, want NaN", p.successPct())
	}
	p.add(lookupResult{ok: true, hops: 2, hopsOK: true, queried: 10})
	p.add(lookupResult{ok: true, queried: 12})
	p.add(lookupResult{ok: false, queried: 30})
	p.add(lookupResult{ok: false, late: true})
	p.add(lookupResult{ok: true, hops: 0, hopsOK: true})
	if p.lookups != 5 || p.found != 3 || p.hopsKnown != 2 || p.late != 1 || len(p.ms) != 5 || len(p.queried) != 3 {
		t.Fatalf("counts: %+v", p)
	}
	if got := p.successPct(); got != 60 {
		t.Fatalf("success = %v, want 60", got)
	}
}
