package controllers

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// The manager's defaults for its client and workers: at thousands of
// partners changing at one instant the work is API writes, and a
// client-side limit as low as client-go's default would be the bottleneck,
// not the API server. The API server protects itself and
// its other clients with API Priority and Fairness: the manager's
// ServiceAccount falls in the workload-low priority level, where its
// requests queue fairly behind the system's and other tenants' flows.
const (
	DefaultQPS                     = 500
	DefaultBurst                   = 1000
	DefaultMaxConcurrentReconciles = 16
)

// DefaultStalledRecheck is how often a Stalled partner is decided again.
// Some fixes send the operator no event: deleting or labelling a namespace
// it does not cache, granting it bind on a role.
const DefaultStalledRecheck = time.Minute

// MaxRetryDelay caps the backoff of a failing reconcile (the workqueue's,
// the only one). A reconcile that returns an error loses its RequeueAfter
// (the next contract boundary), so with controller-runtime's default cap of
// 1000 s a partner whose apply keeps failing could fail over or be revoked
// up to 17 minutes late; with this cap, at most 30 s. Selling stops at a
// contract's end at admission, whatever the operator's retries.
const MaxRetryDelay = 30 * time.Second

// retryLimiter is controller-runtime's default rate limiter with the
// per-item backoff capped at MaxRetryDelay.
func retryLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, MaxRetryDelay),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// NewScheme returns a scheme with the built-in types and this API.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(v1.AddToScheme(s))
	return s
}

// CacheOptions limits the cache to what the operator manages: namespaces,
// RoleBindings and ResourceQuotas carrying its managed-by label, and
// ClusterRoles labelled bindable. Clusters with thousands of unrelated
// objects of those kinds cost it nothing. Cached objects keep their
// managedFields only where the operator reads them (stripManagedFields).
func CacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{v1.LabelManagedBy: v1.ManagedByValue})
	bindable := labels.SelectorFromSet(labels.Set{v1.LabelBindable: "true"})
	return cache.Options{
		DefaultTransform: stripManagedFields,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Namespace{}:     {Label: managed},
			&rbacv1.RoleBinding{}:   {Label: managed},
			&corev1.ResourceQuota{}: {Label: managed},
			&rbacv1.ClusterRole{}:   {Label: bindable},
		},
	}
}

// stripManagedFields drops an object's managedFields before it enters the
// cache, except a RoleBinding's or ResourceQuota's: the apply compares the
// operator's own fields there (Extract…) to skip an unchanged write.
// Nothing reads them elsewhere, and they are a quarter of the heap at
// scale.
func stripManagedFields(in any) (any, error) {
	switch in.(type) {
	case *rbacv1.RoleBinding, *corev1.ResourceQuota:
		return in, nil
	}
	return cache.TransformStripManagedFields()(in)
}

// Options configure the reconcilers.
type Options struct {
	Clock                   clock.PassiveClock
	MaxConcurrentReconciles int
	// StalledRecheck is how often a Stalled partner is decided again;
	// default DefaultStalledRecheck.
	StalledRecheck time.Duration
	// RequireAdmissionPolicies: contracts report (Stalled
	// AdmissionPolicyMissing) when the admission policies the operator
	// relies on are not in place as shipped.
	RequireAdmissionPolicies bool
}

// The metrics endpoint authenticates and authorizes its callers through
// the API server (cmd/manager --metrics-secure).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Setup registers the indexes and both reconcilers with a manager.
func Setup(ctx context.Context, mgr manager.Manager, o Options) error {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if err := SetupIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("field indexes: %w", err)
	}
	if err := (&ContractReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Clock: o.Clock,
		Recorder:                 mgr.GetEventRecorder("entitlement-operator"),
		MaxConcurrentReconciles:  o.MaxConcurrentReconciles,
		RequireAdmissionPolicies: o.RequireAdmissionPolicies,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("DistributorContract controller: %w", err)
	}
	if err := (&PartnerReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Clock: o.Clock,
		Recorder:                mgr.GetEventRecorder("entitlement-operator"),
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		StalledRecheck:          o.StalledRecheck,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("Partner controller: %w", err)
	}
	return nil
}
