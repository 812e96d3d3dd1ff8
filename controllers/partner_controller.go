package controllers

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
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
}

// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=partners,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=entitlements.partnerops.io,resources=partners/status,verbs=get;patch
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
			metrics.SetPartner(req.Name, "", "")
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
	in, err := r.gather(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	plan := entitlement.PlanPartner(in)

	applyErr := r.apply(ctx, p, &plan)
	var forbidden *bindForbiddenError
	if errors.As(applyErr, &forbidden) {
		// The API server refused the binding (the operator may not bind this
		// role): decide again with that knowledge; only a user can fix it.
		obs := in.Roles[forbidden.role]
		obs.Forbidden = forbidden.err.Error()
		in.Roles[forbidden.role] = obs
		plan = entitlement.PlanPartner(in)
		applyErr = r.apply(ctx, p, &plan)
	}

	next := p.DeepCopy()
	r.setStatus(next, &plan, applyErr, in.Now)
	if !equality.Semantic.DeepEqual(p.Status, next.Status) {
		// The optimistic lock makes a reconcile of a stale cached copy fail
		// instead of overwriting newer status and announcing its events a
		// second time; the watch event of the newer copy is on its way.
		if err := r.Client.Status().Patch(ctx, next, client.MergeFromWithOptions(p, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) && applyErr == nil {
				logger.V(1).Info("status changed since this copy was cached; reconciling the newer one")
				return ctrl.Result{RequeueAfter: staleRetry}, nil
			}
			return ctrl.Result{}, errors.Join(applyErr, fmt.Errorf("patching status of Partner %s: %w", p.Name, err))
		}
	}
	r.observe(p, next, &plan, in.Now)
	if applyErr != nil {
		return ctrl.Result{}, fmt.Errorf("applying entitlements of Partner %s: %w", p.Name, applyErr)
	}
	var res ctrl.Result
	if !plan.RequeueAt.IsZero() {
		res.RequeueAfter = entitlement.RequeueAfter(in.Now, plan.RequeueAt)
		logger.V(1).Info("next contract boundary", "at", plan.RequeueAt, "after", res.RequeueAfter)
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

// gather reads everything PlanPartner needs.
func (r *PartnerReconciler) gather(ctx context.Context, p *v1.Partner) (entitlement.PartnerInput, error) {
	in := entitlement.PartnerInput{
		Partner:    p,
		Contracts:  map[string]*v1.DistributorContract{},
		Namespaces: map[string]entitlement.NamespaceObservation{},
		Roles:      map[string]entitlement.RoleObservation{},
		Now:        r.Clock.Now(),
	}
	for _, name := range p.Spec.Contracts {
		c := &v1.DistributorContract{}
		if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, c); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return in, fmt.Errorf("getting DistributorContract %s for Partner %s: %w", name, p.Name, err)
		}
		in.Contracts[name] = c
		if ent := entitlement.EntitlementFor(c, p.Spec.Tier); ent != nil {
			role := entitlement.ClusterRoleFor(ent)
			if _, seen := in.Roles[role]; !seen {
				obs, err := r.observeRole(ctx, role)
				if err != nil {
					return in, fmt.Errorf("getting ClusterRole %s for Partner %s: %w", role, p.Name, err)
				}
				in.Roles[role] = obs
			}
		}
	}
	for _, n := range p.Spec.Namespaces {
		obs, err := r.observeNamespace(ctx, p.Name, string(n))
		if err != nil {
			return in, fmt.Errorf("observing namespace %s of Partner %s: %w", n, p.Name, err)
		}
		in.Namespaces[string(n)] = obs
	}
	// Namespaces still labelled for the partner that it no longer lists.
	labelled := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, labelled, client.MatchingLabels{v1.LabelPartner: p.Name}); err != nil {
		return in, fmt.Errorf("listing namespaces of Partner %s: %w", p.Name, err)
	}
	for _, ns := range labelled.Items {
		if _, listed := in.Namespaces[ns.Name]; listed {
			continue
		}
		obs, err := r.observeNamespace(ctx, p.Name, ns.Name)
		if err != nil {
			return in, fmt.Errorf("observing namespace %s of Partner %s: %w", ns.Name, p.Name, err)
		}
		in.Namespaces[ns.Name] = obs
		in.Unlisted = append(in.Unlisted, ns.Name)
	}
	sort.Strings(in.Unlisted)
	return in, nil
}

func (r *PartnerReconciler) observeRole(ctx context.Context, name string) (entitlement.RoleObservation, error) {
	role := &rbacv1.ClusterRole{}
	// The cache holds only bindable roles; a miss is confirmed directly.
	err := r.Client.Get(ctx, types.NamespacedName{Name: name}, role)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, types.NamespacedName{Name: name}, role)
	}
	if apierrors.IsNotFound(err) {
		return entitlement.RoleObservation{}, nil
	}
	if err != nil {
		return entitlement.RoleObservation{}, err
	}
	return entitlement.RoleObservation{Exists: true, Bindable: role.Labels[v1.LabelBindable] == "true"}, nil
}

func (r *PartnerReconciler) observeNamespace(ctx context.Context, partner, name string) (entitlement.NamespaceObservation, error) {
	ns := &corev1.Namespace{}
	// Managed namespaces are in the cache; anything else is read directly,
	// so an unmanaged namespace of that name is seen (and never adopted).
	err := r.Client.Get(ctx, types.NamespacedName{Name: name}, ns)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, types.NamespacedName{Name: name}, ns)
	}
	if apierrors.IsNotFound(err) {
		return entitlement.NamespaceObservation{}, nil
	}
	if err != nil {
		return entitlement.NamespaceObservation{}, err
	}
	obs := entitlement.NamespaceObservation{
		Exists:      true,
		Owner:       ns.Labels[v1.LabelPartner],
		Terminating: !ns.DeletionTimestamp.IsZero() || ns.Status.Phase == corev1.NamespaceTerminating,
	}
	q := &corev1.ResourceQuota{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: name, Name: v1.ResourceQuotaName}, q); err == nil {
		if u, ok := q.Status.Used[v1.SubscriptionQuotaResource]; ok {
			obs.Used = u.Value()
		}
	} else if !apierrors.IsNotFound(err) {
		return obs, err
	}
	if obs.Owner != partner {
		return obs, nil // someone else's: its content is none of our business
	}
	// The quota's count can lag (see entitlement.NamespaceUsage): count the
	// Subscriptions too, from the metadata-only cache (its own lag is
	// short: a Subscription arriving in it re-queues the partner).
	subs := &metav1.PartialObjectMetadataList{}
	subs.SetGroupVersionKind(v1.GroupVersion.WithKind("SubscriptionList"))
	if err := r.Client.List(ctx, subs, client.InNamespace(name)); err != nil {
		return obs, fmt.Errorf("listing Subscriptions: %w", err)
	}
	obs.Subscriptions = int64(len(subs.Items))
	if obs.Subscriptions > obs.Used {
		// More objects than the cached quota counts: either the quota's count
		// lags (kube-controller-manager), or only our copy of the quota does
		// (its admission update not seen yet). Only the live quota tells;
		// spreading from a stale copy would refuse Subscriptions the partner
		// may have.
		live := &corev1.ResourceQuota{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: name, Name: v1.ResourceQuotaName}, live)
		switch {
		case err == nil:
			if u, ok := live.Status.Used[v1.SubscriptionQuotaResource]; ok {
				obs.Used = u.Value()
			}
		case !apierrors.IsNotFound(err):
			return obs, fmt.Errorf("reading ResourceQuota %s/%s: %w", name, v1.ResourceQuotaName, err)
		}
	}
	return obs, nil
}

type bindForbiddenError struct {
	role string
	err  error
}

func (e *bindForbiddenError) Error() string {
	return fmt.Sprintf("binding ClusterRole %s: %v", e.role, e.err)
}

// maxEventNote is the longest note events.k8s.io/v1 accepts.
const maxEventNote = 1024

// isEscalationRefused tells the API server's RBAC escalation check (the
// operator may neither bind the role nor holds its permissions) from any
// other 403 — a webhook, a foreign quota on RoleBindings, a terminating
// namespace — which must not be read as "role not bindable".
func isEscalationRefused(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "attempting to grant RBAC permissions not currently held")
}

// apply makes the cluster match the plan: namespaces first, then per
// namespace the quota and the RoleBinding. It carries on past a failing
// namespace and returns every error.
//
// A failing step never grants access the plan's limits do not cover, and
// never keeps access the plan takes away:
//   - revoking deletes the binding first, then lowers the quota, and does
//     not wait for the namespace label;
//   - granting writes the quota first; while the quota cannot be written,
//     an existing binding may only lose subjects (no new binding, no new
//     subjects, no other role), and where the quota is known to be absent
//     the binding goes too.
func (r *PartnerReconciler) apply(ctx context.Context, p *v1.Partner, plan *entitlement.PartnerPlan) error {
	var errs []error
	for _, np := range plan.Namespaces {
		if !np.Manage {
			continue
		}
		if err := r.applyNamespace(ctx, p, np); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", np.Name, err))
			if np.Create {
				continue // nothing there to apply into
			}
		}
		narrowOnly, quotaTried := false, np.Bind
		if np.Bind {
			state, err := r.applyQuota(ctx, p, np, true)
			if err != nil {
				errs = append(errs, fmt.Errorf("ResourceQuota %s/%s: %w", np.Name, v1.ResourceQuotaName, err))
				if state == quotaAbsent {
					np.Bind = false
				} else {
					narrowOnly = true
				}
			}
		}
		if err := r.applyRoleBinding(ctx, p, np, plan.ClusterRole, narrowOnly); err != nil {
			var bf *bindForbiddenError
			if errors.As(err, &bf) {
				return err
			}
			errs = append(errs, fmt.Errorf("RoleBinding %s/%s: %w", np.Name, v1.RoleBindingName, err))
		}
		if !quotaTried {
			if _, err := r.applyQuota(ctx, p, np, true); err != nil {
				errs = append(errs, fmt.Errorf("ResourceQuota %s/%s: %w", np.Name, v1.ResourceQuotaName, err))
			}
		}
	}
	return errors.Join(errs...)
}

func stateLabel(s v1.NamespaceState) string {
	if s == v1.NamespaceGranted {
		return string(v1.NamespaceGranted)
	}
	return string(v1.NamespaceRevoked)
}

func (r *PartnerReconciler) applyNamespace(ctx context.Context, p *v1.Partner, np entitlement.NamespacePlan) error {
	labels := map[string]string{
		v1.LabelManagedBy: v1.ManagedByValue,
		v1.LabelPartner:   p.Name,
		v1.LabelState:     stateLabel(np.State),
	}
	if np.Create {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:        np.Name,
			Labels:      labels,
			Annotations: map[string]string{v1.AnnotationCreatedBy: p.Name},
		}}
		// Create, not apply: if someone created it meanwhile this fails
		// instead of adopting it; the next pass sees the conflict.
		if err := r.Client.Create(ctx, ns, client.FieldOwner(FieldOwner)); err != nil {
			return fmt.Errorf("creating: %w", err)
		}
		return nil
	}
	cur := &corev1.Namespace{}
	err := r.Client.Get(ctx, types.NamespacedName{Name: np.Name}, cur)
	if apierrors.IsNotFound(err) {
		// Not in the cache: one labelled for the partner but not yet
		// managed (adoption) is read live; one that is gone must not be
		// recreated by an apply (without the created-by annotation).
		err = r.APIReader.Get(ctx, types.NamespacedName{Name: np.Name}, cur)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s is gone; the next reconcile plans it again", np.Name)
		}
	}
	if err != nil {
		return err
	}
	if hasLabels(cur.Labels, labels) {
		return nil
	}
	return r.Client.Apply(ctx, corev1ac.Namespace(np.Name).WithLabels(labels), client.FieldOwner(FieldOwner), client.ForceOwnership)
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func childLabels(p *v1.Partner) map[string]string {
	return map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: p.Name}
}

func ownerRef(p *v1.Partner) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(v1.GroupVersion.String()).WithKind("Partner").
		WithName(p.Name).WithUID(p.UID).
		WithController(true).WithBlockOwnerDeletion(true)
}

// applyRoleBinding makes the binding match the plan. narrowOnly (the quota
// could not be written) allows only removing subjects from an existing
// binding of the same role: nothing is created or widened.
func (r *PartnerReconciler) applyRoleBinding(ctx context.Context, p *v1.Partner, np entitlement.NamespacePlan, role string, narrowOnly bool) error {
	cur := &rbacv1.RoleBinding{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: np.Name, Name: v1.RoleBindingName}, cur)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	exists := err == nil
	if !np.Bind {
		if !exists {
			return nil
		}
		return client.IgnoreNotFound(r.Client.Delete(ctx, cur, client.Preconditions{UID: &cur.UID}))
	}
	desired := rbacv1ac.RoleBinding(v1.RoleBindingName, np.Name).
		WithLabels(childLabels(p)).
		WithOwnerReferences(ownerRef(p)).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(role))
	for _, s := range p.Spec.Access {
		sub := rbacv1ac.Subject().WithKind(string(s.Kind)).WithName(s.Name)
		if s.Kind == v1.SubjectServiceAccount {
			sub.WithNamespace(s.Namespace)
		} else {
			sub.WithAPIGroup(rbacv1.GroupName)
		}
		desired.WithSubjects(sub)
	}
	if narrowOnly && (!exists || cur.RoleRef.Name != role || !subjectsWithin(desired.Subjects, cur.Subjects)) {
		return nil // keep what is there until the quota can be written
	}
	if exists {
		if cur.RoleRef.Name != role {
			// roleRef is immutable: a new role (failover to a contract with
			// another role) needs a new binding.
			if err := r.Client.Delete(ctx, cur, client.Preconditions{UID: &cur.UID}); client.IgnoreNotFound(err) != nil {
				return err
			}
		} else {
			owned, err := rbacv1ac.ExtractRoleBinding(cur, FieldOwner)
			if err != nil {
				return err
			}
			if sameApply(owned, desired) {
				return nil
			}
		}
	}
	if err := r.Client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		if isEscalationRefused(err) {
			return &bindForbiddenError{role: role, err: err}
		}
		return err
	}
	return nil
}

// quotaState is what applyQuota leaves in a namespace.
type quotaState int

const (
	quotaUnknown quotaState = iota
	quotaAbsent
	quotaPresent
)

// applyQuota applies the namespace's quota; owned adds the Partner as its
// controller (so that it goes with the Partner), which a kept namespace of a
// deleted Partner must not have.
//
// It reports what is in place afterwards: the quota (created, updated, or
// the previous one when the apply failed), none, or unknown (reading it
// failed).
func (r *PartnerReconciler) applyQuota(ctx context.Context, p *v1.Partner, np entitlement.NamespacePlan, owned bool) (quotaState, error) {
	hard := corev1.ResourceList{}
	for k, v := range np.ExtraQuota {
		hard[k] = v
	}
	hard[v1.SubscriptionQuotaResource] = *resource.NewQuantity(np.SubscriptionsHard, resource.DecimalSI)
	desired := corev1ac.ResourceQuota(v1.ResourceQuotaName, np.Name).
		WithLabels(childLabels(p)).
		WithSpec(corev1ac.ResourceQuotaSpec().WithHard(hard))
	if owned {
		desired.WithOwnerReferences(ownerRef(p))
	}
	cur := &corev1.ResourceQuota{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: np.Name, Name: v1.ResourceQuotaName}, cur)
	if err != nil && !apierrors.IsNotFound(err) {
		return quotaUnknown, err
	}
	before := quotaAbsent
	if err == nil {
		before = quotaPresent
		mine, err := corev1ac.ExtractResourceQuota(cur, FieldOwner)
		if err != nil {
			return quotaPresent, err
		}
		if sameApply(mine, desired) {
			return quotaPresent, nil
		}
	}
	if err := r.Client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return before, err
	}
	return quotaPresent, nil
}

// subjectsWithin reports whether every subject of want is one of have.
func subjectsWithin(want []rbacv1ac.SubjectApplyConfiguration, have []rbacv1.Subject) bool {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h rbacv1.Subject) bool {
			return h.Kind == deref(w.Kind) && h.Name == deref(w.Name) && h.Namespace == deref(w.Namespace)
		}) {
			return false
		}
	}
	return true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// sameApply reports whether what the field manager owns equals what it
// would apply, compared as JSON (so quantities compare canonically): an
// unchanged child costs no write.
func sameApply(owned, desired any) bool {
	a, err1 := json.Marshal(owned)
	b, err2 := json.Marshal(desired)
	if err1 != nil || err2 != nil {
		return false
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// setStatus writes the plan and the apply outcome into status (no API call).
func (r *PartnerReconciler) setStatus(p *v1.Partner, plan *entitlement.PartnerPlan, applyErr error, now time.Time) {
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
	st.Namespaces = st.Namespaces[:0]
	for _, np := range plan.Namespaces {
		st.Namespaces = append(st.Namespaces, v1.NamespaceStatus{
			Name: np.Name, State: np.State, Message: np.Message,
			SubscriptionsUsed: int32(np.Used), SubscriptionsHard: int32(np.SubscriptionsHard),
		})
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
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, v1.ReasonApplyFailed, truncate(applyErr.Error(), 1024)
	case plan.Stalled != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, plan.Stalled.Reason, plan.Stalled.Message
	default:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, v1.ReasonReconciled, "entitlements applied: "+string(plan.Phase)
	}
	setCondition(&st.Conditions, ready, now)
	if applyErr == nil {
		st.ObservedGeneration = p.Generation
	}
}

// observe emits the plan's events and records metrics.
func (r *PartnerReconciler) observe(old, cur *v1.Partner, plan *entitlement.PartnerPlan, now time.Time) {
	for _, e := range plan.Events {
		// events.k8s.io refuses a note over 1 KiB (an RBAC escalation
		// refusal lists every missing rule).
		r.Recorder.Eventf(cur, nil, e.Type, e.Reason, e.Reason, "%s", truncate(e.Message, maxEventNote))
		switch e.Reason {
		case v1.EventFailedOver:
			metrics.Failovers.Inc()
			r.observeLag(old, now)
		case v1.EventRevoked:
			metrics.Revocations.Inc()
			r.observeLag(old, now)
		}
	}
	metrics.SetPartner(cur.Name, cur.Status.Phase, cur.Spec.Tier)
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

// truncate shortens s to at most n bytes, cutting at a rune boundary and
// marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// reconcileDelete revokes every namespace of the partner, deletes the ones
// the operator created when deletionPolicy is Delete (never while the
// Partner CRD itself is being deleted: uninstalling must not cascade into
// tenant data), and then releases the finalizer. A kept namespace keeps its
// quota at 0 for Subscriptions, no longer owned by the Partner.
func (r *PartnerReconciler) reconcileDelete(ctx context.Context, p *v1.Partner) error {
	logger := log.FromContext(ctx)
	if !controllerutil.ContainsFinalizer(p, v1.Finalizer) {
		return nil
	}
	deleteNamespaces := p.Spec.DeletionPolicy == v1.DeletionDelete
	if deleteNamespaces {
		uninstalling, err := r.crdDeleting(ctx)
		if err != nil {
			return fmt.Errorf("checking the Partner CRD before deleting namespaces of Partner %s: %w", p.Name, err)
		}
		if uninstalling {
			logger.Info("Partner CRD is being deleted: keeping namespaces despite deletionPolicy Delete")
			deleteNamespaces = false
		}
	}
	listed := map[string]bool{}
	for _, n := range p.Spec.Namespaces {
		listed[string(n)] = true
	}
	labelled := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, labelled, client.MatchingLabels{v1.LabelPartner: p.Name}); err != nil {
		return fmt.Errorf("listing namespaces of Partner %s: %w", p.Name, err)
	}
	var errs []error
	for i := range labelled.Items {
		ns := &labelled.Items[i]
		if !ns.DeletionTimestamp.IsZero() {
			continue // already going
		}
		// Only listed namespaces follow deletionPolicy Delete; one the
		// partner stopped listing is kept (revoked) whatever the policy.
		if listed[ns.Name] && entitlement.ShouldDeleteNamespace(deleteNamespaces, p.Name, ns.Labels, ns.Annotations) {
			if err := r.Client.Delete(ctx, ns, client.Preconditions{UID: &ns.UID}); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting namespace %s: %w", ns.Name, err))
				continue
			}
			r.Recorder.Eventf(p, nil, corev1.EventTypeNormal, v1.EventNamespaceDeleted, "Delete",
				"deleted namespace %s (deletionPolicy Delete, created by the operator)", ns.Name)
			continue
		}
		np := entitlement.NamespacePlan{Name: ns.Name, State: v1.NamespaceRevoked, Manage: true}
		if err := r.applyNamespace(ctx, p, np); err != nil {
			errs = append(errs, fmt.Errorf("revoking namespace %s: %w", ns.Name, err))
			continue
		}
		if err := r.applyRoleBinding(ctx, p, np, "", false); err != nil {
			errs = append(errs, fmt.Errorf("deleting RoleBinding in %s: %w", ns.Name, err))
		}
		// The kept namespace stays revoked after the Partner is gone: its
		// quota (hard 0) loses the owner reference, or the garbage
		// collector would delete it with the Partner.
		if _, err := r.applyQuota(ctx, p, np, false); err != nil {
			errs = append(errs, fmt.Errorf("releasing ResourceQuota in %s: %w", ns.Name, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("revoking Partner %s before deletion: %w", p.Name, errors.Join(errs...))
	}
	patch := client.MergeFrom(p.DeepCopy())
	controllerutil.RemoveFinalizer(p, v1.Finalizer)
	if err := r.Client.Patch(ctx, p, patch); err != nil {
		return client.IgnoreNotFound(err)
	}
	if p.Status.Phase == v1.PartnerEntitled {
		metrics.Revocations.Inc()
	}
	metrics.SetPartner(p.Name, "", "")
	return nil
}

func (r *PartnerReconciler) crdDeleting(ctx context.Context) (bool, error) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Name: "partners." + v1.GroupVersion.Group}, crd)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !crd.DeletionTimestamp.IsZero(), nil
}

// SetupWithManager wires the watches: partners; contracts (to exactly the
// partners listing them, via a field index); the managed namespaces,
// RoleBindings and quotas (drift and quota usage); bindable ClusterRoles.
func (r *PartnerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = 4
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.Partner{}, builder.WithPredicates(partnerChanged())).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&corev1.ResourceQuota{}).
		Watches(&v1.DistributorContract{}, handler.EnqueueRequestsFromMapFunc(r.partnersListing),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(partnerOfNamespace)).
		// Metadata only: the spread counts Subscriptions, nothing more.
		Watches(&v1.Subscription{}, handler.EnqueueRequestsFromMapFunc(r.partnerOfSubscription),
			builder.OnlyMetadata, builder.WithPredicates(createdOrDeleted())).
		Watches(&rbacv1.ClusterRole{}, handler.EnqueueRequestsFromMapFunc(r.allPartners)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, RateLimiter: retryLimiter()}).
		Named("partner").
		Complete(r)
}

// partnerChanged passes spec changes, deletion and finalizer changes and
// periodic resyncs, not the operator's own status writes.
func partnerChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		return isResync(e) || o.GetGeneration() != n.GetGeneration() ||
			!reflect.DeepEqual(o.GetFinalizers(), n.GetFinalizers()) ||
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
	list := &v1.PartnerList{}
	if err := r.Client.List(ctx, list, client.MatchingFields{IndexPartnerContracts: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "listing partners of contract", "contract", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, p := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
	}
	return reqs
}

func (r *PartnerReconciler) allPartners(ctx context.Context, _ client.Object) []reconcile.Request {
	list := &v1.PartnerList{}
	if err := r.Client.List(ctx, list); err != nil {
		log.FromContext(ctx).Error(err, "listing partners")
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

// createdOrDeleted passes what changes a count.
func createdOrDeleted() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func partnerOfNamespace(_ context.Context, o client.Object) []reconcile.Request {
	if name := o.GetLabels()[v1.LabelPartner]; name != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	}
	return nil
}
