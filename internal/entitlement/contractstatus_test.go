package entitlement

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestNextTransition(t *testing.T) {
	ref := refSchedule()
	cases := []struct {
		name   string
		s      Schedule
		now    time.Time
		want   time.Time
		wantOK bool
	}{
		{"pending, long before", ref, refStart.AddDate(-1, 0, 0), refStart, true},
		{"pending, 1ns before start", ref, refStart.Add(-time.Nanosecond), refStart, true},
		{"at start: strictly after now", ref, refStart, refExpiring, true},
		{"active", ref, refStart.Add(day), refExpiring, true},
		{"1ns before expiring", ref, refExpiring.Add(-time.Nanosecond), refExpiring, true},
		{"at expiring", ref, refExpiring, refEnd, true},
		{"expiring", ref, refEnd.Add(-time.Second), refEnd, true},
		{"at end", ref, refEnd, refSupplyEnd, true},
		{"grace", ref, refEnd.Add(time.Hour), refSupplyEnd, true},
		{"at supply end: expired", ref, refSupplyEnd, time.Time{}, false},
		{"long expired", ref, refSupplyEnd.AddDate(3, 0, 0), time.Time{}, false},
		// Coinciding boundaries: skip those where the phase does not change.
		{"zero notice, active: next is endsAt (Grace)", Schedule{StartsAt: refStart, EndsAt: refEnd, Grace: day}, refStart, refEnd, true},
		{"zero notice and grace, active: next is endsAt (Expired)", Schedule{StartsAt: refStart, EndsAt: refEnd}, refStart, refEnd, true},
		{"notice > duration, pending: next is start (Expiring)", Schedule{StartsAt: refStart, EndsAt: refStart.Add(time.Hour), Notice: 2 * time.Hour}, refStart.Add(-time.Hour), refStart, true},
		{"endsAt == startsAt, grace 0: pending to Expired at start", Schedule{StartsAt: refStart, EndsAt: refStart}, refStart.Add(-time.Hour), refStart, true},
		{"endsAt == startsAt, at start: expired", Schedule{StartsAt: refStart, EndsAt: refStart}, refStart, time.Time{}, false},
		{"endsAt == startsAt, grace 1h: Grace then Expired", Schedule{StartsAt: refStart, EndsAt: refStart, Grace: time.Hour}, refStart, refStart.Add(time.Hour), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.s.NextTransition(tc.now)
			if ok != tc.wantOK || !got.Equal(tc.want) {
				t.Fatalf("NextTransition(%s) of %+v: want (%s, %v), got (%s, %v)", tc.now.Format(time.RFC3339Nano), tc.s, tc.want, tc.wantOK, got, ok)
			}
			if !ok {
				return
			}
			if !got.After(tc.now) {
				t.Errorf("NextTransition(%s) = %s: want strictly after now", tc.now, got)
			}
			if before, at := tc.s.PhaseAt(tc.now), tc.s.PhaseAt(got); before == at {
				t.Errorf("NextTransition(%s) = %s: want a phase change, got %s on both sides", tc.now, got, at)
			}
			if before, just := tc.s.PhaseAt(tc.now), tc.s.PhaseAt(got.Add(-time.Nanosecond)); before != just {
				t.Errorf("NextTransition(%s) = %s: want phase %s until then, got %s at next-1ns (an earlier transition was missed)", tc.now, got, before, just)
			}
		})
	}
}

func TestPhaseStartedAt(t *testing.T) {
	ref := refSchedule()
	cases := []struct {
		name string
		s    Schedule
		now  time.Time
		want time.Time
	}{
		{"pending: zero", ref, refStart.Add(-time.Second), time.Time{}},
		{"at start: start", ref, refStart, refStart},
		{"active: start", ref, refStart.Add(day), refStart},
		{"at expiring: expiring", ref, refExpiring, refExpiring},
		{"expiring: endsAt-notice", ref, refEnd.Add(-time.Nanosecond), refExpiring},
		{"grace: endsAt", ref, refEnd.Add(time.Hour), refEnd},
		{"expired: endsAt+grace", ref, refSupplyEnd.AddDate(1, 0, 0), refSupplyEnd},
		{"open-ended active: start", Schedule{StartsAt: refStart}, refStart.AddDate(10, 0, 0), refStart},
		{"notice > duration, expiring: start", Schedule{StartsAt: refStart, EndsAt: refStart.Add(time.Hour), Notice: 2 * time.Hour}, refStart.Add(time.Minute), refStart},
		{"zero grace, expired: endsAt", Schedule{StartsAt: refStart, EndsAt: refEnd, Notice: day}, refEnd.Add(time.Second), refEnd},
		{"zero notice, grace: endsAt", Schedule{StartsAt: refStart, EndsAt: refEnd, Grace: day}, refEnd.Add(time.Second), refEnd},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.PhaseStartedAt(tc.now); !got.Equal(tc.want) {
				t.Errorf("PhaseStartedAt(%s) of %+v (phase %s): want %s, got %s", tc.now, tc.s, tc.s.PhaseAt(tc.now), tc.want, got)
			}
		})
	}
}

func TestRequeueAfter(t *testing.T) {
	cases := []struct {
		name    string
		at      time.Time
		want    time.Duration // 0: only check > 0 and >= at-now
		minimum time.Duration
	}{
		{"long past", t0.Add(-365 * day), 0, 0},
		{"1ns past", t0.Add(-time.Nanosecond), 0, 0},
		{"equal", t0, 0, 0},
		{"1ns future", t0.Add(time.Nanosecond), 0, time.Nanosecond},
		{"1s future", t0.Add(time.Second), time.Second, 0},
		{"1h future", t0.Add(time.Hour), time.Hour, 0},
		{"30d future", t0.Add(30 * day), 30 * day, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := RequeueAfter(t0, tc.at)
			if got <= 0 {
				t.Fatalf("RequeueAfter(now=%s, at=%s): want > 0, got %s", t0, tc.at, got)
			}
			if tc.want != 0 && got != tc.want {
				t.Errorf("RequeueAfter(now=%s, at=%s): want %s, got %s", t0, tc.at, tc.want, got)
			}
			if got < tc.minimum {
				t.Errorf("RequeueAfter(now=%s, at=%s): want >= %s (never early), got %s", t0, tc.at, tc.minimum, got)
			}
		})
	}
}

func TestSupplies(t *testing.T) {
	cases := map[v1.ContractPhase]bool{
		v1.ContractPending:  false,
		v1.ContractActive:   true,
		v1.ContractExpiring: true,
		v1.ContractGrace:    true,
		v1.ContractExpired:  false,
		"":                  false,
		"Bogus":             false,
	}
	for p, want := range cases {
		if got := Supplies(p); got != want {
			t.Errorf("Supplies(%q): want %v, got %v", p, want, got)
		}
	}
}

func TestDecideContract(t *testing.T) {
	refOpts := []contractOpt{starts(refStart), ends(refEnd), notice(10 * day), grace(2 * day)}
	ref := func(extra ...contractOpt) *v1.DistributorContract {
		return newContract("bytec-de", append(append([]contractOpt{}, refOpts...), extra...)...)
	}
	type cond struct {
		status metav1.ConditionStatus
		reason string
	}
	cases := []struct {
		name         string
		c            *v1.DistributorContract
		now          time.Time
		wantPhase    v1.ContractPhase
		wantNext     time.Time
		wantUntil    time.Time
		wantDue      time.Time
		active       cond
		expiring     cond
		wantEvent    string // "" = none
		wantEvType   string
		msgsContains []string // in Active or Expiring message
	}{
		{
			name: "pending, new object", c: ref(), now: refStart.Add(-time.Hour),
			wantPhase: v1.ContractPending, wantNext: refStart, wantUntil: refSupplyEnd,
			active:    cond{metav1.ConditionFalse, v1.ReasonContractPending},
			expiring:  cond{metav1.ConditionFalse, v1.ReasonContractPending},
			wantEvent: v1.EventContractPending, wantEvType: corev1.EventTypeNormal,
			msgsContains: []string{"starts at 2026-03-01T12:00:00Z"},
		},
		{
			name: "active, was pending", c: ref(statusPhase(v1.ContractPending)), now: refStart,
			wantPhase: v1.ContractActive, wantNext: refExpiring, wantUntil: refSupplyEnd, wantDue: refStart,
			active:    cond{metav1.ConditionTrue, v1.ReasonContractActive},
			expiring:  cond{metav1.ConditionFalse, v1.ReasonContractActive},
			wantEvent: v1.EventContractActive, wantEvType: corev1.EventTypeNormal,
		},
		{
			name: "active, unchanged: no event", c: ref(statusPhase(v1.ContractActive)), now: refStart.Add(day),
			wantPhase: v1.ContractActive, wantNext: refExpiring, wantUntil: refSupplyEnd, wantDue: refStart,
			active:   cond{metav1.ConditionTrue, v1.ReasonContractActive},
			expiring: cond{metav1.ConditionFalse, v1.ReasonContractActive},
		},
		{
			name: "expiring, was active", c: ref(statusPhase(v1.ContractActive)), now: refExpiring,
			wantPhase: v1.ContractExpiring, wantNext: refEnd, wantUntil: refSupplyEnd, wantDue: refExpiring,
			active:    cond{metav1.ConditionTrue, v1.ReasonContractExpiring},
			expiring:  cond{metav1.ConditionTrue, v1.ReasonContractExpiring},
			wantEvent: v1.EventContractExpiring, wantEvType: corev1.EventTypeWarning,
			msgsContains: []string{"2026-06-09T12:00:00Z"},
		},
		{
			name: "expiring, unchanged: no event", c: ref(statusPhase(v1.ContractExpiring)), now: refExpiring.Add(time.Hour),
			wantPhase: v1.ContractExpiring, wantNext: refEnd, wantUntil: refSupplyEnd, wantDue: refExpiring,
			active:   cond{metav1.ConditionTrue, v1.ReasonContractExpiring},
			expiring: cond{metav1.ConditionTrue, v1.ReasonContractExpiring},
		},
		{
			name: "grace, was expiring", c: ref(statusPhase(v1.ContractExpiring)), now: refEnd,
			wantPhase: v1.ContractGrace, wantNext: refSupplyEnd, wantUntil: refSupplyEnd, wantDue: refEnd,
			active:    cond{metav1.ConditionTrue, v1.ReasonContractInGrace},
			expiring:  cond{metav1.ConditionTrue, v1.ReasonContractInGrace},
			wantEvent: v1.EventContractInGrace, wantEvType: corev1.EventTypeWarning,
			msgsContains: []string{"2026-06-11T12:00:00Z"},
		},
		{
			name: "expired, was grace", c: ref(statusPhase(v1.ContractGrace)), now: refSupplyEnd,
			wantPhase: v1.ContractExpired, wantUntil: refSupplyEnd, wantDue: refSupplyEnd,
			active:    cond{metav1.ConditionFalse, v1.ReasonContractExpired},
			expiring:  cond{metav1.ConditionFalse, v1.ReasonContractExpired},
			wantEvent: v1.EventContractExpired, wantEvType: corev1.EventTypeNormal,
		},
		{
			name: "expired, unchanged: no event", c: ref(statusPhase(v1.ContractExpired)), now: refSupplyEnd.AddDate(1, 0, 0),
			wantPhase: v1.ContractExpired, wantUntil: refSupplyEnd, wantDue: refSupplyEnd,
			active:   cond{metav1.ConditionFalse, v1.ReasonContractExpired},
			expiring: cond{metav1.ConditionFalse, v1.ReasonContractExpired},
		},
		{
			name: "expired, jumped from active (operator was down)", c: ref(statusPhase(v1.ContractActive)), now: refSupplyEnd.Add(time.Hour),
			wantPhase: v1.ContractExpired, wantUntil: refSupplyEnd, wantDue: refSupplyEnd,
			active:    cond{metav1.ConditionFalse, v1.ReasonContractExpired},
			expiring:  cond{metav1.ConditionFalse, v1.ReasonContractExpired},
			wantEvent: v1.EventContractExpired, wantEvType: corev1.EventTypeNormal,
		},
		{
			name: "open-ended active: no next transition, no entitledUntil", c: newContract("open", statusPhase(v1.ContractPending)), now: t0.AddDate(3, 0, 0),
			wantPhase: v1.ContractActive, wantDue: t0,
			active:    cond{metav1.ConditionTrue, v1.ReasonContractActive},
			expiring:  cond{metav1.ConditionFalse, v1.ReasonContractActive},
			wantEvent: v1.EventContractActive, wantEvType: corev1.EventTypeNormal,
			msgsContains: []string{"open-ended"},
		},
		{
			name: "zero grace: expiring straight to expired", c: newContract("c", ends(refEnd), notice(day), statusPhase(v1.ContractExpiring)), now: refEnd,
			wantPhase: v1.ContractExpired, wantUntil: refEnd, wantDue: refEnd,
			active:    cond{metav1.ConditionFalse, v1.ReasonContractExpired},
			expiring:  cond{metav1.ConditionFalse, v1.ReasonContractExpired},
			wantEvent: v1.EventContractExpired, wantEvType: corev1.EventTypeNormal,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideContract(tc.c, tc.now)
			if d.Phase != tc.wantPhase {
				t.Errorf("Phase: want %s, got %s", tc.wantPhase, d.Phase)
			}
			if !d.NextTransitionAt.Equal(tc.wantNext) {
				t.Errorf("NextTransitionAt: want %s, got %s", tc.wantNext, d.NextTransitionAt)
			}
			if !d.EntitledUntil.Equal(tc.wantUntil) {
				t.Errorf("EntitledUntil: want %s, got %s", tc.wantUntil, d.EntitledUntil)
			}
			if !d.PhaseDueAt.Equal(tc.wantDue) {
				t.Errorf("PhaseDueAt: want %s, got %s", tc.wantDue, d.PhaseDueAt)
			}
			if len(d.Conditions) != 2 {
				t.Errorf("Conditions: want Active and Expiring, got %+v", d.Conditions)
			}
			wantCond(t, d.Conditions, v1.ConditionActive, tc.active.status, tc.active.reason)
			wantCond(t, d.Conditions, v1.ConditionExpiring, tc.expiring.status, tc.expiring.reason)
			for _, c := range d.Conditions {
				if c.Message == "" {
					t.Errorf("condition %s: want a message, got none", c.Type)
				}
			}
			if len(tc.msgsContains) > 0 {
				all := findCond(d.Conditions, v1.ConditionActive).Message + " | " + findCond(d.Conditions, v1.ConditionExpiring).Message
				for _, s := range tc.msgsContains {
					if !strings.Contains(all, s) {
						t.Errorf("condition messages: want %q in them, got %q", s, all)
					}
				}
			}
			wantChanged := tc.c.Status.Phase != tc.wantPhase
			if d.Changed != wantChanged {
				t.Errorf("Changed (status.phase %q → %s): want %v, got %v", tc.c.Status.Phase, d.Phase, wantChanged, d.Changed)
			}
			switch {
			case tc.wantEvent == "" && d.Event != nil:
				t.Errorf("Event (status.phase %q = decided): want none, got %+v", tc.c.Status.Phase, *d.Event)
			case tc.wantEvent != "" && d.Event == nil:
				t.Errorf("Event (status.phase %q → %s): want %s %s, got none", tc.c.Status.Phase, d.Phase, tc.wantEvType, tc.wantEvent)
			case tc.wantEvent != "":
				if d.Event.Reason != tc.wantEvent || d.Event.Type != tc.wantEvType || d.Event.Message == "" {
					t.Errorf("Event: want %s %s with a message, got %+v", tc.wantEvType, tc.wantEvent, *d.Event)
				}
			}
		})
	}
}

func TestRecountDelay(t *testing.T) {
	for _, tc := range []struct {
		supplied int
		want     time.Duration
	}{
		{0, time.Second},
		{1, time.Second},
		{1000, time.Second},
		{1001, 2 * time.Second},
		{5000, 5 * time.Second},
		{10000, 10 * time.Second},
		{100000, 100 * time.Second},
	} {
		if got := RecountDelay(time.Second, tc.supplied); got != tc.want {
			t.Errorf("RecountDelay(1s, %d) = %s, want %s", tc.supplied, got, tc.want)
		}
	}
}
