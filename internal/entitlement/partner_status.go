package entitlement

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// ApplyOutcome is what applying a plan did that status records.
type ApplyOutcome struct {
	// Created maps the namespaces created in this pass to their UIDs.
	Created map[string]types.UID
	// Replaced lists the namespaces where a RoleBinding of the operator's
	// name that it had not written was replaced by the partner's own.
	Replaced []string
	// Err joins the errors of the writes that failed (nil when none did).
	Err error
}

// PartnerStatus is the status a plan and the outcome of applying it give
// the partner: the plan's decisions, the UIDs of the namespaces just
// created, and Ready (ReadyCondition). observedGeneration moves only when
// every write went through. An access-only pass leaves the status as it
// was: the next pass writes it.
func PartnerStatus(p *v1.Partner, plan *PartnerPlan, out ApplyOutcome, now time.Time) v1.PartnerStatus {
	st := *p.Status.DeepCopy()
	if plan.AccessOnly {
		return st
	}
	st.Phase = plan.Phase
	st.Contract, st.EntitledUntil = "", nil
	if plan.Phase == v1.PartnerEntitled {
		st.Contract = plan.Supply.Contract
		st.EntitledUntil = MetaTime(plan.Supply.Schedule.SupplyEndsAt())
	}
	st.Subscriptions = v1.SubscriptionUsage{
		Used: int32(plan.Used), Hard: int32(plan.Hard),
		Summary: strconv.FormatInt(plan.Used, 10) + "/" + strconv.FormatInt(plan.Hard, 10),
	}
	st.Next, st.History, st.Performance = plan.Next, plan.History, plan.Performance
	st.Namespaces = nil
	for _, np := range plan.Namespaces {
		ns := v1.NamespaceStatus{
			Name: np.Name, State: np.State, Message: np.Message, UID: np.UID, Adopted: np.Adopted,
			SubscriptionsUsed: int32(np.Used), SubscriptionsHard: int32(np.SubscriptionsHard),
		}
		switch uid, created := out.Created[np.Name]; {
		case created:
			// Created in this pass: recorded now; its quota is not counted yet.
			ns.UID, ns.Message = uid, "created; waiting for its ResourceQuota to be counted"
		case np.Create:
			// Not created (the create failed): keep the record of the
			// attempt, so that a namespace it made after all is known.
			if rec, ok := recordOf(p, np.Name); ok {
				ns.CreationDigest = rec.CreationDigest
			}
			ns.Message = "creating the namespace"
		}
		st.Namespaces = append(st.Namespaces, ns)
	}
	for _, c := range plan.Conditions {
		c.ObservedGeneration = p.Generation
		SetCondition(&st.Conditions, c, now)
	}
	for _, t := range plan.Remove {
		meta.RemoveStatusCondition(&st.Conditions, t)
	}
	ready := ReadyCondition(plan, out.Err)
	ready.ObservedGeneration = p.Generation
	SetCondition(&st.Conditions, ready, now)
	if out.Err == nil {
		st.ObservedGeneration = p.Generation
	}
	return st
}

// ReadyCondition is Ready after a pass: False when a write failed, else
// when a user must fix something (Stalled), else while the plan waits for
// something that comes by itself (Reconciling); True otherwise — also for
// a partner correctly revoked (the business state is in Entitled).
func ReadyCondition(plan *PartnerPlan, applyErr error) metav1.Condition {
	c := metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionFalse}
	switch {
	case applyErr != nil:
		c.Reason, c.Message = v1.ReasonApplyFailed, Truncate(applyErr.Error(), 1024)
	case plan.Stalled != nil:
		c.Reason, c.Message = plan.Stalled.Reason, plan.Stalled.Message
	case plan.Reconciling != nil:
		c.Reason, c.Message = plan.Reconciling.Reason, plan.Reconciling.Message
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1.ReasonReconciled, "entitlements applied: "+string(plan.Phase)
	}
	return c
}

// OutcomeEvents are the events of what applying did besides the plan's
// own: a foreign RoleBinding replaced.
func OutcomeEvents(out ApplyOutcome) []Event {
	var evs []Event
	for _, ns := range out.Replaced {
		evs = append(evs, Event{corev1.EventTypeWarning, v1.EventForeignBindingReplaced,
			fmt.Sprintf("RoleBinding %s/%s was not written by the operator; replaced by the partner's own", ns, v1.RoleBindingName)})
	}
	return evs
}

// SetCondition sets a condition, its transition time now when its status
// changes (meta.SetStatusCondition keeps the old one otherwise).
func SetCondition(conds *[]metav1.Condition, c metav1.Condition, now time.Time) {
	c.LastTransitionTime = metav1.NewTime(now)
	meta.SetStatusCondition(conds, c)
}

// MetaTime is t as status stores it (to the second); nil for zero.
func MetaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}
