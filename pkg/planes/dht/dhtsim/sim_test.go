package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestSmallSimulation runs every phase on a small network and checks the
// figures a healthy DHT must give: everyone joins, every lookup finds its
// provider, hops are counted, and every goroutine stops afterwards.
func TestSmallSimulation(t *testing.T) {
	defer verifyNoLeak(t)
	c, err := parseFlags([]string{"-nodes", "24", "-keys", "6", "-lookups", "20", "-churn", "0.25", "-parallel", "4", "-timeout", "90s"})
	if err != nil {
		t.Fatal(err)
	}
	c.results = filepath.Join(t.TempDir(), "results.tsv")
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s := newSim(c)
	defer func() {
		if err := s.net.close(); err != nil {
			t.Error(err)
		}
	}()
	rep := reporter{results: c.results}
	if err := s.build(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if got := s.net.liveCount(); got != c.nodes {
		t.Fatalf("%d nodes joined, want %d", got, c.nodes)
	}
	if err := s.provideInitial(ctx, rep); err != nil {
		t.Fatal(err)
	}
	before := s.lookupRound(ctx, c.lookups)
	if before.lookups != c.lookups || before.found != c.lookups {
		t.Fatalf("before churn: %d of %d lookups found the provider, want all %d", before.found, before.lookups, c.lookups)
	}
	if before.hopsKnown != before.found || quantile(before.hops, 1) > 6 {
		t.Fatalf("before churn: hops known for %d of %d lookups, hops %v", before.hopsKnown, before.found, before.hops)
	}
	during, err := s.churnPhase(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	if during.lookups == 0 {
		t.Fatal("no lookup ran during the churn")
	}
	if got := s.net.liveCount(); got != c.nodes {
		t.Fatalf("%d nodes live after the churn, want %d", got, c.nodes)
	}
	after := s.lookupRound(ctx, c.lookups)
	if after.found != after.lookups || after.lookups == 0 {
		t.Fatalf("after churn: %d of %d lookups found the provider", after.found, after.lookups)
	}
	rep.phase("after churn", after)
	b, err := os.ReadFile(c.results)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "dhtsim\tafter churn lookup success\t100\t%\t") {
		t.Fatalf("results file lacks the success row:\n%s", b)
	}
}

// verifyNoLeak polls for up to 20s until no goroutine is left, since
// libp2p and mocknet tear connections and streams down asynchronously
// after Close, then reports what is left.
func verifyNoLeak(t *testing.T) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for goleak.Find() != nil && time.Now().Before(deadline) {
		<-tick.C
	}
	goleak.VerifyNone(t)
}
