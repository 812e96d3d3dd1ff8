package entitlement

import (
	"time"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Workqueue priorities. At an instant when thousands of partners change,
// the revocations' access goes first (PriorityDue), then the transitions'
// views and statuses (PriorityTransition), then the echoes of what was
// written (0, the default), then the initial list after a restart (-100).
const (
	// PriorityDue: a contract's pass at its instant; a partner's pass at a
	// boundary where it is revoked (its access-only pass, accessFirst).
	PriorityDue = 10
	// PriorityTransition: a partner's pass at a boundary where it fails
	// over or is granted, and the pass after a revocation's access-only
	// one.
	PriorityTransition = 5
)

// AccessFollowUp is how soon the pass after an access-only pass comes:
// at once, at PriorityTransition, behind the access-only passes still due.
const AccessFollowUp = time.Millisecond

// Requeue is when a partner is decided again if no event comes first.
type Requeue struct {
	// After is how long from now; 0 when nothing is scheduled.
	After time.Duration
	// Priority is the workqueue priority of that pass.
	Priority int
}

// NextPass decides when to decide the partner again after a pass that
// wrote everything it planned (a pass that failed is retried by the
// workqueue's backoff): right after an access-only pass, or one that left
// the view for later; at the plan's
// next instant — at PriorityDue when the partner is revoked then, at
// PriorityTransition for another boundary — and no later than
// stalledRecheck while a
// problem only a user can fix stalls it (some fixes send the operator no
// event: deleting a namespace it does not cache, being granted bind on a
// role). now is the clock after the pass: the pass took time.
func NextPass(plan *PartnerPlan, now time.Time, stalledRecheck time.Duration) Requeue {
	switch {
	case plan.AccessOnly:
		return Requeue{After: AccessFollowUp, Priority: PriorityTransition}
	case plan.ViewLater:
		// The view next, behind the transitions still due.
		return Requeue{After: AccessFollowUp}
	}
	var r Requeue
	if !plan.RequeueAt.IsZero() {
		r.After = RequeueAfter(now, plan.RequeueAt)
		if plan.RequeueAt.Equal(plan.Supply.NextAt) {
			r.Priority = PriorityTransition
			if n := plan.Next; n != nil && n.Outcome == v1.NextRevoke && n.At.Time.Equal(plan.RequeueAt) {
				r.Priority = PriorityDue
			}
		}
	}
	if plan.Stalled != nil && (r.After == 0 || stalledRecheck < r.After) {
		r.After, r.Priority = stalledRecheck, 0
	}
	return r
}

// ContractNextPass decides when to decide a contract again: after
// recountDelay when its pass left its partners to be counted
// (CountLater), else at its next transition, at PriorityDue: its status
// write at that instant is what stops selling at its end. Nothing when it
// never changes phase again.
func ContractNextPass(d ContractDecision, countedLater bool, recountDelay time.Duration, now time.Time) Requeue {
	switch {
	case countedLater:
		return Requeue{After: recountDelay}
	case d.NextTransitionAt.IsZero():
		return Requeue{}
	}
	return Requeue{After: RequeueAfter(now, d.NextTransitionAt), Priority: PriorityDue}
}
