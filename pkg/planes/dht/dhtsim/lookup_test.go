package main

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

func TestHopTracker(t *testing.T) {
	sent := func(p peer.ID) *routing.QueryEvent { return &routing.QueryEvent{Type: routing.SendingQuery, ID: p} }
	resp := func(p peer.ID, closer ...peer.ID) *routing.QueryEvent {
		ev := &routing.QueryEvent{Type: routing.PeerResponse, ID: p}
		for _, c := range closer {
			ev.Responses = append(ev.Responses, &peer.AddrInfo{ID: c})
		}
		return ev
	}
	tests := []struct {
		name     string
		seeds    []peer.ID
		events   []*routing.QueryEvent
		holders  []peer.ID
		want     int
		wantSeen bool
		queried  int
	}{
		{
			name:    "routing-table peer holds the record",
			seeds:   []peer.ID{"a", "b"},
			events:  []*routing.QueryEvent{sent("a"), sent("b")},
			holders: []peer.ID{"b"}, want: 1, wantSeen: true, queried: 2,
		},
		{
			name:  "three rounds",
			seeds: []peer.ID{"a"},
			events: []*routing.QueryEvent{
				sent("a"), resp("a", "b"), sent("b"), resp("b", "c"), sent("c"),
			},
			holders: []peer.ID{"c"}, want: 3, wantSeen: true, queried: 3,
		},
		{
			name:  "a seed named again later keeps depth 1",
			seeds: []peer.ID{"a", "b"},
			events: []*routing.QueryEvent{
				sent("a"), resp("a", "b", "c"), sent("b"), sent("c"),
			},
			holders: []peer.ID{"b", "c"}, want: 1, wantSeen: true, queried: 3,
		},
		{
			name:  "first naming wins",
			seeds: []peer.ID{"a"},
			events: []*routing.QueryEvent{
				sent("a"), resp("a", "b"), sent("b"), resp("b", "c"), resp("a", "c"), sent("c"),
			},
			holders: []peer.ID{"c"}, want: 3, wantSeen: true, queried: 3,
		},
		{
			name:  "the shallowest holder counts",
			seeds: []peer.ID{"a"},
			events: []*routing.QueryEvent{
				sent("a"), resp("a", "b", "x"), sent("b"), resp("b", "c"), sent("c"), sent("x"),
			},
			holders: []peer.ID{"c", "x"}, want: 2, wantSeen: true, queried: 4,
		},
		{
			name:  "a named but never queried holder does not count",
			seeds: []peer.ID{"a"},
			events: []*routing.QueryEvent{
				sent("a"), resp("a", "h"),
			},
			holders: []peer.ID{"h"}, wantSeen: false, queried: 1,
		},
		{
			name:  "a peer outside the seeds answering first is at depth 1",
			seeds: nil,
			events: []*routing.QueryEvent{
				resp("a", "b"), sent("b"),
			},
			holders: []peer.ID{"b"}, want: 2, wantSeen: true, queried: 1,
		},
		{
			name:    "errors and other events change nothing",
			seeds:   []peer.ID{"a"},
			events:  []*routing.QueryEvent{sent("a"), {Type: routing.QueryError, ID: "a"}, {Type: routing.DialingPeer, ID: "z"}},
			holders: []peer.ID{"z"}, wantSeen: false, queried: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newHopTracker(tt.seeds)
			for _, ev := range tt.events {
				tr.observe(ev)
			}
			holds := map[peer.ID]bool{}
			for _, h := range tt.holders {
				holds[h] = true
			}
			got, seen := tr.hops(func(p peer.ID) bool { return holds[p] })
			if seen != tt.wantSeen || (seen && got != tt.want) {
				t.Fatalf("hops = %d, %v; want %d, %v", got, seen, tt.want, tt.wantSeen)
			}
			if len(tr.queried) != tt.queried {
				t.Fatalf("queried %d peers, want %d", len(tr.queried), tt.queried)
			}
		})
	}
}
