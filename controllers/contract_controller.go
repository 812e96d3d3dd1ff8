package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
	"github.com/partnerops/entitlement-operator/internal/metrics"
)

// ContractReconciler keeps a DistributorContract's status (phase, next
// transition, partners supplied) current, to the second.
type ContractReconciler struct {
	Client client.Client
	// APIReader reads ClusterRoles the cache does not hold (not labelled
	// bindable), to say why a tier's role cannot be bound.
	APIReader client.Reader
	Clock     clock.PassiveClock
	Recorder  recorder.EventRecorder
	// MaxConcurrentReconciles defaults to DefaultMaxConcurrentReconciles.
	MaxConcurrentReconciles int
	// RequireAdmissionPolicies: the admission policies the operator relies
	// on (config/admission) must be in place; a contract says so (Ready
	// False, Stalled AdmissionPolicyMissing) when they are not.
	RequireAdmissionPolicies bool

	// recount holds each contract's RecountDelay from its last count
	// (name → time.Duration), read by the partner-change handler.
	recount sync.Map
}

// recountDelay is how long a partner's change waits before contract name
// re-counts: its RecountDelay (ContractStatusCoalesce until it has counted
// once), to the next instant between boundaries (entitlement.OffBoundary).
func (r *ContractReconciler) recountDelay(name string) time.Duration {
	d := ContractStatusCoalesce
	if v, ok := r.recount.Load(name); ok {
		d = v.(time.Duration)
	}
	return entitlement.OffBoundary(r.Clock.Now(), d)
}

// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=distributorcontracts,verbs=get;list;watch
// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=distributorcontracts/status,verbs=get;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=get;list;watch

// Reconcile computes the contract's status at the injected clock's now —
// phase, next transition, partners supplied, forecast, whether its tiers'
// roles can be bound and whether the admission policies that enforce it
// are in place — writes it once if it changed, emits one event per change
// and requeues at the next transition.
//
// The write at a transition is what stops selling at a contract's end:
// the contract-end admission policy reads this status. So the pass is
// scheduled for the instant itself, at PriorityDue.
func (r *ContractReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	c := &v1.DistributorContract{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.DeleteContract(req.Name)
			r.recount.Delete(req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting DistributorContract %s: %w", req.Name, err)
	}
	now := r.Clock.Now()
	d := entitlement.DecideContract(c, now)
	in, err := r.gather(ctx, c, now, entitlement.CountLater(c, d))
	if err != nil {
		return ctrl.Result{}, err
	}
	next := c.DeepCopy()
	next.Status = entitlement.ContractStatus(c, d, in)
	if !equality.Semantic.DeepEqual(c.Status, next.Status) {
		// A PUT carrying the cached copy's resourceVersion, the optimistic
		// lock: a stale copy must not re-announce a change the status
		// already records (see PartnerReconciler.writeStatus).
		next.ResourceVersion = c.ResourceVersion
		if err := r.Client.Status().Update(ctx, next); err != nil {
			return ctrl.Result{}, fmt.Errorf("writing status of DistributorContract %s: %w", c.Name, err)
		}
	}
	for _, e := range entitlement.ContractEvents(c, d, &next.Status) {
		r.Recorder.Eventf(next, nil, e.Type, e.Reason, e.Reason, "%s", entitlement.Truncate(e.Message, maxEventNote))
	}
	if d.Changed {
		if c.Status.Phase != "" && !d.PhaseDueAt.IsZero() {
			lag := now.Sub(d.PhaseDueAt)
			metrics.TransitionLag.Observe(lag.Seconds())
			logger.Info("contract phase changed", "from", c.Status.Phase, "to", d.Phase, "dueAt", d.PhaseDueAt, "lag", lag)
		} else {
			logger.Info("contract phase", "phase", d.Phase)
		}
	}
	r.recordMetrics(c, d, next, len(in.AdmissionProblems) == 0)
	// From the clock now: the pass took time.
	again := entitlement.ContractNextPass(d, in.KeepCounts, r.recountDelay(c.Name), r.Clock.Now())
	return ctrl.Result{RequeueAfter: again.After, Priority: ptr.To(again.Priority)}, nil
}

// gather reads what a contract's status depends on besides its spec: the
// partners it supplies (read only: no deep copy of each), every contract
// (where they fail over to), its tiers' ClusterRoles and the admission
// policies.
func (r *ContractReconciler) gather(ctx context.Context, c *v1.DistributorContract, now time.Time, countLater bool) (entitlement.ContractInput, error) {
	in := entitlement.ContractInput{Now: now, Roles: map[string]entitlement.RoleObservation{}, Contracts: map[string]*v1.DistributorContract{}, KeepCounts: countLater}
	if !countLater {
		supplied := &v1.PartnerList{}
		if err := r.Client.List(ctx, supplied, client.MatchingFields{IndexPartnerSupplier: c.Name}, client.UnsafeDisableDeepCopy); err != nil {
			return in, fmt.Errorf("listing partners supplied by DistributorContract %s: %w", c.Name, err)
		}
		in.Supplied = supplied.Items
		r.recount.Store(c.Name, entitlement.RecountDelay(ContractStatusCoalesce, len(supplied.Items)))
	}
	for i := range c.Spec.Entitlements {
		role := entitlement.ClusterRoleFor(&c.Spec.Entitlements[i])
		if _, seen := in.Roles[role]; seen {
			continue
		}
		obs, err := observeRole(ctx, r.Client, r.APIReader, role)
		if err != nil {
			return in, fmt.Errorf("getting ClusterRole %s for DistributorContract %s: %w", role, c.Name, err)
		}
		in.Roles[role] = obs
	}
	if !countLater {
		all := &v1.DistributorContractList{}
		if err := r.Client.List(ctx, all, client.UnsafeDisableDeepCopy); err != nil {
			return in, fmt.Errorf("listing contracts for the forecast of DistributorContract %s: %w", c.Name, err)
		}
		for i := range all.Items {
			in.Contracts[all.Items[i].Name] = &all.Items[i]
		}
	}
	if r.RequireAdmissionPolicies {
		policies, err := observePolicies(ctx, r.Client)
		if err != nil {
			return in, fmt.Errorf("reading admission policies for DistributorContract %s: %w", c.Name, err)
		}
		in.AdmissionProblems = entitlement.AdmissionProblems(policies)
	}
	return in, nil
}

// observePolicies reads the policies the operator relies on and their
// bindings, from the cache.
func observePolicies(ctx context.Context, c client.Reader) (map[string]entitlement.PolicyObservation, error) {
	out := map[string]entitlement.PolicyObservation{}
	bindings := &admissionv1.ValidatingAdmissionPolicyBindingList{}
	if err := c.List(ctx, bindings); err != nil {
		return nil, err
	}
	for _, name := range entitlement.ReliedPolicies {
		var o entitlement.PolicyObservation
		pol := &admissionv1.ValidatingAdmissionPolicy{}
		switch err := c.Get(ctx, types.NamespacedName{Name: name}, pol); {
		case err == nil:
			o.Policy = pol
		case !apierrors.IsNotFound(err):
			return nil, err
		}
		for _, b := range bindings.Items {
			if b.Spec.PolicyName == name {
				o.Bindings = append(o.Bindings, b)
			}
		}
		out[name] = o
	}
	return out, nil
}

func (r *ContractReconciler) recordMetrics(c *v1.DistributorContract, d entitlement.ContractDecision, next *v1.DistributorContract, enforced bool) {
	var ends int64
	if c.Spec.EndsAt != nil {
		ends = c.Spec.EndsAt.Unix()
	}
	metrics.SetContract(c.Name, c.Spec.Distributor, d.Phase, ends)
	if f := next.Status.Forecast; f != nil {
		metrics.SetForecast(c.Name, c.Spec.Distributor, int(f.FailOver), int(f.Revoke))
	} else {
		metrics.SetForecast(c.Name, c.Spec.Distributor, -1, 0)
	}
	if r.RequireAdmissionPolicies {
		metrics.SetAdmissionEnforced(enforced)
	}
}
