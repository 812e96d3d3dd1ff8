package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/ptr"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
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
	// MaxConcurrentReconciles defaults to 4.
	MaxConcurrentReconciles int

	// recount holds each contract's RecountDelay from its last count
	// (name → time.Duration), read by the partner-change handler.
	recount sync.Map
}

// recountDelay is how long a partner's change waits before contract name
// re-counts (ContractStatusCoalesce until it has counted once).
func (r *ContractReconciler) recountDelay(name string) time.Duration {
	if d, ok := r.recount.Load(name); ok {
		return d.(time.Duration)
	}
	return ContractStatusCoalesce
}

// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=distributorcontracts,verbs=get;list;watch
// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=distributorcontracts/status,verbs=get;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile computes the contract's phase at the injected clock's now,
// writes status once if it changed, emits one event per phase change and
// requeues at the next transition (ContractPhaseAfter past it).
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

	// Read only (counted and forecast): no deep copy of every supplied
	// partner on each pass (at 10,000 partners a pass took 340 ms).
	supplied := &v1.PartnerList{}
	if err := r.Client.List(ctx, supplied, client.MatchingFields{IndexPartnerSupplier: c.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing partners supplied by DistributorContract %s: %w", c.Name, err)
	}
	r.recount.Store(c.Name, entitlement.RecountDelay(ContractStatusCoalesce, len(supplied.Items)))

	roles := map[string]entitlement.RoleObservation{}
	for i := range c.Spec.Entitlements {
		role := entitlement.ClusterRoleFor(&c.Spec.Entitlements[i])
		if _, seen := roles[role]; seen {
			continue
		}
		obs, err := observeRole(ctx, r.Client, r.APIReader, role)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("getting ClusterRole %s for DistributorContract %s: %w", role, c.Name, err)
		}
		roles[role] = obs
	}
	problems := entitlement.ContractRoleProblems(c, roles)

	next := c.DeepCopy()
	next.Status.Phase = d.Phase
	next.Status.NextTransitionAt = metaTime(d.NextTransitionAt)
	next.Status.EntitledUntil = metaTime(d.EntitledUntil)
	next.Status.Partners = int32(len(supplied.Items))
	all := &v1.DistributorContractList{}
	if err := r.Client.List(ctx, all, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing contracts for the forecast of DistributorContract %s: %w", c.Name, err)
	}
	byName := make(map[string]*v1.DistributorContract, len(all.Items))
	for i := range all.Items {
		byName[all.Items[i].Name] = &all.Items[i]
	}
	next.Status.Forecast = entitlement.Forecast(c, supplied.Items, byName)
	next.Status.ObservedGeneration = c.Generation
	for _, cond := range d.Conditions {
		cond.ObservedGeneration = c.Generation
		setCondition(&next.Status.Conditions, cond, now)
	}
	ready := metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonReconciled,
		Message: "status is current; every tier's ClusterRole can be bound", ObservedGeneration: c.Generation}
	if len(problems) > 0 {
		// Only a user can fix it; the partners it supplies say the same.
		msg := entitlement.Truncate(strings.Join(problems, "; "), 32768)
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1.ReasonRoleNotBindable, msg
		setCondition(&next.Status.Conditions, metav1.Condition{Type: v1.ConditionStalled, Status: metav1.ConditionTrue,
			Reason: v1.ReasonRoleNotBindable, Message: msg, ObservedGeneration: c.Generation}, now)
	} else {
		meta.RemoveStatusCondition(&next.Status.Conditions, v1.ConditionStalled)
	}
	setCondition(&next.Status.Conditions, ready, now)

	if !equality.Semantic.DeepEqual(c.Status, next.Status) {
		// A PUT carrying the cached copy's resourceVersion, the optimistic
		// lock: a stale copy must not re-announce a phase change the status
		// already records (see PartnerReconciler.writeStatus).
		next.ResourceVersion = c.ResourceVersion
		if err := r.Client.Status().Update(ctx, next); err != nil {
			if apierrors.IsConflict(err) {
				logger.V(1).Info("status changed since this copy was cached; reconciling the newer one")
				return staleRetryBefore(r.untilNext(d)), nil
			}
			return ctrl.Result{}, fmt.Errorf("writing status of DistributorContract %s: %w", c.Name, err)
		}
	}
	if d.Changed {
		if d.Event != nil {
			r.Recorder.Eventf(next, nil, d.Event.Type, d.Event.Reason, "PhaseChanged", "%s", d.Event.Message)
		}
		if c.Status.Phase != "" && !d.PhaseDueAt.IsZero() {
			lag := now.Sub(d.PhaseDueAt)
			metrics.TransitionLag.Observe(lag.Seconds())
			logger.Info("contract phase changed", "from", c.Status.Phase, "to", d.Phase, "dueAt", d.PhaseDueAt, "lag", lag)
		} else {
			logger.Info("contract phase", "phase", d.Phase)
		}
	}
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

	if d.NextTransitionAt.IsZero() {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: r.untilNext(d), Priority: ptr.To(PriorityDue)}, nil
}

// untilNext is how long from the clock now (the pass took time) until the
// contract's next pass: ContractPhaseAfter past its next instant; 0 if it
// has none.
func (r *ContractReconciler) untilNext(d entitlement.ContractDecision) time.Duration {
	if d.NextTransitionAt.IsZero() {
		return 0
	}
	return entitlement.RequeueAfter(r.Clock.Now(), d.NextTransitionAt) + ContractPhaseAfter
}

// ContractPhaseAfter is how long after a contract's instant its own status
// (phase, event) is written: after the partners it supplies, whose
// entitlements change at the same instant and which decide from the
// contract's spec, not its status. At an instant the contract's pass (a
// list of its partners and every contract, a status write, an event) went
// alongside its partners' access and status writes; in the staggered
// expiry (ten contracts and their partners at each whole second) putting it
// after them took the partners' lag from p50/p99 134/295 ms to
// 97–118/169–288 ms (three 200-partner runs; 102/233 ms in the 1,000 run).
// The contract's phase is still applied within the second, and
// entitlements_transition_lag_seconds counts the wait.
const ContractPhaseAfter = 300 * time.Millisecond
