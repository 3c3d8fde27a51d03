package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	for _, tc := range []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"one sample", []float64{7}, 99, 7},
		{"p99 of 100 is the 99th", hundred, 99, 99},
		{"p100 is the max", hundred, 100, 100},
		{"p50 of 100 is the 50th", hundred, 50, 50},
		{"p99 of 10 is the max", []float64{3, 1, 2, 9, 4, 5, 6, 7, 8, 10}, 99, 10},
		{"tiny p is the min", []float64{5, 3, 4}, 0.1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.xs, tc.p); got != tc.want {
				t.Fatalf("percentile(%v, %v) = %v, want %v", tc.xs, tc.p, got, tc.want)
			}
		})
	}
	if !math.IsNaN(percentile(nil, 99)) {
		t.Fatal("percentile of no samples is not NaN")
	}
}

func TestConverged(t *testing.T) {
	all := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name    string
		v       nodeView
		all     []string
		wantRT  int
		want    bool
		missing int
	}{
		{"sees all, table full", nodeView{ready: true, id: "a", peers: []string{"b", "c"}, rt: 2}, all, 2, true, 0},
		{"lists itself too", nodeView{ready: true, id: "a", peers: []string{"a", "b", "c"}, rt: 2}, all, 2, true, 0},
		{"misses one peer", nodeView{ready: true, id: "a", peers: []string{"b"}, rt: 2}, all, 2, false, 1},
		{"unknown peers do not count", nodeView{ready: true, id: "a", peers: []string{"b", "x"}, rt: 2}, all, 2, false, 1},
		{"table short", nodeView{ready: true, id: "a", peers: []string{"b", "c"}, rt: 1}, all, 2, false, 0},
		{"readiness does not count", nodeView{id: "a", peers: []string{"b", "c"}, rt: 2}, all, 2, true, 0},
		{"another id unknown", nodeView{ready: true, id: "a", peers: []string{"b", "c"}, rt: 2}, []string{"a", "b", ""}, 2, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := overlayComplete(tc.v, tc.all) && dhtComplete(tc.v, tc.wantRT); got != tc.want {
				t.Errorf("overlayComplete && dhtComplete = %v, want %v", got, tc.want)
			}
			if got := missingPeers(tc.v.id, tc.v.peers, all); got != tc.missing {
				t.Errorf("missingPeers = %d, want %d", got, tc.missing)
			}
		})
	}
}

func TestNodePorts(t *testing.T) {
	addrs, op, dp := nodePorts(20000, 3)
	want := []string{"127.0.0.1:20380", "127.0.0.1:20330", "127.0.0.1:20340", "127.0.0.1:20350",
		"127.0.0.1:20310", "127.0.0.1:20320", "127.0.0.1:20390"}
	if strings.Join(addrs, " ") != strings.Join(want, " ") || op != 20311 || dp != 20321 {
		t.Fatalf("nodePorts(20000, 3) = %v, %d, %d; want %v, 20311, 20321 (scripts/cluster.sh's layout)", addrs, op, dp, want)
	}
	if len(addrs) != 1+len(allPlanes) {
		t.Fatalf("%d addresses, startNode wants %d", len(addrs), 1+len(allPlanes))
	}
}

func TestFmtSize(t *testing.T) {
	for in, want := range map[int]string{64 << 20: "64MiB", 4 << 10: "4KiB", 1500: "1500B", (1 << 20) + 1024: "1025KiB"} {
		if got := fmtSize(in); got != want {
			t.Errorf("fmtSize(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParseClusterOpts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		quick bool
		bad   string // substring of the error; "" = valid
		check func(clusterOpts) bool
	}{
		{"defaults", nil, false, "", func(c clusterOpts) bool {
			return c.nodes == 20 && c.blobSize == 64<<20 && c.blobs == 3 && c.provides == 30 && c.finders == 2
		}},
		{"quick", nil, true, "", func(c clusterOpts) bool { return c.blobs == 1 && c.provides == 12 }},
		{"small cluster", []string{"-nodes", "3", "-blob-size", "4MiB"}, false, "", func(c clusterOpts) bool {
			return c.nodes == 3 && c.blobSize == 4<<20
		}},
		{"one node", []string{"-nodes", "1"}, false, "-nodes must be 2..50", nil},
		{"too many nodes", []string{"-nodes", "51"}, false, "-nodes must be 2..50", nil},
		{"finders >= nodes", []string{"-nodes", "3", "-finders", "3"}, false, "-finders must be 1..2", nil},
		{"no blobs", []string{"-blobs", "0"}, false, "at least 1", nil},
		{"bad size", []string{"-blob-size", "lots"}, false, "-blob-size", nil},
		{"teardown eats the timeout", []string{"-teardown", "10m"}, false, "leaves nothing", nil},
		{"unknown flag", []string{"-nope"}, false, "cluster flags", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &opts{quick: tc.quick, timeout: 170 * time.Second, args: tc.args}
			co, err := parseClusterOpts(o)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("error %v, want one containing %q", err, tc.bad)
				}
				return
			}
			if err != nil || !tc.check(co) {
				t.Fatalf("parseClusterOpts(%v) = %+v, %v", tc.args, co, err)
			}
		})
	}
}
