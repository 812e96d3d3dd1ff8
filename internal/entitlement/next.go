package entitlement

import (
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// maxHistory is how many entitlement changes status.history keeps.
const maxHistory = 20

// NextChange is the partner's next scheduled change: the first future
// boundary (a listed contract's start or end of supply) at which the
// supplying contract differs from now's, judged with the contracts as they
// are now. Nil when none is scheduled or the partner is suspended.
func NextChange(spec *v1.PartnerSpec, contracts map[string]*v1.DistributorContract, current Supply, now time.Time) *v1.NextChange {
	if spec.Suspended {
		return nil
	}
	var at []time.Time
	for _, name := range spec.Contracts {
		c := contracts[name]
		if c == nil {
			continue
		}
		s := ScheduleOf(&c.Spec)
		for _, t := range []time.Time{s.StartsAt, s.SupplyEndsAt()} {
			if !t.IsZero() && t.After(now) {
				at = append(at, t)
			}
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	for _, t := range at {
		then := SelectSupply(spec, contracts, t).Contract
		if then == current.Contract {
			continue
		}
		return &v1.NextChange{At: metav1.NewTime(t.UTC()), Outcome: ChangeOutcome(current.Contract, then), Contract: then}
	}
	return nil
}

// ChangeOutcome names a change of the supplying contract from one to
// another ("" for none): Revoke, Grant or FailOver; "" when it is no change.
func ChangeOutcome(from, to string) v1.NextOutcome {
	switch {
	case from == to:
		return ""
	case to == "":
		return v1.NextRevoke
	case from == "":
		return v1.NextGrant
	}
	return v1.NextFailOver
}

// ScheduledRevocation reports whether a revocation at now is the one the
// partner's last status announced (status.next Revoke, due by now).
func ScheduledRevocation(last *v1.PartnerStatus, now time.Time) bool {
	n := last.Next
	return n != nil && n.Outcome == v1.NextRevoke && !now.Before(n.At.Time)
}

// historyOutcomes maps the transition events of a plan to history entries.
func historyEntry(p *v1.Partner, plan PartnerPlan, now time.Time) *v1.HistoryEntry {
	old := p.Status
	for _, e := range plan.Events {
		var outcome v1.HistoryOutcome
		switch e.Reason {
		case v1.EventSuspended:
			outcome = v1.HistorySuspended
		case v1.EventFailedOver:
			outcome = v1.HistoryFailedOver
		case v1.EventRevoked:
			outcome = v1.HistoryRevoked
		case v1.EventGranted:
			switch {
			case old.Phase == v1.PartnerSuspended:
				outcome = v1.HistoryResumed
			case len(old.History) > 0:
				outcome = v1.HistoryRegranted
			default:
				outcome = v1.HistoryGranted
			}
		default:
			continue
		}
		contract := ""
		if plan.Phase == v1.PartnerEntitled {
			contract = plan.Supply.Contract
		}
		return &v1.HistoryEntry{Time: metav1.NewTime(now.UTC().Truncate(time.Second)), Outcome: outcome,
			Contract: contract, PreviousContract: old.Contract, Message: Truncate(e.Message, 1024)}
	}
	return nil
}

// History is status.history after the plan: the new entry (if the plan
// makes an entitlement change) in front of the old ones, at most 20. It is
// a function of the last status, so a retry of the same change, which
// starts from the status the change was not yet recorded in, writes it once.
func History(p *v1.Partner, plan PartnerPlan, now time.Time) []v1.HistoryEntry {
	e := historyEntry(p, plan, now)
	if e == nil {
		return p.Status.History
	}
	out := append([]v1.HistoryEntry{*e}, p.Status.History...)
	if len(out) > maxHistory {
		out = out[:maxHistory]
	}
	return out
}
