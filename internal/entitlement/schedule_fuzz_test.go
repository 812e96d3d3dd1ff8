package entitlement

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// bounded maps any int64 into (-limit, limit).
func bounded(x int64, limit time.Duration) time.Duration {
	return time.Duration(x % int64(limit))
}

// FuzzSchedule checks the invariants of a schedule read from a spec (so
// times are truncated to the second) at two instants t1 <= t2:
//   - the phase never goes backwards as time advances;
//   - NextTransition(now), when it exists, is strictly after now, on a whole
//     second, changes the phase, and the phase holds until just before it;
//   - no transition exists once Expired (and Expired lasts forever);
//   - without a next transition the phase never changes again;
//   - PhaseStartedAt(now) is the instant the current phase began;
//   - RequeueAfter towards the next transition is positive.
//
// Inputs are nanosecond offsets: the contract's start from the base, its
// duration (<= 0 clamps endsAt to startsAt), notice and grace (negative
// count as zero), and the two instants from the start.
func FuzzSchedule(f *testing.F) {
	const (
		s  = int64(time.Second)
		d  = int64(day)
		ms = int64(time.Millisecond)
	)
	// startOffset, duration, notice, grace, t1, t2, openEnded
	seed := func(startOff, duration, noticeNs, graceNs, t1, t2 int64, openEnded bool) {
		f.Add(startOff, duration, noticeNs, graceNs, t1, t2, openEnded)
	}
	seed(0, 100*d, 10*d, 2*d, -s, 95*d, false)                        // reference
	seed(0, 100*d, 10*d, 2*d, 90*d-1, 90*d, false)                    // across endsAt-notice
	seed(0, 100*d, 10*d, 2*d, 100*d, 102*d, false)                    // endsAt and endsAt+grace
	seed(0, 100*d, 10*d, 0, 100*d-1, 100*d+1, false)                  // zero grace
	seed(0, 100*d, 0, 2*d, 99*d, 101*d, false)                        // zero notice
	seed(0, int64(time.Hour), 720*int64(time.Hour), 0, -1, 0, false)  // notice > duration
	seed(0, 0, 0, 0, -1, 1, false)                                    // endsAt == startsAt
	seed(0, -d, d, d, -s, s, false)                                   // endsAt before startsAt
	seed(0, 0, 0, 0, -s, 1000*d, true)                                // open-ended
	seed(500*ms, 10*s+700*ms, 3*s+300*ms, 2*s+999*ms, 0, 14*s, false) // fractional seconds everywhere
	seed(-7*d+123, 3*d, -d, -d, -8*d, 8*d, false)                     // negative notice/grace
	seed(0, 100*d, 10*d, 2*d, 200*d, 300*d, false)                    // long expired

	base := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, startOff, duration, noticeNs, graceNs, t1Off, t2Off int64, openEnded bool) {
		const span = 20 * 365 * day
		startRaw := base.Add(bounded(startOff, span))
		spec := v1.DistributorContractSpec{
			StartsAt:     metav1.NewTime(startRaw),
			NoticePeriod: &metav1.Duration{Duration: bounded(noticeNs, span)},
			GracePeriod:  &metav1.Duration{Duration: bounded(graceNs, span)},
		}
		if !openEnded {
			e := metav1.NewTime(startRaw.Add(bounded(duration, span)))
			spec.EndsAt = &e
		}
		sch := ScheduleOf(&spec)
		t1 := startRaw.Add(bounded(t1Off, 2*span))
		t2 := startRaw.Add(bounded(t2Off, 2*span))
		if t2.Before(t1) {
			t1, t2 = t2, t1
		}

		p1, p2 := sch.PhaseAt(t1), sch.PhaseAt(t2)
		if phaseOrder(p1) > phaseOrder(p2) {
			t.Fatalf("%+v: phase went backwards: %s at %s, %s at later %s", sch, p1, t1, p2, t2)
		}
		if openEnded && (p1 == v1.ContractExpiring || p1 == v1.ContractGrace || p1 == v1.ContractExpired) {
			t.Fatalf("%+v: open-ended contract in phase %s at %s", sch, p1, t1)
		}

		for _, now := range []time.Time{t1, t2} {
			phase := sch.PhaseAt(now)
			next, ok := sch.NextTransition(now)
			if phase == v1.ContractExpired && ok {
				t.Fatalf("%+v: Expired at %s but NextTransition = %s", sch, now, next)
			}
			if !ok {
				if !next.IsZero() {
					t.Fatalf("%+v: NextTransition(%s) = (%s, false): want zero time", sch, now, next)
				}
				for _, later := range []time.Time{now.Add(time.Nanosecond), now.Add(span), now.AddDate(300, 0, 0)} {
					if p := sch.PhaseAt(later); p != phase {
						t.Fatalf("%+v: no NextTransition at %s (%s), yet PhaseAt(%s) = %s", sch, now, phase, later, p)
					}
				}
			} else {
				if !next.After(now) {
					t.Fatalf("%+v: NextTransition(%s) = %s: want strictly after now", sch, now, next)
				}
				if next.Nanosecond() != 0 {
					t.Fatalf("%+v: NextTransition(%s) = %s: want a whole second", sch, now, next.Format(time.RFC3339Nano))
				}
				if pn := sch.PhaseAt(next); pn == phase || phaseOrder(pn) < phaseOrder(phase) {
					t.Fatalf("%+v: NextTransition(%s) = %s: phase %s → %s, want a forward change", sch, now, next, phase, pn)
				}
				if pb := sch.PhaseAt(next.Add(-time.Nanosecond)); pb != phase {
					t.Fatalf("%+v: NextTransition(%s) = %s but PhaseAt(next-1ns) = %s, want %s (a transition was skipped)", sch, now, next, pb, phase)
				}
				// Whole-second boundaries: the phase also holds a second before
				// next, unless now is within that second.
				if prev := next.Add(-time.Second); prev.After(now) {
					if pb := sch.PhaseAt(prev); pb != phase {
						t.Fatalf("%+v: NextTransition(%s) = %s but PhaseAt(next-1s) = %s, want %s", sch, now, next, pb, phase)
					}
				}
				if r := RequeueAfter(now, next); r <= 0 || r < next.Sub(now) {
					t.Fatalf("RequeueAfter(%s, %s) = %s: want > 0 and >= %s", now, next, r, next.Sub(now))
				}
			}

			started := sch.PhaseStartedAt(now)
			if phase == v1.ContractPending {
				if !started.IsZero() {
					t.Fatalf("%+v: Pending at %s but PhaseStartedAt = %s, want zero", sch, now, started)
				}
			} else {
				if started.After(now) || sch.PhaseAt(started) != phase {
					t.Fatalf("%+v: PhaseStartedAt(%s) = %s (phase there %s), want <= now and phase %s", sch, now, started, sch.PhaseAt(started), phase)
				}
				if sch.PhaseAt(started.Add(-time.Nanosecond)) == phase {
					t.Fatalf("%+v: PhaseStartedAt(%s) = %s but the phase %s already held 1ns earlier", sch, now, started, phase)
				}
			}
			if Supplies(phase) != (phase == v1.ContractActive || phase == v1.ContractExpiring || phase == v1.ContractGrace) {
				t.Fatalf("Supplies(%s) = %v", phase, Supplies(phase))
			}
		}

		// The transition from t1 bounds t2's phase.
		if next, ok := sch.NextTransition(t1); ok && t2.Before(next) && p2 != p1 {
			t.Fatalf("%+v: next transition after %s is %s, but phase changed %s → %s by %s", sch, t1, next, p1, p2, t2)
		} else if !ok && p2 != p1 {
			t.Fatalf("%+v: no transition after %s, but phase changed %s → %s by %s", sch, t1, p1, p2, t2)
		}
	})
}
