package controllers

import (
	"cmp"
	"context"
	"crypto/rand"
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

// reconcileNormal: gather → plan (entitlement.PlanPartner) → record the
// namespaces about to be created → apply → one status write → events and
// metrics → requeue (entitlement.NextPass). Every decision is the plan's;
// this only reads, writes and reports.
func (r *PartnerReconciler) reconcileNormal(ctx context.Context, p *v1.Partner) (ctrl.Result, error) {
	in, err := r.gather(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	plan := entitlement.PlanPartner(in)

	tokens, err := r.recordCreations(ctx, p, &plan)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("recording the namespaces Partner %s creates: %w", p.Name, err)
	}
	out := r.apply(ctx, p, &plan, tokens)

	next := p.DeepCopy()
	next.Status = entitlement.PartnerStatus(p, &plan, out, in.Now)
	if !equality.Semantic.DeepEqual(p.Status, next.Status) {
		if err := r.writeStatus(ctx, p, next); err != nil {
			return ctrl.Result{}, errorsOf(p, out.Err, fmt.Errorf("writing status of Partner %s: %w", p.Name, err))
		}
	}
	r.announce(p, next, &plan, out, in.Now)
	if out.Err != nil {
		return ctrl.Result{}, errorsOf(p, out.Err, nil)
	}
	// From the clock now, not the one gathered: the pass took time.
	again := entitlement.NextPass(&plan, r.Clock.Now(), cmp.Or(r.StalledRecheck, DefaultStalledRecheck))
	if again.After > 0 {
		log.FromContext(ctx).V(1).Info("next pass", "after", again.After, "priority", again.Priority)
	}
	return ctrl.Result{RequeueAfter: again.After, Priority: ptr.To(again.Priority)}, nil
}

// recordCreations writes, before the plan's namespaces are created, the
// digest of the token each is created with (entitlement.CreationsToRecord).
// It returns the tokens, and updates p to the status written.
func (r *PartnerReconciler) recordCreations(ctx context.Context, p *v1.Partner, plan *entitlement.PartnerPlan) (map[string]string, error) {
	names := entitlement.CreationsToRecord(plan)
	if len(names) == 0 {
		return nil, nil
	}
	tokens, digests := map[string]string{}, map[string]string{}
	for _, name := range names {
		tokens[name] = rand.Text()
		digests[name] = entitlement.TokenDigest(tokens[name])
	}
	recorded := p.DeepCopy()
	entitlement.RecordCreations(&recorded.Status, digests)
	if err := r.writeStatus(ctx, p, recorded); err != nil {
		return nil, err
	}
	*p = *recorded
	return tokens, nil
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
