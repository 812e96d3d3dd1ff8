// Package entitlement holds the operator's decisions as pure functions of
// their inputs and a time: the phase of a contract and its next transition,
// the contract supplying a partner, the objects a partner should have, and
// the spread of its subscription quota. Nothing here talks to the API
// server or reads the wall clock.
package entitlement

import (
	"time"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// DefaultNoticePeriod applies when a contract sets none (the CRD defaults
// it too; this covers objects read before defaulting).
const DefaultNoticePeriod = 720 * time.Hour

// Schedule is a contract's boundaries, truncated to the second as status
// stores them.
type Schedule struct {
	StartsAt time.Time
	// EndsAt is zero for an open-ended contract.
	EndsAt time.Time
	Notice time.Duration
	Grace  time.Duration
}

// OpenEnded reports whether the contract has no end.
func (s Schedule) OpenEnded() bool { return s.EndsAt.IsZero() }

// ExpiringAt is when the contract turns Expiring (endsAt - notice, never
// before startsAt). Zero when open-ended.
func (s Schedule) ExpiringAt() time.Time {
	if s.OpenEnded() {
		return time.Time{}
	}
	t := s.EndsAt.Add(-s.Notice)
	if t.Before(s.StartsAt) {
		return s.StartsAt
	}
	return t
}

// SupplyEndsAt is endsAt + grace: the instant entitlements end. Zero when
// open-ended.
func (s Schedule) SupplyEndsAt() time.Time {
	if s.OpenEnded() {
		return time.Time{}
	}
	return s.EndsAt.Add(s.Grace)
}

// ScheduleOf reads a contract spec. Times are truncated to whole seconds;
// negative durations (refused at admission) count as zero.
func ScheduleOf(spec *v1.DistributorContractSpec) Schedule {
	s := Schedule{
		StartsAt: spec.StartsAt.Time.UTC().Truncate(time.Second),
		Notice:   DefaultNoticePeriod,
	}
	if spec.EndsAt != nil && !spec.EndsAt.IsZero() {
		s.EndsAt = spec.EndsAt.Time.UTC().Truncate(time.Second)
		if !s.EndsAt.After(s.StartsAt) { // refused at admission; be safe anyway
			s.EndsAt = s.StartsAt
		}
	}
	if spec.NoticePeriod != nil {
		s.Notice = max(spec.NoticePeriod.Duration, 0).Truncate(time.Second)
	}
	if spec.GracePeriod != nil {
		s.Grace = max(spec.GracePeriod.Duration, 0).Truncate(time.Second)
	}
	return s
}

// PhaseAt is the phase of a contract at now:
// now < startsAt Pending; < endsAt-notice Active; < endsAt Expiring;
// < endsAt+grace Grace; else Expired.
func (s Schedule) PhaseAt(now time.Time) v1.ContractPhase {
	switch {
	case now.Before(s.StartsAt):
		return v1.ContractPending
	case s.OpenEnded() || now.Before(s.ExpiringAt()):
		return v1.ContractActive
	case now.Before(s.EndsAt):
		return v1.ContractExpiring
	case now.Before(s.SupplyEndsAt()):
		return v1.ContractGrace
	default:
		return v1.ContractExpired
	}
}

// NextTransition is the first boundary strictly after now at which the
// phase changes, and false when it never will again.
func (s Schedule) NextTransition(now time.Time) (time.Time, bool) {
	phase := s.PhaseAt(now)
	for _, b := range s.boundaries() {
		if b.After(now) && s.PhaseAt(b) != phase {
			return b, true
		}
	}
	return time.Time{}, false
}

// PhaseStartedAt is the instant the phase in force at now began (zero for
// Pending): what a transition was due at, for the lag metric.
func (s Schedule) PhaseStartedAt(now time.Time) time.Time {
	phase := s.PhaseAt(now)
	var started time.Time
	for _, b := range s.boundaries() {
		if !b.After(now) && s.PhaseAt(b) == phase {
			if started.IsZero() || b.Before(started) {
				started = b
			}
		}
	}
	return started
}

func (s Schedule) boundaries() []time.Time {
	if s.OpenEnded() {
		return []time.Time{s.StartsAt}
	}
	return []time.Time{s.StartsAt, s.ExpiringAt(), s.EndsAt, s.SupplyEndsAt()}
}

// Supplies reports whether a contract in this phase supplies entitlements.
func Supplies(p v1.ContractPhase) bool {
	return p == v1.ContractActive || p == v1.ContractExpiring || p == v1.ContractGrace
}

// phaseOrder ranks phases for the invariant that they never go backwards.
func phaseOrder(p v1.ContractPhase) int {
	switch p {
	case v1.ContractPending:
		return 0
	case v1.ContractActive:
		return 1
	case v1.ContractExpiring:
		return 2
	case v1.ContractGrace:
		return 3
	default:
		return 4
	}
}

// RequeueAfter is how long to wait from now until at: never zero or
// negative (a past or present instant yields minDelay), so a requeue always
// comes back.
func RequeueAfter(now, at time.Time) time.Duration {
	const minDelay = 100 * time.Millisecond
	d := at.Sub(now)
	if d < minDelay {
		return minDelay
	}
	return d
}
