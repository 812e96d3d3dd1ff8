package controllers

import (
	"strconv"
	"time"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
	"github.com/partnerops/entitlement-operator/internal/metrics"
)

// announce emits a pass's events (the plan's and the apply's) and records
// its metrics, once its status is written: cur is the Partner as written,
// old as the pass found it.
func (r *PartnerReconciler) announce(old, cur *v1.Partner, plan *entitlement.PartnerPlan, out entitlement.ApplyOutcome, now time.Time) {
	for _, e := range append(entitlement.OutcomeEvents(out), plan.Events...) {
		// events.k8s.io refuses a note over 1 KiB (an RBAC escalation
		// refusal lists every missing rule).
		r.Recorder.Eventf(cur, nil, e.Type, e.Reason, e.Reason, "%s", entitlement.Truncate(e.Message, maxEventNote))
		switch e.Reason {
		case v1.EventFailedOver:
			metrics.Failovers.Inc()
			observeLag(old, now)
		case v1.EventRevoked:
			metrics.Revocations.WithLabelValues(strconv.FormatBool(entitlement.ScheduledRevocation(&old.Status, now))).Inc()
			observeLag(old, now)
		}
	}
	metrics.SetPartner(cur.Name, cur.Status.Phase, cur.Spec.Tier)
	if perf := cur.Status.Performance; perf != nil {
		metrics.SetRequirements(cur.Name, cur.Spec.Tier, perf.MeetsRequirements)
	} else {
		metrics.SetRequirements(cur.Name, "", false)
	}
	// More Subscriptions than the limit while entitled: quota admission
	// raced a recount (docs/architecture.md, "Quota undercount").
	metrics.SetOverLimit(cur.Name, plan.OverLimit())
}

// observeLag records how late a failover or revocation was, against the
// end of the supply the partner had.
func observeLag(old *v1.Partner, now time.Time) {
	if old.Status.EntitledUntil == nil {
		return
	}
	if lag := now.Sub(old.Status.EntitledUntil.Time); lag >= 0 && lag < time.Hour {
		metrics.TransitionLag.Observe(lag.Seconds())
	}
}
