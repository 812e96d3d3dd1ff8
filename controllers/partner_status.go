package controllers

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
	"github.com/partnerops/entitlement-operator/internal/metrics"
)

// setStatus writes the plan and the apply outcome into status (no API call).
func (r *PartnerReconciler) setStatus(p *v1.Partner, plan *entitlement.PartnerPlan, done applied, applyErr error, now time.Time) {
	st := &p.Status
	st.Phase = plan.Phase
	st.Contract = ""
	st.EntitledUntil = nil
	if plan.Phase == v1.PartnerEntitled {
		st.Contract = plan.Supply.Contract
		st.EntitledUntil = metaTime(plan.Supply.Schedule.SupplyEndsAt())
	}
	st.Subscriptions = v1.SubscriptionUsage{
		Used: int32(plan.Used), Hard: int32(plan.Hard),
		Summary: strconv.FormatInt(plan.Used, 10) + "/" + strconv.FormatInt(plan.Hard, 10),
	}
	st.Next, st.History = plan.Next, plan.History
	st.Performance = plan.Performance
	st.Namespaces = st.Namespaces[:0]
	for _, np := range plan.Namespaces {
		ns := v1.NamespaceStatus{
			Name: np.Name, State: np.State, Message: np.Message, UID: np.UID, Adopted: np.Adopted,
			SubscriptionsUsed: int32(np.Used), SubscriptionsHard: int32(np.SubscriptionsHard),
		}
		if uid, ok := done.created[np.Name]; ok {
			// Created in this pass: recorded now; its quota is not counted yet.
			ns.UID, ns.Message = uid, "created; waiting for its ResourceQuota to be counted"
		} else if np.Create {
			ns.Message = "creating the namespace"
		}
		st.Namespaces = append(st.Namespaces, ns)
	}
	if len(st.Namespaces) == 0 {
		st.Namespaces = nil
	}
	for _, c := range plan.Conditions {
		c.ObservedGeneration = p.Generation
		setCondition(&st.Conditions, c, now)
	}
	for _, t := range plan.Remove {
		meta.RemoveStatusCondition(&st.Conditions, t)
	}
	ready := metav1.Condition{Type: v1.ConditionReady, ObservedGeneration: p.Generation}
	switch {
	case applyErr != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1.ReasonApplyFailed, entitlement.Truncate(applyErr.Error(), 1024)
	case plan.Stalled != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, plan.Stalled.Reason, plan.Stalled.Message
	case plan.Reconciling != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, plan.Reconciling.Reason, plan.Reconciling.Message
	default:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, v1.ReasonReconciled, "entitlements applied: "+string(plan.Phase)
	}
	setCondition(&st.Conditions, ready, now)
	if applyErr == nil {
		st.ObservedGeneration = p.Generation
	}
}

// observe emits the plan's events (or, at a transition, holds them for
// the next pass: heldEvents) and records metrics.
func (r *PartnerReconciler) observe(old, cur *v1.Partner, plan *entitlement.PartnerPlan, done applied, now time.Time, hold bool) {
	var evs []heldEvent
	for _, ns := range done.replaced {
		evs = append(evs, heldEvent{obj: cur, typ: corev1.EventTypeWarning, reason: v1.EventForeignBindingReplaced, action: "Replace",
			note: fmt.Sprintf("RoleBinding %s/%s was not written by the operator; replaced by the partner's own", ns, v1.RoleBindingName)})
	}
	for _, e := range plan.Events {
		// events.k8s.io refuses a note over 1 KiB (an RBAC escalation
		// refusal lists every missing rule).
		evs = append(evs, heldEvent{obj: cur, typ: e.Type, reason: e.Reason, action: e.Reason, note: entitlement.Truncate(e.Message, maxEventNote)})
		switch e.Reason {
		case v1.EventFailedOver:
			metrics.Failovers.Inc()
			r.observeLag(old, now)
		case v1.EventRevoked:
			metrics.Revocations.WithLabelValues(strconv.FormatBool(entitlement.ScheduledRevocation(&old.Status, now))).Inc()
			r.observeLag(old, now)
		}
	}
	if hold {
		r.held.hold(cur.Name, evs)
	} else {
		r.held.emit(r.Recorder, cur.Name, evs)
	}
	metrics.SetPartner(cur.Name, cur.Status.Phase, cur.Spec.Tier)
	metrics.SetStalled(cur.Name, stalledReason(cur))
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
func (r *PartnerReconciler) observeLag(old *v1.Partner, now time.Time) {
	if old.Status.EntitledUntil == nil {
		return
	}
	if lag := now.Sub(old.Status.EntitledUntil.Time); lag >= 0 && lag < time.Hour {
		metrics.TransitionLag.Observe(lag.Seconds())
	}
}

// stalledReason is the reason of the partner's Stalled condition, "" when
// it is not Stalled.
func stalledReason(p *v1.Partner) string {
	if c := meta.FindStatusCondition(p.Status.Conditions, v1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason
	}
	return ""
}
