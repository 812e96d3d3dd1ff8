package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
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
	// MaxConcurrentReconciles defaults to DefaultMaxConcurrentReconciles.
	MaxConcurrentReconciles int
	// StalledRecheck is how often a Stalled partner is decided again (its
	// fix may send no event); default DefaultStalledRecheck.
	StalledRecheck time.Duration

	refusals refusals
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

// Reconcile: get (gone: forget its metrics), delete or ensure the
// finalizer, then reconcileNormal.
func (r *PartnerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1.Partner{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetPartner(req.Name)
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
		// The update event brings it back with the finalizer in place.
		return ctrl.Result{}, nil
	}
	return r.reconcileNormal(ctx, p)
}

// reconcileNormal: gather → plan (entitlement.PlanPartner) → apply → one
// status write, events and metrics → requeue (entitlement.NextPass). Every
// decision is the plan's; the rooms around it only read, write and report.
func (r *PartnerReconciler) reconcileNormal(ctx context.Context, p *v1.Partner) (ctrl.Result, error) {
	in, err := r.gather(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	plan := entitlement.PlanPartner(in)
	if plan.ConfirmLive {
		if err := r.observeLive(ctx, p, &in); err != nil {
			return ctrl.Result{}, err
		}
		plan = entitlement.PlanPartner(in)
	}
	out := r.apply(ctx, p, &plan)
	status := entitlement.PartnerStatus(p, &plan, out, in.Now)
	return r.finish(ctx, p, status, &plan, out, in.Now)
}
