package entitlement

import "time"

// PriorityDue is the workqueue priority of a pass scheduled for a
// contract boundary: at an instant, the transitions due run before the
// echoes of those already done (their children's and namespaces' events)
// and before the initial list after a restart (-100). Every other pass
// runs at the default priority, 0.
const PriorityDue = 10

// Requeue is when a partner is decided again if no event comes first.
type Requeue struct {
	// After is how long from now; 0 when nothing is scheduled.
	After time.Duration
	// Priority is the workqueue priority of that pass.
	Priority int
}

// NextPass decides when to decide the partner again after a pass that
// wrote everything it planned (a pass that failed is retried by the
// workqueue's backoff): at the plan's next instant — at PriorityDue when
// that is a contract boundary — and no later than stalledRecheck while a
// problem only a user can fix stalls it (some fixes send the operator no
// event: deleting a namespace it does not cache, being granted bind on a
// role). now is the clock after the pass: the pass took time.
func NextPass(plan *PartnerPlan, now time.Time, stalledRecheck time.Duration) Requeue {
	var r Requeue
	if !plan.RequeueAt.IsZero() {
		r.After = RequeueAfter(now, plan.RequeueAt)
		if plan.RequeueAt.Equal(plan.Supply.NextAt) {
			r.Priority = PriorityDue
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
