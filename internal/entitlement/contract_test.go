package entitlement

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// The reference schedule: starts t0, ends t0+100d, notice 10d, grace 2d.
var (
	refStart     = t0
	refExpiring  = t0.Add(90 * day)
	refEnd       = t0.Add(100 * day)
	refSupplyEnd = t0.Add(102 * day)
)

func refSchedule() Schedule {
	return Schedule{StartsAt: refStart, EndsAt: refEnd, Notice: 10 * day, Grace: 2 * day}
}

type phaseCase struct {
	name string
	at   time.Time
	want v1.ContractPhase
}

// around returns the instants 1s/1ns before, at, and 1ns/1s after b, with
// the phase expected before b and from b on.
func around(label string, b time.Time, before, from v1.ContractPhase) []phaseCase {
	return []phaseCase{
		{label + "-1s", b.Add(-time.Second), before},
		{label + "-1ns", b.Add(-time.Nanosecond), before},
		{label, b, from},
		{label + "+1ns", b.Add(time.Nanosecond), from},
		{label + "+1s", b.Add(time.Second), from},
	}
}

func checkPhases(t *testing.T, s Schedule, cases []phaseCase) {
	t.Helper()
	for _, tc := range cases {
		if got := s.PhaseAt(tc.at); got != tc.want {
			t.Errorf("%s: PhaseAt(%s) with %+v: want %s, got %s", tc.name, tc.at.Format(time.RFC3339Nano), s, tc.want, got)
		}
	}
}

func TestPhaseAtAroundEveryBoundary(t *testing.T) {
	var cases []phaseCase
	cases = append(cases, around("startsAt", refStart, v1.ContractPending, v1.ContractActive)...)
	cases = append(cases, around("endsAt-notice", refExpiring, v1.ContractActive, v1.ContractExpiring)...)
	cases = append(cases, around("endsAt", refEnd, v1.ContractExpiring, v1.ContractGrace)...)
	cases = append(cases, around("endsAt+grace", refSupplyEnd, v1.ContractGrace, v1.ContractExpired)...)
	cases = append(cases,
		phaseCase{"long before start", refStart.AddDate(-50, 0, 0), v1.ContractPending},
		phaseCase{"long after end", refSupplyEnd.AddDate(50, 0, 0), v1.ContractExpired},
	)
	checkPhases(t, refSchedule(), cases)
}

func TestPhaseAtOpenEnded(t *testing.T) {
	s := Schedule{StartsAt: refStart, Notice: 10 * day, Grace: 2 * day}
	if !s.OpenEnded() {
		t.Fatalf("OpenEnded() of %+v: want true, got false", s)
	}
	cases := around("startsAt", refStart, v1.ContractPending, v1.ContractActive)
	for _, years := range []int{1, 10, 100, 1000} {
		cases = append(cases, phaseCase{fmt.Sprintf("start+%dy", years), refStart.AddDate(years, 0, 0), v1.ContractActive})
	}
	checkPhases(t, s, cases)

	if !s.ExpiringAt().IsZero() || !s.SupplyEndsAt().IsZero() {
		t.Errorf("open-ended: want zero ExpiringAt and SupplyEndsAt, got %s and %s", s.ExpiringAt(), s.SupplyEndsAt())
	}
	if next, ok := s.NextTransition(refStart.Add(-time.Second)); !ok || !next.Equal(refStart) {
		t.Errorf("open-ended, before start: NextTransition want (%s, true), got (%s, %v)", refStart, next, ok)
	}
	for _, now := range []time.Time{refStart, refStart.Add(time.Nanosecond), refStart.AddDate(5, 0, 0)} {
		if next, ok := s.NextTransition(now); ok {
			t.Errorf("open-ended, started, now=%s: NextTransition want (zero, false), got (%s, true)", now, next)
		}
	}
}

func TestPhaseAtNoticeLongerThanContract(t *testing.T) {
	// One hour of contract, 30 days notice: Expiring from the very start.
	end := refStart.Add(time.Hour)
	s := Schedule{StartsAt: refStart, EndsAt: end, Notice: 720 * time.Hour}
	if got := s.ExpiringAt(); !got.Equal(refStart) {
		t.Errorf("ExpiringAt: want startsAt %s (never before it), got %s", refStart, got)
	}
	var cases []phaseCase
	cases = append(cases, around("startsAt", refStart, v1.ContractPending, v1.ContractExpiring)...)
	cases = append(cases, around("endsAt", end, v1.ContractExpiring, v1.ContractExpired)...)
	checkPhases(t, s, cases)
	for at := refStart.Add(-time.Minute); at.Before(end.Add(time.Minute)); at = at.Add(time.Second) {
		if p := s.PhaseAt(at); p == v1.ContractActive {
			t.Fatalf("PhaseAt(%s): want never Active when notice > duration, got Active", at)
		}
	}
	if next, ok := s.NextTransition(refStart.Add(-time.Second)); !ok || !next.Equal(refStart) {
		t.Errorf("before start: NextTransition want (%s, true), got (%s, %v)", refStart, next, ok)
	}
	if next, ok := s.NextTransition(refStart); !ok || !next.Equal(end) {
		t.Errorf("at start: NextTransition want (%s, true), got (%s, %v)", end, next, ok)
	}
}

func TestPhaseAtZeroGrace(t *testing.T) {
	s := Schedule{StartsAt: refStart, EndsAt: refEnd, Notice: 10 * day}
	if !s.SupplyEndsAt().Equal(refEnd) {
		t.Errorf("SupplyEndsAt with zero grace: want %s, got %s", refEnd, s.SupplyEndsAt())
	}
	checkPhases(t, s, around("endsAt", refEnd, v1.ContractExpiring, v1.ContractExpired))
	for at := refEnd.Add(-time.Minute); at.Before(refEnd.Add(time.Minute)); at = at.Add(time.Second / 2) {
		if p := s.PhaseAt(at); p == v1.ContractGrace {
			t.Fatalf("PhaseAt(%s) with zero grace: want never Grace, got Grace", at)
		}
	}
	if next, ok := s.NextTransition(refExpiring); !ok || !next.Equal(refEnd) || s.PhaseAt(next) != v1.ContractExpired {
		t.Errorf("zero grace, Expiring: NextTransition want (%s, true) to Expired, got (%s, %v) to %s", refEnd, next, ok, s.PhaseAt(next))
	}
}

func TestPhaseAtZeroNotice(t *testing.T) {
	s := Schedule{StartsAt: refStart, EndsAt: refEnd, Grace: 2 * day}
	if !s.ExpiringAt().Equal(refEnd) {
		t.Errorf("ExpiringAt with zero notice: want endsAt %s, got %s", refEnd, s.ExpiringAt())
	}
	var cases []phaseCase
	cases = append(cases, around("endsAt", refEnd, v1.ContractActive, v1.ContractGrace)...)
	cases = append(cases, around("endsAt+grace", refSupplyEnd, v1.ContractGrace, v1.ContractExpired)...)
	checkPhases(t, s, cases)
	if next, ok := s.NextTransition(refStart); !ok || !next.Equal(refEnd) {
		t.Errorf("zero notice, at start: NextTransition want (%s, true), got (%s, %v)", refEnd, next, ok)
	}

	// Zero notice and zero grace: Active straight to Expired.
	s0 := Schedule{StartsAt: refStart, EndsAt: refEnd}
	checkPhases(t, s0, around("endsAt", refEnd, v1.ContractActive, v1.ContractExpired))
}

func TestScheduleOf(t *testing.T) {
	frac := func(tm time.Time) time.Time { return tm.Add(999_999_999 * time.Nanosecond) }
	cet := time.FixedZone("CET", 3600)
	cases := []struct {
		name string
		c    *v1.DistributorContract
		want Schedule
	}{
		{
			name: "defaults: open-ended, notice 720h, grace 0",
			c:    newContract("c"),
			want: Schedule{StartsAt: t0, Notice: 720 * time.Hour},
		},
		{
			name: "fractional seconds truncated",
			c:    newContract("c", starts(frac(t0)), ends(frac(refEnd)), notice(1500*time.Millisecond), grace(2999*time.Millisecond)),
			want: Schedule{StartsAt: t0, EndsAt: refEnd, Notice: time.Second, Grace: 2 * time.Second},
		},
		{
			name: "other time zone converted to UTC",
			c:    newContract("c", starts(t0.In(cet)), ends(refEnd.In(cet)), notice(0)),
			want: Schedule{StartsAt: t0, EndsAt: refEnd},
		},
		{
			name: "negative durations count as zero",
			c:    newContract("c", ends(refEnd), notice(-time.Hour), grace(-time.Hour)),
			want: Schedule{StartsAt: t0, EndsAt: refEnd},
		},
		{
			name: "endsAt before startsAt clamped to startsAt",
			c:    newContract("c", ends(t0.Add(-time.Hour)), notice(0)),
			want: Schedule{StartsAt: t0, EndsAt: t0},
		},
		{
			name: "endsAt in the same second as startsAt clamped",
			c:    newContract("c", starts(t0.Add(100*time.Millisecond)), ends(t0.Add(900*time.Millisecond)), notice(0)),
			want: Schedule{StartsAt: t0, EndsAt: t0},
		},
		{
			name: "endsAt pointer to zero time is open-ended",
			c: func() *v1.DistributorContract {
				c := newContract("c")
				c.Spec.EndsAt = &metav1.Time{}
				return c
			}(),
			want: Schedule{StartsAt: t0, Notice: 720 * time.Hour},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ScheduleOf(&tc.c.Spec)
			if !got.StartsAt.Equal(tc.want.StartsAt) || !got.EndsAt.Equal(tc.want.EndsAt) || got.Notice != tc.want.Notice || got.Grace != tc.want.Grace {
				t.Errorf("ScheduleOf(%+v):\nwant %+v\n got %+v", tc.c.Spec, tc.want, got)
			}
			if got.StartsAt.Location() != time.UTC {
				t.Errorf("StartsAt location: want UTC, got %s", got.StartsAt.Location())
			}
			if got.StartsAt.Nanosecond() != 0 || got.EndsAt.Nanosecond() != 0 {
				t.Errorf("times: want whole seconds, got %s and %s", got.StartsAt.Format(time.RFC3339Nano), got.EndsAt.Format(time.RFC3339Nano))
			}
		})
	}
}

func TestScheduleOfTruncationDecidesPhase(t *testing.T) {
	// startsAt 12:00:00.9 is read as 12:00:00, so the contract is already
	// Active at 12:00:00.5 (status stores whole seconds).
	c := newContract("c", starts(t0.Add(900*time.Millisecond)))
	s := ScheduleOf(&c.Spec)
	if got := s.PhaseAt(t0.Add(500 * time.Millisecond)); got != v1.ContractActive {
		t.Errorf("startsAt %s, PhaseAt(%s): want Active (start truncated to %s), got %s",
			c.Spec.StartsAt.Time.Format(time.RFC3339Nano), t0.Add(500*time.Millisecond).Format(time.RFC3339Nano), t0, got)
	}
	if next, ok := s.NextTransition(t0.Add(-500 * time.Millisecond)); !ok || !next.Equal(t0) {
		t.Errorf("NextTransition before truncated start: want (%s, true), got (%s, %v)", t0, next, ok)
	}
}

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
