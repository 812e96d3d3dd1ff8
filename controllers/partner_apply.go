package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

type bindForbiddenError struct {
	role string
	err  error
}

func (e *bindForbiddenError) Error() string {
	return fmt.Sprintf("binding ClusterRole %s: %v", e.role, e.err)
}

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
