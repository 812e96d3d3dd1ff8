package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
	"github.com/partnerops/entitlement-operator/internal/metrics"
)

// PartnerReconciler grants, fails over and revokes a partner's namespaces,
// RoleBindings and subscription quota.
type PartnerReconciler struct {
	// Client reads from the manager's cache (label-selected children).
	Client client.Client
	// APIReader reads directly from the API server: namespaces the operator
	// does not manage (conflict checks) and roles that are not bindable.
	APIReader client.Reader
	Clock     clock.PassiveClock
	Recorder  recorder.EventRecorder
	// MaxConcurrentReconciles defaults to 4.
	MaxConcurrentReconciles int
	// StalledRecheck is how often a Stalled partner is decided again (its
	// fix may send no event); default DefaultStalledRecheck.
	StalledRecheck time.Duration

	refusals    refusals
	held        heldEvents
	accessFirst accessFirst
	ownWrites   ownWrites
}

// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=partners,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=partners/status,verbs=get;update
// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=partners/finalizers,verbs=update
// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=subscriptions,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=resourcequotas,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=get;list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=entitlements-partner-ready;entitlements-partner-advanced;entitlements-partner-premier
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get,resourceNames=partners.entitlements.partnerops.io

// Reconcile follows one shape: get, delete or ensure the finalizer, gather,
// decide (a pure function), apply, then patch status once.
func (r *PartnerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	p := &v1.Partner{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			r.held.drop(req.Name)
			r.accessFirst.forget(req.Name)
			r.ownWrites.forget(req.Name)
			metrics.SetPartner(req.Name, "", "")
			metrics.SetOverLimit(req.Name, 0)
			metrics.SetRequirements(req.Name, "", false)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting Partner %s: %w", req.Name, err)
	}
	if !p.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, p)
	}
	if !controllerutil.ContainsFinalizer(p, v1.Finalizer) {
		patch := client.MergeFrom(p.DeepCopy())
		controllerutil.AddFinalizer(p, v1.Finalizer)
		if err := r.Client.Patch(ctx, p, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer to Partner %s: %w", p.Name, err)
		}
		// The update event brings us back with the finalizer in place.
		return ctrl.Result{}, nil
	}
	return r.reconcileNormal(ctx, p)
}

func (r *PartnerReconciler) reconcileNormal(ctx context.Context, p *v1.Partner) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	if r.ownWrites.stale(p) {
		logger.V(1).Info("cached copy is older than the operator's own status write; looking again shortly", "resourceVersion", p.ResourceVersion)
		return ctrl.Result{RequeueAfter: CacheCatchUp}, nil
	}
	in, err := r.gather(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.refusals.apply(in.Roles, in.Now, cmp.Or(r.StalledRecheck, DefaultStalledRecheck))
	plan := entitlement.PlanPartner(in)

	// Write-ahead: record the namespaces about to be created before
	// creating them (see entitlement.CreationsToRecord).
	if names := entitlement.CreationsToRecord(p, &plan); len(names) > 0 {
		recorded := p.DeepCopy()
		entitlement.RecordCreations(&recorded.Status, names)
		if err := r.writeStatus(ctx, p, recorded); err != nil {
			return r.statusWriteFailed(ctx, p, &plan, nil, err)
		}
		p = recorded
	}

	done, reused := r.accessFirst.applied(p, &plan)
	var applyErr error
	if !reused {
		done, applyErr = r.apply(ctx, p, &plan)
	}
	var forbidden *bindForbiddenError
	if errors.As(applyErr, &forbidden) {
		// The API server refused the binding (the operator may not bind this
		// role): remember it, and decide again with that knowledge at once
		// (Stalled, only a user can fix it); it is tried again after
		// StalledRecheck.
		r.refusals.remember(forbidden.role, forbidden.err.Error(), r.Clock.Now())
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}

	// A transition's events wait for the next pass, like its views.
	holdEvents := plan.DeferViews(&p.Status)
	if applyErr == nil && plan.StatusAfterAccess(&p.Status) && r.accessFirst.deferStatus(p, &plan, done) {
		logger.V(1).Info("transition's access pass done; its status follows", "phase", plan.Phase, "resourceVersion", p.ResourceVersion)
		return ctrl.Result{RequeueAfter: time.Millisecond, Priority: ptr.To(PriorityStatus)}, nil
	}
	r.accessFirst.forget(p.Name)
	next := p.DeepCopy()
	r.setStatus(next, &plan, done, applyErr, in.Now)
	if !equality.Semantic.DeepEqual(p.Status, next.Status) {
		if err := r.writeStatus(ctx, p, next); err != nil {
			return r.statusWriteFailed(ctx, p, &plan, applyErr, err)
		}
	}
	r.observe(p, next, &plan, done, in.Now, holdEvents)
	if applyErr != nil {
		return ctrl.Result{}, fmt.Errorf("applying entitlements of Partner %s: %w", p.Name, applyErr)
	}
	// From the clock now, not the one gathered: the reconcile took time.
	now := r.Clock.Now()
	var res ctrl.Result
	if !plan.RequeueAt.IsZero() {
		res.RequeueAfter = entitlement.RequeueAfter(now, plan.RequeueAt)
		res.Priority = ptr.To(PriorityDue)
		logger.V(1).Info("next planned change", "at", plan.RequeueAt, "after", res.RequeueAfter)
	}
	if done.viewsDeferred || r.held.has(p.Name) || reused {
		// The namespaces' labels and view and the events next, after the
		// transitions due now (see entitlement.PartnerPlan.DeferViews); after
		// a pass that reused the access pass's writes, a full one (see
		// accessFirst).
		res.RequeueAfter, res.Priority = time.Millisecond, ptr.To(PriorityDeferred)
	}
	if plan.Stalled != nil {
		recheck := cmp.Or(r.StalledRecheck, DefaultStalledRecheck)
		if res.RequeueAfter == 0 || recheck < res.RequeueAfter {
			res.RequeueAfter = recheck
		}
		logger.V(1).Info("stalled; deciding again later", "reason", plan.Stalled.Reason, "after", recheck)
	}
	return res, nil
}

// writeStatus writes next's status over p's: a PUT of the status
// subresource carrying p's resourceVersion. That version is the optimistic
// lock: a reconcile of a stale cached copy fails instead of overwriting
// newer status and announcing its events a second time; the watch event of
// the newer copy is on its way. A PUT rather than a merge patch with the
// same lock: kube-apiserver need not apply a patch to the stored object,
// 0.89-1.00x the CPU over five runs (BenchmarkWriteCost,
// docs/benchmarks.md). Nothing
// else writes a Partner's status, so the whole of it is the operator's.
func (r *PartnerReconciler) writeStatus(ctx context.Context, p, next *v1.Partner) error {
	next.ResourceVersion = p.ResourceVersion // the lock: never an unconditional PUT
	if err := r.Client.Status().Update(ctx, next); err != nil {
		return err
	}
	r.ownWrites.wrote(p.Name, p.ResourceVersion)
	return nil
}

// statusWriteFailed ends a pass whose status write failed. A conflict (the
// cached copy was stale) is retried quietly, no later than the plan's next
// instant.
func (r *PartnerReconciler) statusWriteFailed(ctx context.Context, p *v1.Partner, plan *entitlement.PartnerPlan, applyErr, err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) && applyErr == nil {
		log.FromContext(ctx).V(1).Info("status changed since this copy was cached; reconciling the newer one")
		var due time.Duration
		if !plan.RequeueAt.IsZero() {
			due = entitlement.RequeueAfter(r.Clock.Now(), plan.RequeueAt)
		}
		return staleRetryBefore(due), nil
	}
	return ctrl.Result{}, errors.Join(applyErr, fmt.Errorf("writing status of Partner %s: %w", p.Name, err))
}
