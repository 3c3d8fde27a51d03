package supervisor

import (
	"slices"
	"testing"
	"time"
)

// Each tier gets what remains divided by the tiers left, so what a quick
// tier leaves unused passes on.
func TestTierShare(t *testing.T) {
	tests := []struct {
		name   string
		budget time.Duration
		used   []time.Duration // time each tier actually took (-1: its whole share)
		want   []time.Duration // the share each tier got
	}{
		{"one tier gets it all", 15 * time.Second, []time.Duration{-1}, []time.Duration{15 * time.Second}},
		{"all tiers use their share", 15 * time.Second, []time.Duration{-1, -1, -1}, []time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"quick tiers pass time on", 15 * time.Second, []time.Duration{time.Second, 2 * time.Second, -1}, []time.Duration{5 * time.Second, 7 * time.Second, 12 * time.Second}},
		{"instant tiers leave the last the whole budget", 12 * time.Second, []time.Duration{0, 0, 0, -1}, []time.Duration{3 * time.Second, 4 * time.Second, 6 * time.Second, 12 * time.Second}},
		{"nothing left", 0, []time.Duration{-1, -1}, []time.Duration{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			remaining := tc.budget
			var got []time.Duration
			for i, used := range tc.used {
				share := tierShare(remaining, len(tc.used)-i)
				got = append(got, share)
				if used < 0 {
					used = share
				}
				remaining -= used
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("shares %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKillReserve(t *testing.T) {
	for _, tc := range []struct{ budget, want time.Duration }{
		{15 * time.Second, maxKillReserve},
		{2 * time.Second, 100 * time.Millisecond},
		{0, 0},
	} {
		if got := killReserve(tc.budget); got != tc.want {
			t.Errorf("killReserve(%v) = %v, want %v", tc.budget, got, tc.want)
		}
	}
}

func TestStopTiers(t *testing.T) {
	mk := func(name string, deps ...*service) *service {
		return &service{spec: Spec{Name: name}, deps: deps}
	}
	// The node's planes with their default depends_on, in start order,
	// and a chain of three.
	storage, index, mailbox, overlay := mk("storage"), mk("index"), mk("mailbox"), mk("overlay")
	dht := mk("dht", overlay)
	gateway := mk("gateway", storage, index, mailbox)
	a := mk("a")
	b := mk("b", a)
	c := mk("c", b)
	tiers := stopTiers([]*service{storage, index, mailbox, overlay, dht, gateway, a, b, c})
	var got [][]string
	for _, tier := range tiers {
		var names []string
		for _, v := range tier {
			names = append(names, v.spec.Name)
		}
		got = append(got, names)
	}
	want := [][]string{{"c"}, {"b", "gateway", "dht"}, {"a", "overlay", "mailbox", "index", "storage"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("tiers %v, want %v", got, want)
	}
	if stopTiers(nil) != nil {
		t.Error("no services, no tiers")
	}
}

// The whole drain stays within the stop budget: children that ignore
// SIGTERM are killed when their tier's share ends, the status shows the
// draining child and its deadline, and time a quick tier leaves unused
// goes to the next.
func TestDrainStaysWithinBudget(t *testing.T) {
	const budget = 3 * time.Second
	tests := []struct {
		name      string
		frontMode string
		// bounds of each tier's exit, from the start of the stop
		frontBefore, backAfter time.Duration
	}{
		// Two stubborn tiers: each gets about half.
		{"stubborn tiers share", "ignore-sigterm", budget * 2 / 3, budget * 2 / 3},
		// A quick front tier leaves the back nearly the whole budget.
		{"unused time passes on", "good", budget / 3, budget * 2 / 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			front := fakeSpec(t, "front", tc.frontMode)
			front.DependsOn = []string{"back"}
			back := fakeSpec(t, "back", "ignore-sigterm")
			for _, sp := range []*Spec{&front, &back} {
				sp.ShutdownTimeout = time.Minute // the budget, not the per-child grace, bounds the drain
			}
			h := startHarness(t, []Spec{back, front}, func(o *Options) { o.StopBudget = budget })
			eventually(t, 15*time.Second, "all ready", h.ready)

			start := time.Now()
			h.cancel()
			eventually(t, budget, "back draining with a deadline", func() bool {
				st := h.status("back")
				return st.State == StateStopping && !st.StopDeadline.IsZero() && !st.StopDeadline.After(start.Add(budget))
			})
			h.stop()
			took := time.Since(start)
			if took > budget {
				t.Errorf("the drain took %v, over its budget %v", took, budget)
			}
			fs, bs := h.status("front"), h.status("back")
			if len(fs.Exits) != 1 || len(bs.Exits) != 1 {
				t.Fatalf("exits: front %d, back %d", len(fs.Exits), len(bs.Exits))
			}
			if !fs.Exits[0].Time.Before(bs.Exits[0].Time) {
				t.Errorf("front exited at %v, not before back at %v", fs.Exits[0].Time, bs.Exits[0].Time)
			}
			fd, bd := fs.Exits[0].Time.Sub(start), bs.Exits[0].Time.Sub(start)
			t.Logf("front exited after %v, back after %v, Run returned after %v (budget %v)", fd, bd, took, budget)
			if fd > tc.frontBefore {
				t.Errorf("front exited %v after the stop began, want before %v", fd, tc.frontBefore)
			}
			if bd < tc.backAfter || bd > budget {
				t.Errorf("back killed %v after the stop began, want within [%v, %v]", bd, tc.backAfter, budget)
			}
			if !bs.StopDeadline.IsZero() {
				t.Errorf("a stopped service still shows a stop deadline: %v", bs.StopDeadline)
			}
		})
	}
}
