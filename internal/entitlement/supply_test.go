package entitlement

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Supply fixtures, judged at t0. Every contract is of region DE and covers
// every tier unless said otherwise.
func supplyFixtures() map[string]*v1.DistributorContract {
	return contractMap(
		// Active until t0+90d (Expiring), ends t0+100d.
		newContract("active-a", starts(t0.Add(-10*day)), ends(t0.Add(100*day)), notice(10*day)),
		// Active until t0+190d, ends t0+200d.
		newContract("active-b", starts(t0.Add(-10*day)), ends(t0.Add(200*day)), notice(10*day)),
		// Open-ended, starts t0+5d.
		newContract("pending", starts(t0.Add(5*day))),
		// Ended t0-1d.
		newContract("expired", starts(t0.Add(-100*day)), ends(t0.Add(-day)), notice(day)),
		// Ended t0-1d, grace 5d: Grace until t0+4d.
		newContract("grace", starts(t0.Add(-100*day)), ends(t0.Add(-day)), notice(day), grace(5*day)),
		// Ends t0+5d, notice 30d: Expiring now.
		newContract("expiring", starts(t0.Add(-100*day)), ends(t0.Add(5*day)), notice(30*day)),
		// Region AT, starts t0+1h (a boundary that must not count).
		newContract("austria", region("AT"), starts(t0.Add(time.Hour))),
		// Covers only Ready (partners here are Advanced), starts t0+2h.
		newContract("ready-only", starts(t0.Add(2*time.Hour)), entitlements(v1.TierEntitlement{Tier: v1.TierReady, Subscriptions: 1})),
		// Open-ended, active since t0-1d: no boundary ahead.
		newContract("open", starts(t0.Add(-day))),
	)
}

func TestSelectSupply(t *testing.T) {
	type skip struct{ contract, reason string }
	cases := []struct {
		name        string
		list        []string
		mutate      func(map[string]*v1.DistributorContract)
		want        string
		wantPhase   v1.ContractPhase
		wantSkipped []skip
		wantNextAt  time.Time
	}{
		{
			name: "first listed wins", list: []string{"active-b", "active-a"},
			want: "active-b", wantPhase: v1.ContractActive, wantNextAt: t0.Add(90 * day),
		},
		{
			name: "first listed wins, other order", list: []string{"active-a", "active-b"},
			want: "active-a", wantPhase: v1.ContractActive, wantNextAt: t0.Add(90 * day),
		},
		{
			name: "missing contract skipped", list: []string{"nope", "active-a"},
			want: "active-a", wantPhase: v1.ContractActive, wantNextAt: t0.Add(90 * day),
			wantSkipped: []skip{{"nope", v1.ReasonContractNotFound}},
		},
		{
			name: "nil map entry counts as missing", list: []string{"gone", "active-a"},
			mutate: func(m map[string]*v1.DistributorContract) { m["gone"] = nil },
			want:   "active-a", wantPhase: v1.ContractActive, wantNextAt: t0.Add(90 * day),
			wantSkipped: []skip{{"gone", v1.ReasonContractNotFound}},
		},
		{
			name: "region mismatch skipped; its boundaries ignored", list: []string{"austria", "active-a"},
			want: "active-a", wantPhase: v1.ContractActive, wantNextAt: t0.Add(90 * day),
			wantSkipped: []skip{{"austria", v1.ReasonContractMismatch}},
		},
		{
			name: "tier not covered skipped; its boundaries ignored", list: []string{"ready-only", "active-a"},
			want: "active-a", wantPhase: v1.ContractActive, wantNextAt: t0.Add(90 * day),
			wantSkipped: []skip{{"ready-only", v1.ReasonContractMismatch}},
		},
		{
			name: "pending skipped", list: []string{"pending", "active-b"},
			want: "active-b", wantPhase: v1.ContractActive, wantNextAt: t0.Add(5 * day),
			wantSkipped: []skip{{"pending", v1.ReasonContractPending}},
		},
		{
			name: "expired skipped", list: []string{"expired", "active-b"},
			want: "active-b", wantPhase: v1.ContractActive, wantNextAt: t0.Add(190 * day),
			wantSkipped: []skip{{"expired", v1.ReasonContractExpired}},
		},
		{
			name: "grace still supplies", list: []string{"grace", "active-a"},
			want: "grace", wantPhase: v1.ContractGrace, wantNextAt: t0.Add(4 * day),
		},
		{
			name: "expiring still supplies", list: []string{"expiring", "active-a"},
			want: "expiring", wantPhase: v1.ContractExpiring, wantNextAt: t0.Add(5 * day),
		},
		{
			name: "NextAt includes contracts after the chosen one", list: []string{"active-b", "active-a", "grace"},
			want: "active-b", wantPhase: v1.ContractActive, wantNextAt: t0.Add(4 * day),
		},
		{
			name: "NextAt includes a pending contract after the chosen one", list: []string{"active-a", "pending"},
			want: "active-a", wantPhase: v1.ContractActive, wantNextAt: t0.Add(5 * day),
		},
		{
			name: "none supplies: all skipped in order, NextAt from the pending one", list: []string{"expired", "nope", "pending", "austria"},
			wantNextAt: t0.Add(5 * day),
			wantSkipped: []skip{
				{"expired", v1.ReasonContractExpired}, {"nope", v1.ReasonContractNotFound},
				{"pending", v1.ReasonContractPending}, {"austria", v1.ReasonContractMismatch},
			},
		},
		{
			name: "only expired: nothing, no NextAt", list: []string{"expired"},
			wantSkipped: []skip{{"expired", v1.ReasonContractExpired}},
		},
		{
			name: "open-ended active: no NextAt", list: []string{"open"},
			want: "open", wantPhase: v1.ContractActive,
		},
		{name: "empty list", list: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := supplyFixtures()
			if tc.mutate != nil {
				tc.mutate(m)
			}
			p := newPartner("acme", tc.list)
			s := SelectSupply(&p.Spec, m, t0)
			if s.Contract != tc.want {
				t.Fatalf("SelectSupply(%v): want contract %q, got %q (skipped %+v)", tc.list, tc.want, s.Contract, s.Skipped)
			}
			if s.Entitled() != (tc.want != "") {
				t.Errorf("Entitled(): want %v, got %v", tc.want != "", s.Entitled())
			}
			if tc.want != "" {
				c := m[tc.want]
				if s.Phase != tc.wantPhase {
					t.Errorf("Phase: want %s, got %s", tc.wantPhase, s.Phase)
				}
				if s.Distributor != c.Spec.Distributor {
					t.Errorf("Distributor: want %q, got %q", c.Spec.Distributor, s.Distributor)
				}
				if s.Entitlement == nil || s.Entitlement.Tier != p.Spec.Tier {
					t.Errorf("Entitlement: want the %s entry of %s, got %+v", p.Spec.Tier, tc.want, s.Entitlement)
				}
				if want := ScheduleOf(&c.Spec); s.Schedule != want {
					t.Errorf("Schedule: want %+v, got %+v", want, s.Schedule)
				}
			}
			if !s.NextAt.Equal(tc.wantNextAt) {
				t.Errorf("NextAt: want %s, got %s", tc.wantNextAt, s.NextAt)
			}
			var got []skip
			for _, k := range s.Skipped {
				got = append(got, skip{k.Contract, k.Reason})
				if !strings.Contains(k.Message, k.Contract) {
					t.Errorf("skip %s: want a message naming it, got %q", k.Contract, k.Message)
				}
			}
			if len(got) != len(tc.wantSkipped) {
				t.Fatalf("Skipped: want %+v, got %+v", tc.wantSkipped, got)
			}
			for i := range got {
				if got[i] != tc.wantSkipped[i] {
					t.Errorf("Skipped[%d]: want %+v, got %+v", i, tc.wantSkipped[i], got[i])
				}
			}
		})
	}
}

func TestSelectSupplySkipMessages(t *testing.T) {
	p := newPartner("acme", []string{"austria", "ready-only", "pending", "expired", "nope"})
	s := SelectSupply(&p.Spec, supplyFixtures(), t0)
	want := map[string][]string{
		"austria":    {"region AT", "in DE"},
		"ready-only": {"tier Advanced"},
		"pending":    {"starts at " + formatTime(t0.Add(5*day))},
		"expired":    {"ended at " + formatTime(t0.Add(-day))},
		"nope":       {"not found"},
	}
	if len(s.Skipped) != len(want) {
		t.Fatalf("Skipped: want %d entries, got %+v", len(want), s.Skipped)
	}
	for _, k := range s.Skipped {
		for _, sub := range want[k.Contract] {
			if !strings.Contains(k.Message, sub) {
				t.Errorf("skip %s (%s): want message containing %q, got %q", k.Contract, k.Reason, sub, k.Message)
			}
		}
	}
}

// Supply.Skipped documents: "those after the supplying one are not examined
// and not listed" — whatever their problem.
func TestSelectSupplyDoesNotListContractsAfterTheSupplyingOne(t *testing.T) {
	cases := [][]string{
		{"active-a", "pending", "expired"},
		{"active-a", "nope"},
		{"active-a", "austria"},
		{"active-a", "ready-only"},
	}
	for _, list := range cases {
		t.Run(strings.Join(list, ","), func(t *testing.T) {
			p := newPartner("acme", list)
			s := SelectSupply(&p.Spec, supplyFixtures(), t0)
			if s.Contract != "active-a" || len(s.Skipped) != 0 {
				t.Errorf("SelectSupply(%v): want active-a with nothing skipped, got %q skipped %+v", list, s.Contract, s.Skipped)
			}
		})
	}
}

func TestSelectSupplyAtBoundaries(t *testing.T) {
	// active-a stops supplying at endsAt (no grace) = t0+100d; active-b takes over.
	m := supplyFixtures()
	p := newPartner("acme", []string{"active-a", "active-b"})
	cases := []struct {
		now  time.Time
		want string
	}{
		{t0.Add(100*day - time.Nanosecond), "active-a"},
		{t0.Add(100 * day), "active-b"},
		{t0.Add(200 * day), ""},
	}
	for _, tc := range cases {
		if got := SelectSupply(&p.Spec, m, tc.now).Contract; got != tc.want {
			t.Errorf("SelectSupply(%v) at %s: want %q, got %q", p.Spec.Contracts, tc.now, tc.want, got)
		}
	}
	// Before the handover, NextAt is active-a's end: the instant to re-decide.
	if got := SelectSupply(&p.Spec, m, t0.Add(95*day)).NextAt; !got.Equal(t0.Add(100 * day)) {
		t.Errorf("NextAt at t0+95d: want active-a's end %s, got %s", t0.Add(100*day), got)
	}
}

func TestSuccessor(t *testing.T) {
	end := t0.Add(100 * day) // active-a's end (no grace)
	extra := contractMap(
		newContract("starts-at-end", starts(end)),
		newContract("starts-after-end", starts(end.Add(time.Second))),
		newContract("ends-at-end", starts(t0.Add(-day)), ends(end)),
		newContract("graced", starts(t0.Add(-10*day)), ends(end), notice(day), grace(3*day)),
		newContract("ends-in-grace", starts(t0.Add(-day)), ends(end.Add(2*day))),
		newContract("ends-after-grace", starts(t0.Add(-day)), ends(end.Add(3*day+time.Second))),
	)
	cases := []struct {
		name string
		list []string
		want string
	}{
		{"next listed supplying at the end", []string{"active-a", "active-b"}, "active-b"},
		{"pending now, active at the end", []string{"active-a", "pending"}, "pending"},
		{"expiring now, expired at the end", []string{"active-a", "expiring"}, ""},
		{"none listed after", []string{"active-a"}, ""},
		{"starts exactly at the end: contiguous handover", []string{"active-a", "starts-at-end"}, "starts-at-end"},
		{"starts 1s after the end: gap, revoked", []string{"active-a", "starts-after-end"}, ""},
		{"ends at the same instant: not a successor", []string{"active-a", "ends-at-end"}, ""},
		{"preferred contract pending now, active by the end", []string{"pending", "active-a"}, "pending"},
		{"judged at endsAt+grace: ends within the grace", []string{"graced", "ends-in-grace"}, ""},
		{"judged at endsAt+grace: outlasts the grace", []string{"graced", "ends-in-grace", "ends-after-grace"}, "ends-after-grace"},
		{"open-ended current supply: none", []string{"open", "active-a"}, ""},
		{"not entitled: none", []string{"expired", "nope"}, ""},
		{"pending only: none (not entitled now)", []string{"pending"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := supplyFixtures()
			for k, v := range extra {
				m[k] = v
			}
			p := newPartner("acme", tc.list)
			cur := SelectSupply(&p.Spec, m, t0)
			if got := Successor(&p.Spec, m, cur); got != tc.want {
				t.Errorf("Successor(%v), current %q ending %s: want %q, got %q", tc.list, cur.Contract, cur.Schedule.SupplyEndsAt(), tc.want, got)
			}
		})
	}
}

func TestEntitlementFor(t *testing.T) {
	c := newContract("c", entitlements(v1.TierEntitlement{Tier: v1.TierReady, Subscriptions: 3}))
	if e := EntitlementFor(c, v1.TierReady); e == nil || e.Subscriptions != 3 {
		t.Errorf("EntitlementFor(Ready): want the Ready entry, got %+v", e)
	}
	if e := EntitlementFor(c, v1.TierPremier); e != nil {
		t.Errorf("EntitlementFor(Premier) on a Ready-only contract: want nil, got %+v", e)
	}
	// It points into the contract (no copy).
	if e := EntitlementFor(c, v1.TierReady); e != &c.Spec.Entitlements[0] {
		t.Errorf("EntitlementFor: want a pointer into spec.entitlements, got a copy")
	}
}
