package controllers

import (
	"context"
	"reflect"
	"slices"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

// SetupWithManager wires the watches: partners; contracts (to exactly the
// partners listing them, via a field index); the managed namespaces,
// RoleBindings and quotas (drift and quota usage); bindable ClusterRoles.
func (r *PartnerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	writes := &ownWrites{}
	cache := r.Client
	r.Client = recordingClient{Client: r.Client, writes: writes}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.Partner{}, builder.WithPredicates(partnerChanged())).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&corev1.ResourceQuota{}).
		Watches(&v1.DistributorContract{}, handler.EnqueueRequestsFromMapFunc(r.partnersListing),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(partnerOfNamespace)).
		// Whole objects (small): the spread counts them, the requirements
		// measurement sums their units.
		Watches(&v1.Subscription{}, handler.EnqueueRequestsFromMapFunc(r.partnerOfSubscription),
			builder.WithPredicates(createdDeletedOrResized())).
		Watches(&rbacv1.ClusterRole{}, handler.EnqueueRequestsFromMapFunc(r.allPartners)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, RateLimiter: retryLimiter()}).
		WithLogConstructor(reconcileLogs(mgr.GetLogger(), "partner", "Partner", r.Clock)).
		Named("partner").
		Complete(consistent{inner: r, cache: cache, newObject: func() client.Object { return &v1.Partner{} }, writes: writes})
}

// partnerChanged passes spec changes, deletion and finalizer changes, the
// adopt annotation and periodic resyncs, not the operator's own status
// writes.
func partnerChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		return isResync(e) || o.GetGeneration() != n.GetGeneration() ||
			!reflect.DeepEqual(o.GetFinalizers(), n.GetFinalizers()) ||
			o.GetAnnotations()[v1.AnnotationAdopt] != n.GetAnnotations()[v1.AnnotationAdopt] ||
			o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero()
	}}
}

// isResync reports an informer's periodic resync (--sync-period): the same
// object delivered again. Predicates that filter updates must let it pass,
// or the resync is no backstop.
func isResync(e event.UpdateEvent) bool {
	return e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion()
}

// specChangedOrResync passes spec changes (generation) and periodic resyncs.
func specChangedOrResync() predicate.Predicate {
	return predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		UpdateFunc:  isResync,
		GenericFunc: func(event.GenericEvent) bool { return false },
	})
}

func (r *PartnerReconciler) partnersListing(ctx context.Context, o client.Object) []reconcile.Request {
	return r.partnerRequests(ctx, "listing partners of contract "+o.GetName(), client.MatchingFields{IndexPartnerContracts: o.GetName()})
}

func (r *PartnerReconciler) allPartners(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.partnerRequests(ctx, "listing partners")
}

// partnerRequests lists partners from the cache (names only: no deep
// copy) and returns a request for each (none when the list fails: the
// error is logged, the periodic resync is the backstop).
func (r *PartnerReconciler) partnerRequests(ctx context.Context, what string, opts ...client.ListOption) []reconcile.Request {
	list := &v1.PartnerList{}
	if err := r.Client.List(ctx, list, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
		log.FromContext(ctx).Error(err, what)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, p := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
	}
	return reqs
}

// partnerOfSubscription maps a Subscription to the partner whose managed
// namespace holds it (none for namespaces the operator does not manage).
func (r *PartnerReconciler) partnerOfSubscription(ctx context.Context, o client.Object) []reconcile.Request {
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: o.GetNamespace()}, ns); err != nil {
		return nil // not a managed namespace (the cache holds only those)
	}
	return partnerOfNamespace(ctx, ns)
}

// createdDeletedOrResized passes what changes a count or a sum of units.
func createdDeletedOrResized() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*v1.Subscription)
			n, ok2 := e.ObjectNew.(*v1.Subscription)
			return ok1 && ok2 && o.Spec.Units != n.Spec.Units
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func partnerOfNamespace(_ context.Context, o client.Object) []reconcile.Request {
	if name := o.GetLabels()[v1.LabelPartner]; name != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	}
	return nil
}

// SetupWithManager watches contracts (spec changes re-plan at once) and
// partners (so the partners count follows failovers).
func (r *ContractReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	writes := &ownWrites{}
	cache := r.Client
	r.Client = recordingClient{Client: r.Client, writes: writes}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.DistributorContract{}, builder.WithPredicates(specChangedOrResync())).
		Watches(&v1.Partner{}, supplierChanges(r.recountDelay)).
		Watches(&rbacv1.ClusterRole{}, handler.EnqueueRequestsFromMapFunc(r.contractsUsingRole)).
		// Another contract's schedule changes where partners fail over to.
		Watches(&v1.DistributorContract{}, handler.EnqueueRequestsFromMapFunc(r.allContracts),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// The admission policies that enforce every contract.
		Watches(&admissionv1.ValidatingAdmissionPolicy{}, handler.EnqueueRequestsFromMapFunc(r.allContracts),
			builder.WithPredicates(reliedPolicy(func(o client.Object) string { return o.GetName() }))).
		Watches(&admissionv1.ValidatingAdmissionPolicyBinding{}, handler.EnqueueRequestsFromMapFunc(r.allContracts),
			builder.WithPredicates(reliedPolicy(func(o client.Object) string {
				if b, ok := o.(*admissionv1.ValidatingAdmissionPolicyBinding); ok {
					return b.Spec.PolicyName
				}
				return ""
			}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, RateLimiter: retryLimiter()}).
		WithLogConstructor(reconcileLogs(mgr.GetLogger(), "distributorcontract", "DistributorContract", r.Clock)).
		Named("distributorcontract").
		Complete(consistent{inner: r, cache: cache, newObject: func() client.Object { return &v1.DistributorContract{} }, writes: writes})
}

// reliedPolicy passes the events of the admission policies the operator
// relies on, and of their bindings (policy names the policy an object is
// or binds).
func reliedPolicy(policy func(client.Object) string) predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		return slices.Contains(entitlement.ReliedPolicies, policy(o))
	})
}

// allContracts maps any change to every contract (a handful).
func (r *ContractReconciler) allContracts(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.contractRequests(ctx, func(*v1.DistributorContract) bool { return true })
}

// contractsUsingRole maps a ClusterRole to the contracts whose tiers bind
// it.
func (r *ContractReconciler) contractsUsingRole(ctx context.Context, o client.Object) []reconcile.Request {
	return r.contractRequests(ctx, func(c *v1.DistributorContract) bool {
		for i := range c.Spec.Entitlements {
			if entitlement.ClusterRoleFor(&c.Spec.Entitlements[i]) == o.GetName() {
				return true
			}
		}
		return false
	})
}

func (r *ContractReconciler) contractRequests(ctx context.Context, keep func(*v1.DistributorContract) bool) []reconcile.Request {
	list := &v1.DistributorContractList{}
	if err := r.Client.List(ctx, list); err != nil {
		log.FromContext(ctx).Error(err, "listing contracts")
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if keep(&list.Items[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return reqs
}

// ContractStatusCoalesce is how long a partner's change waits before its
// contracts' status (partners supplied, forecast) is computed again, for
// each thousand partners the contract supplied at its last count
// (entitlement.RecountDelay): the changes of a window are counted in one
// reconcile and one status write. At a mass expiry thousands of partners
// change within seconds; each re-count is a list of every partner the
// contract supplies and a status write, so a window that grows with them
// keeps the re-counts linear rather than quadratic.
const ContractStatusCoalesce = time.Second

// supplierChanges enqueues the contracts a partner was and is supplied by,
// when that changes, after the contract's delay (an item already waiting
// keeps its earlier time, so changes coalesce).
func supplierChanges(delay func(contract string) time.Duration) handler.TypedEventHandler[client.Object, reconcile.Request] {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], names ...string) {
		for _, n := range names {
			if n != "" {
				q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Name: n}}, delay(n))
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object.(*v1.Partner).Status.Contract)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			o, n := e.ObjectOld.(*v1.Partner), e.ObjectNew.(*v1.Partner)
			switch {
			case o.Status.Contract != n.Status.Contract:
				enqueue(q, o.Status.Contract, n.Status.Contract)
			case o.Generation != n.Generation || o.Status.Subscriptions.Used != n.Status.Subscriptions.Used:
				// Its list of contracts, suspension or usage: the forecast
				// of the contract supplying it.
				enqueue(q, n.Status.Contract)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if p, ok := e.Object.(*v1.Partner); ok {
				enqueue(q, p.Status.Contract)
			}
		},
	}
}
