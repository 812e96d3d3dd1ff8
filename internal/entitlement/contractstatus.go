package entitlement

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// ContractDecision is a contract's decided status at a time.
type ContractDecision struct {
	Phase v1.ContractPhase
	// NextTransitionAt is zero when the phase never changes again.
	NextTransitionAt time.Time
	// EntitledUntil is endsAt + grace, zero when open-ended.
	EntitledUntil time.Time
	// PhaseDueAt is when the current phase began (for the lag metric).
	PhaseDueAt time.Time
	Conditions []metav1.Condition
	// Event is set when the phase differs from the last recorded one.
	Event *Event
	// Changed: the phase differs from the last recorded one.
	Changed bool
}

// DecideContract computes a contract's status at now.
func DecideContract(c *v1.DistributorContract, now time.Time) ContractDecision {
	s := ScheduleOf(&c.Spec)
	d := ContractDecision{Phase: s.PhaseAt(now), EntitledUntil: s.SupplyEndsAt(), PhaseDueAt: s.PhaseStartedAt(now)}
	if next, ok := s.NextTransition(now); ok {
		d.NextTransitionAt = next
	}

	active := metav1.Condition{Type: v1.ConditionActive}
	expiring := metav1.Condition{Type: v1.ConditionExpiring, Status: metav1.ConditionFalse}
	var ev Event
	switch d.Phase {
	case v1.ContractPending:
		active.Status, active.Reason = metav1.ConditionFalse, v1.ReasonContractPending
		active.Message = "starts at " + formatTime(s.StartsAt)
		expiring.Reason, expiring.Message = v1.ReasonContractPending, "not started"
		ev = Event{corev1.EventTypeNormal, v1.EventContractPending, "contract starts at " + formatTime(s.StartsAt)}
	case v1.ContractActive:
		active.Status, active.Reason = metav1.ConditionTrue, v1.ReasonContractActive
		active.Message = "supplies entitlements"
		expiring.Reason, expiring.Message = v1.ReasonContractActive, "open-ended"
		if !s.OpenEnded() {
			active.Message += " until " + formatTime(s.SupplyEndsAt())
			expiring.Message = "notice period starts at " + formatTime(s.ExpiringAt())
		}
		ev = Event{corev1.EventTypeNormal, v1.EventContractActive, active.Message}
	case v1.ContractExpiring:
		active.Status, active.Reason = metav1.ConditionTrue, v1.ReasonContractExpiring
		active.Message = "supplies entitlements until " + formatTime(s.SupplyEndsAt())
		expiring.Status, expiring.Reason = metav1.ConditionTrue, v1.ReasonContractExpiring
		expiring.Message = fmt.Sprintf("ends at %s (notice period %s)", formatTime(s.EndsAt), s.Notice)
		ev = Event{corev1.EventTypeWarning, v1.EventContractExpiring, "contract " + expiring.Message}
	case v1.ContractGrace:
		active.Status, active.Reason = metav1.ConditionTrue, v1.ReasonContractInGrace
		active.Message = "in grace: supplies entitlements until " + formatTime(s.SupplyEndsAt())
		expiring.Status, expiring.Reason = metav1.ConditionTrue, v1.ReasonContractInGrace
		expiring.Message = fmt.Sprintf("ended at %s; grace period ends at %s", formatTime(s.EndsAt), formatTime(s.SupplyEndsAt()))
		ev = Event{corev1.EventTypeWarning, v1.EventContractInGrace, "contract " + expiring.Message}
	default:
		active.Status, active.Reason = metav1.ConditionFalse, v1.ReasonContractExpired
		active.Message = "ended; supplies nothing since " + formatTime(s.SupplyEndsAt())
		expiring.Reason, expiring.Message = v1.ReasonContractExpired, "ended"
		ev = Event{corev1.EventTypeNormal, v1.EventContractExpired, "contract " + active.Message}
	}
	d.Conditions = []metav1.Condition{active, expiring}
	if c.Status.Phase != d.Phase {
		d.Changed = true
		d.Event = &ev
	}
	return d
}

// RecountPer is how many supplied partners each base delay of a contract's
// re-count covers (RecountDelay).
const RecountPer = 1000

// RecountDelay is how long a partner's change waits before the contract
// supplying it re-counts and re-forecasts its partners: base for every
// RecountPer partners it supplied at its last count, and at least base.
// A re-count lists every supplied partner, so its cost grows with them;
// spacing the re-counts in proportion keeps the contract's share of the
// work constant while partners move (at a mass expiry that lasts in
// proportion to the partners, a fixed spacing made it quadratic).
func RecountDelay(base time.Duration, supplied int) time.Duration {
	n := (supplied + RecountPer - 1) / RecountPer
	if n < 1 {
		n = 1
	}
	return time.Duration(n) * base
}
