package entitlement

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
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

// OffBoundary is how long from now until the first instant at least d
// ahead that lies half a second past a whole second. Every boundary —
// a contract's start, end, notice and grace — is a whole second (status
// stores seconds), and at a boundary the contracts' status writes are the
// cut-off at admission: a contract's deferred re-count lands between
// boundaries, never competing with another contract's cut-off.
func OffBoundary(now time.Time, d time.Duration) time.Duration {
	at := now.Add(d)
	mid := at.Truncate(time.Second).Add(time.Second / 2)
	if mid.Before(at) {
		mid = mid.Add(time.Second)
	}
	return mid.Sub(now)
}

// ContractInput is what a contract's status depends on besides its spec
// and the time.
type ContractInput struct {
	Now time.Time
	// Supplied are the partners the contract supplies (by their status).
	Supplied []v1.Partner
	// Contracts maps every contract's name to it (where partners fail
	// over to).
	Contracts map[string]*v1.DistributorContract
	// Roles maps the ClusterRoles of its tiers to what was observed.
	Roles map[string]RoleObservation
	// AdmissionProblems say what keeps the admission policies the
	// operator relies on from refusing as shipped (AdmissionProblems).
	AdmissionProblems []string
	// KeepCounts: the partners were not counted in this pass
	// (CountLater); status keeps the last count and forecast.
	KeepCounts bool
}

// CountLater reports whether a contract's pass writes its new phase
// without counting the partners it supplies and their forecast first: at
// a transition of a contract already decided. That status write is what
// stops selling at the contract's end (the contract-end admission policy
// reads it), and counting thousands of partners must not delay it; the
// partners' own changes, which follow at the same instant, bring the
// re-count (ContractStatusCoalesce).
func CountLater(c *v1.DistributorContract, d ContractDecision) bool {
	return d.Changed && c.Status.Phase != ""
}

// ContractStatus is the status a decision and what was gathered give a
// contract. Ready is False, and Stalled True, while a tier's ClusterRole
// cannot be bound or the admission policies that enforce the contract are
// not in place: only a user can fix either.
func ContractStatus(c *v1.DistributorContract, d ContractDecision, in ContractInput) v1.DistributorContractStatus {
	st := *c.Status.DeepCopy()
	st.Phase = d.Phase
	st.NextTransitionAt = MetaTime(d.NextTransitionAt)
	st.EntitledUntil = MetaTime(d.EntitledUntil)
	if !in.KeepCounts {
		st.Partners = int32(len(in.Supplied))
		st.Forecast = Forecast(c, in.Supplied, in.Contracts)
	}
	st.ObservedGeneration = c.Generation
	for _, cond := range d.Conditions {
		cond.ObservedGeneration = c.Generation
		SetCondition(&st.Conditions, cond, in.Now)
	}
	ready := metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonReconciled,
		Message: "status is current; every tier's ClusterRole can be bound", ObservedGeneration: c.Generation}
	var stalled *metav1.Condition
	switch roles := ContractRoleProblems(c, in.Roles); {
	case len(roles) > 0:
		stalled = &metav1.Condition{Reason: v1.ReasonRoleNotBindable, Message: Truncate(strings.Join(roles, messageSeparator), maxConditionMessage)}
	case len(in.AdmissionProblems) > 0:
		stalled = &metav1.Condition{Reason: v1.ReasonAdmissionPolicyMissing, Message: Truncate(strings.Join(in.AdmissionProblems, messageSeparator)+
			": the API server does not refuse Subscriptions for forbidden products or after the contract's end; reinstall config/admission (or the chart with admissionPolicy.enabled)", maxConditionMessage)}
	}
	if stalled != nil {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, stalled.Reason, stalled.Message
		stalled.Type, stalled.Status, stalled.ObservedGeneration = v1.ConditionStalled, metav1.ConditionTrue, c.Generation
		SetCondition(&st.Conditions, *stalled, in.Now)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, v1.ConditionStalled)
	}
	SetCondition(&st.Conditions, ready, in.Now)
	return st
}

// ContractEvents are the events of a contract's pass: its phase change,
// and a Stalled reason that was not there before.
func ContractEvents(c *v1.DistributorContract, d ContractDecision, next *v1.DistributorContractStatus) []Event {
	var evs []Event
	if d.Event != nil {
		evs = append(evs, *d.Event)
	}
	now, before := findCondition(next.Conditions, v1.ConditionStalled), findCondition(c.Status.Conditions, v1.ConditionStalled)
	if now != nil && (before == nil || before.Reason != now.Reason || before.Message != now.Message) {
		evs = append(evs, Event{corev1.EventTypeWarning, now.Reason, now.Message})
	}
	return evs
}
