package entitlement

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestNextChange(t *testing.T) {
	cs := supplyFixtures()
	cases := []struct {
		name     string
		list     []string
		suspend  bool
		outcome  v1.NextOutcome // "" for none
		at       time.Time
		contract string
	}{
		{"fails over when the supply ends", []string{"active-a", "active-b"}, false, v1.NextFailOver, t0.Add(100 * day), "active-b"},
		{"revoked when the supply ends", []string{"active-a"}, false, v1.NextRevoke, t0.Add(100 * day), ""},
		{"a pending contract starts: Grant", []string{"expired", "pending"}, false, v1.NextGrant, t0.Add(5 * day), "pending"},
		{"open-ended supply: nothing scheduled", []string{"open"}, false, "", time.Time{}, ""},
		{"a preferred pending contract takes over when it starts", []string{"pending", "active-a"}, false, v1.NextFailOver, t0.Add(5 * day), "pending"},
		{"grace ends, next listed is pending later: Revoke first", []string{"grace", "pending"}, false, v1.NextRevoke, t0.Add(4 * day), ""},
		{"suspended: nothing scheduled", []string{"active-a", "active-b"}, true, "", time.Time{}, ""},
		{"boundaries of unusable contracts do not count", []string{"austria", "ready-only", "open"}, false, "", time.Time{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &v1.PartnerSpec{Tier: v1.TierAdvanced, Region: "DE", Contracts: tc.list, Suspended: tc.suspend}
			got := NextChange(spec, cs, SelectSupply(spec, cs, t0), t0)
			switch {
			case tc.outcome == "" && got != nil:
				t.Errorf("want nothing scheduled, got %+v", *got)
			case tc.outcome != "" && (got == nil || got.Outcome != tc.outcome || !got.At.Time.Equal(tc.at) || got.Contract != tc.contract):
				t.Errorf("want %s at %v to %q, got %+v", tc.outcome, tc.at, tc.contract, got)
			}
		})
	}
}

func TestHistory(t *testing.T) {
	p := newPartner("acme", []string{"active-a"}, namespaces("a"))
	plan := planFor(p, nil)
	h := History(p, plan, t0.Add(300*time.Millisecond))
	if len(h) != 1 || h[0].Outcome != v1.HistoryGranted || h[0].Contract != "active-a" || !h[0].Time.Time.Equal(t0) {
		t.Fatalf("first grant: want one Granted entry on active-a at %v, got %+v", t0, h)
	}
	// The change recorded: the same plan again adds nothing (a retry).
	p.Status.Phase, p.Status.Contract, p.Status.History = v1.PartnerEntitled, "active-a", h
	if again := planFor(p, nil).History; len(again) != 1 {
		t.Errorf("retry after the change was recorded: want 1 entry, got %d", len(again))
	}
	// Suspend, resume, revoke, grant again: each one entry, newest first.
	steps := []struct {
		edit func(*v1.Partner)
		want v1.HistoryOutcome
	}{
		{func(p *v1.Partner) { p.Spec.Suspended = true }, v1.HistorySuspended},
		{func(p *v1.Partner) { p.Spec.Suspended = false }, v1.HistoryResumed},
		{func(p *v1.Partner) { p.Spec.Contracts = []string{"expired"} }, v1.HistoryRevoked},
		{func(p *v1.Partner) { p.Spec.Contracts = []string{"active-b"} }, v1.HistoryRegranted},
	}
	for i, s := range steps {
		s.edit(p)
		plan := planFor(p, nil)
		if plan.History[0].Outcome != s.want || len(plan.History) != i+2 {
			t.Fatalf("step %d: want %s in front of %d entries, got %+v", i, s.want, i+1, plan.History)
		}
		p.Status.Phase, p.Status.Contract, p.Status.History = plan.Phase, plan.Supply.Contract, plan.History
	}
	// At most 20, the oldest dropped.
	for range 30 {
		p.Status.History = append(p.Status.History, v1.HistoryEntry{Time: metav1.NewTime(t0), Outcome: v1.HistoryGranted})
	}
	p.Spec.Suspended = true
	if got := planFor(p, nil).History; len(got) != 20 || got[0].Outcome != v1.HistorySuspended {
		t.Errorf("history cap: want 20 entries, the new one first; got %d, first %+v", len(got), got[0])
	}
}

func TestChangeOutcome(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     v1.NextOutcome
	}{{"a", "a", ""}, {"", "", ""}, {"a", "", v1.NextRevoke}, {"", "a", v1.NextGrant}, {"a", "b", v1.NextFailOver}} {
		if got := ChangeOutcome(tc.from, tc.to); got != tc.want {
			t.Errorf("ChangeOutcome(%q, %q): want %q, got %q", tc.from, tc.to, tc.want, got)
		}
	}
}

func TestScheduledRevocation(t *testing.T) {
	at := t0.Add(100 * day)
	with := func(n *v1.NextChange) *v1.PartnerStatus { return &v1.PartnerStatus{Next: n} }
	cases := []struct {
		name string
		st   *v1.PartnerStatus
		now  time.Time
		want bool
	}{
		{"announced and due", with(&v1.NextChange{At: metav1.NewTime(at), Outcome: v1.NextRevoke}), at.Add(30 * time.Millisecond), true},
		{"announced, not due yet (an edit revoked it early)", with(&v1.NextChange{At: metav1.NewTime(at), Outcome: v1.NextRevoke}), at.Add(-time.Hour), false},
		{"a failover was announced", with(&v1.NextChange{At: metav1.NewTime(at), Outcome: v1.NextFailOver, Contract: "x"}), at, false},
		{"nothing announced", with(nil), at, false},
	}
	for _, tc := range cases {
		if got := ScheduledRevocation(tc.st, tc.now); got != tc.want {
			t.Errorf("%s: want %v, got %v", tc.name, tc.want, got)
		}
	}
}
