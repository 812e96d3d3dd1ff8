package controllers

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
	"github.com/partnerops/entitlement-operator/internal/metrics"
)

// finish writes the status a pass's plan and apply give the partner (one
// PUT, when it changed), emits its events and metrics, and says when to
// decide again: at the plan's next instant, or through the workqueue's
// backoff when a write failed.
func (r *PartnerReconciler) finish(ctx context.Context, p *v1.Partner, status v1.PartnerStatus, plan *entitlement.PartnerPlan, out entitlement.ApplyOutcome, now time.Time) (ctrl.Result, error) {
	next := p.DeepCopy()
	next.Status = status
	if !equality.Semantic.DeepEqual(p.Status, next.Status) {
		if err := r.writeStatus(ctx, p, next); err != nil {
			return ctrl.Result{}, errorsOf(p, out.Err, fmt.Errorf("writing status of Partner %s: %w", p.Name, err))
		}
	}
	applyErr := errorsOf(p, out.Err, nil)
	if !plan.AccessOnly { // the events come with the status, in the next pass
		r.announce(p, next, plan, out, now)
	}
	if applyErr != nil {
		return ctrl.Result{}, applyErr
	}
	// From the clock now, not the one gathered: the pass took time.
	again := entitlement.NextPass(plan, r.Clock.Now(), cmp.Or(r.StalledRecheck, DefaultStalledRecheck))
	if again.After > 0 {
		log.FromContext(ctx).V(1).Info("next pass", "after", again.After, "priority", again.Priority)
	}
	return ctrl.Result{RequeueAfter: again.After, Priority: ptr.To(again.Priority)}, nil
}

// writeStatus writes next's status over p's: a PUT of the status
// subresource carrying p's resourceVersion. That version is the optimistic
// lock: a pass on a stale cached copy fails instead of overwriting newer
// status and announcing its events a second time; the watch event of the
// newer copy brings the next pass. A PUT rather than a patch with the same
// lock: nothing else writes a Partner's status, so the whole of it is the
// operator's, and kube-apiserver need not apply a patch to the stored
// object.
func (r *PartnerReconciler) writeStatus(ctx context.Context, p, next *v1.Partner) error {
	next.ResourceVersion = p.ResourceVersion // the lock: never an unconditional PUT
	return r.Client.Status().Update(ctx, next)
}

// errorsOf names the partner in what a pass returns: the apply's errors and
// the status write's.
func errorsOf(p *v1.Partner, applyErr, statusErr error) error {
	switch {
	case applyErr != nil && statusErr != nil:
		return fmt.Errorf("applying entitlements of Partner %s: %w; %w", p.Name, applyErr, statusErr)
	case applyErr != nil:
		return fmt.Errorf("applying entitlements of Partner %s: %w", p.Name, applyErr)
	}
	return statusErr
}

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
			observeLag(old.Status.EntitledUntil, now)
		case v1.EventRevoked:
			metrics.Revocations.WithLabelValues(strconv.FormatBool(plan.ScheduledRevocation)).Inc()
			observeLag(old.Status.EntitledUntil, now)
		}
	}
	// More Subscriptions than the limit while entitled: quota admission
	// raced a recount (docs/architecture.md, "Quota undercount").
	metrics.RecordPartner(cur.Name, cur.Spec.Tier, cur.Status.Phase, cur.Status.Performance, stalledReason(cur), plan.OverLimit())
}

// observeLag records how late a failover or revocation was, against the
// end of the supply the partner had.
func observeLag(entitledUntil *metav1.Time, now time.Time) {
	if entitledUntil == nil {
		return
	}
	if lag := now.Sub(entitledUntil.Time); lag >= 0 && lag < time.Hour {
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
