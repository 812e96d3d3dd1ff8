package entitlement

import (
	"fmt"
	"testing"
	"time"

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
