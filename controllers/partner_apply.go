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

// isEscalationRefused tells the API server's RBAC escalation check (the
// operator may neither bind the role nor holds its permissions) from any
// other 403 — a webhook, a foreign quota on RoleBindings, a terminating
// namespace — which must not be read as "role not bindable".
func isEscalationRefused(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "attempting to grant RBAC permissions not currently held")
}

// apply makes the cluster match the plan, namespace by namespace, in the
// order and with the fallbacks entitlement.Steps and entitlement.BindAfter
// decide, after writing the plan's record of the namespaces it creates. It
// carries on past a failing namespace and returns every error in the
// outcome.
func (r *PartnerReconciler) apply(ctx context.Context, p *v1.Partner, plan *entitlement.PartnerPlan) entitlement.ApplyOutcome {
	out := entitlement.ApplyOutcome{Created: map[string]types.UID{}}
	if plan.Record != nil && !plan.AccessOnly {
		// The record of the namespaces about to be created comes before
		// any of them (see entitlement.recordCreations), under the same
		// resourceVersion lock as every status write.
		recorded := p.DeepCopy()
		recorded.Status = *plan.Record
		if err := r.Client.Status().Update(ctx, recorded); err != nil {
			out.Err = fmt.Errorf("recording the namespaces Partner %s creates: %w", p.Name, err)
			return out
		}
		*p = *recorded
	}
	var errs []error
	fail := func(what, ns string, err error) {
		errs = append(errs, fmt.Errorf("%s in namespace %s: %w", what, ns, err))
	}
	for _, np := range plan.Namespaces {
		if np.RevokeChildren {
			if err := r.revokeChildren(ctx, p, np.Name); err != nil {
				fail("revoking what the operator wrote", np.Name, err)
			}
		}
		if !np.Manage {
			continue
		}
		nsFailed, quota := false, entitlement.QuotaWritten
		for _, step := range entitlement.Steps(np, plan) {
			switch step {
			case entitlement.StepNamespace:
				uid, err := r.applyNamespace(ctx, np)
				if err != nil {
					nsFailed = true
					fail("Namespace", np.Name, err)
				} else if np.Create {
					out.Created[np.Name] = uid
				}
			case entitlement.StepQuota:
				if !entitlement.QuotaAfter(np, nsFailed) {
					continue
				}
				var err error
				if quota, err = r.applyQuota(ctx, p, np, true); err != nil {
					fail("ResourceQuota "+v1.ResourceQuotaName, np.Name, err)
				}
			case entitlement.StepBinding:
				replaced, err := r.applyRoleBinding(ctx, p, np, plan.ClusterRole, entitlement.BindAfter(np, nsFailed, quota))
				if replaced {
					out.Replaced = append(out.Replaced, np.Name)
				}
				if err != nil {
					fail("RoleBinding "+v1.RoleBindingName, np.Name, err)
				}
			}
		}
	}
	for _, ns := range plan.Strays {
		if err := r.revokeChildren(ctx, p, ns); err != nil {
			fail("revoking what the operator wrote", ns, err)
		}
	}
	out.Err = errors.Join(errs...)
	return out
}

// revokeChildren takes the partner's access and quota out of a namespace
// that is no longer its own (relabelled, or claimed by a forgery): the
// RoleBinding it wrote there goes, its quota allows no Subscription and
// keeps its other limits. The namespace and its content are not touched.
func (r *PartnerReconciler) revokeChildren(ctx context.Context, p *v1.Partner, ns string) error {
	if _, err := r.applyRoleBinding(ctx, p, entitlement.RevokePlan(ns, entitlement.QuotaObservation{}), "", entitlement.BindRemove); err != nil {
		return err
	}
	q := &corev1.ResourceQuota{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: v1.ResourceQuotaName}, q)
	if apierrors.IsNotFound(err) || (err == nil && q.Labels[v1.LabelPartner] != p.Name) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = r.applyQuota(ctx, p, entitlement.RevokePlan(ns, entitlement.ObserveQuota(q)), true)
	return err
}

// applyNamespace creates the namespace with its labels, view and creation
// token (returning its UID), or patches its labels and view where they
// differ from the plan.
func (r *PartnerReconciler) applyNamespace(ctx context.Context, np entitlement.NamespacePlan) (types.UID, error) {
	if np.Create {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: np.Name, Labels: np.Labels, Annotations: np.Annotations}}
		// Create, never apply: if someone created it meanwhile this fails
		// instead of taking it over, and the next pass sees a Conflict
		// (entitlement.ownership: it lacks the token).
		if err := r.Client.Create(ctx, ns, client.FieldOwner(FieldOwner)); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return "", fmt.Errorf("namespace %s was created by someone else while the operator was creating it: %w", np.Name, err)
			}
			return "", fmt.Errorf("creating: %w", err)
		}
		return ns.UID, nil
	}
	if np.Metadata.Empty() {
		return "", nil
	}
	return "", patchNamespaceMetadata(ctx, r.Client, np.Name, np.UID, np.Metadata)
}

// patchNamespaceMetadata merge-patches a namespace's labels and
// annotations: only the keys the operator keeps, each set or removed
// explicitly, so that labels and annotations others own are untouched and
// a key the view no longer has goes whoever set it. The UID is the
// patch's precondition: a namespace deleted and created again since it was
// observed is not written (the next pass decides about it).
func patchNamespaceMetadata(ctx context.Context, c client.Client, name string, uid types.UID, m entitlement.MetadataPatch) error {
	meta := map[string]any{}
	if uid != "" {
		meta["uid"] = uid
	}
	if m.Labels != nil {
		meta["labels"] = m.Labels
	}
	if m.Annotations != nil {
		meta["annotations"] = m.Annotations
	}
	body, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	return c.Patch(ctx, ns, client.RawPatch(types.MergePatchType, body), client.FieldOwner(FieldOwner))
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

// applyRoleBinding makes the binding match the plan within what mode
// allows (see entitlement.BindAfter). It reports whether it replaced a
// binding of that name that the operator had not written (a foreign one:
// the operator owns the name partner-access in the namespaces it manages).
func (r *PartnerReconciler) applyRoleBinding(ctx context.Context, p *v1.Partner, np entitlement.NamespacePlan, role string, mode entitlement.BindMode) (replaced bool, err error) {
	if mode == entitlement.BindSkip {
		return false, nil
	}
	cur := &rbacv1.RoleBinding{}
	err = r.Client.Get(ctx, types.NamespacedName{Namespace: np.Name, Name: v1.RoleBindingName}, cur)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	exists := err == nil
	if !np.Bind || mode == entitlement.BindRemove {
		if !exists {
			return false, nil
		}
		return false, client.IgnoreNotFound(r.Client.Delete(ctx, cur, client.Preconditions{UID: &cur.UID}))
	}
	desired := desiredBinding(p, np.Name, role)
	if mode == entitlement.BindNarrowOnly && (!exists || cur.RoleRef.Name != role || !subjectsWithin(desired.Subjects, cur.Subjects)) {
		return false, nil // keep what is there until the quota can be written
	}
	if exists {
		if cur.RoleRef.Name != role {
			// roleRef is immutable: a new role (failover to a contract with
			// another role) needs a new binding.
			if err := r.Client.Delete(ctx, cur, client.Preconditions{UID: &cur.UID}); client.IgnoreNotFound(err) != nil {
				return false, err
			}
		} else {
			owned, err := rbacv1ac.ExtractRoleBinding(cur, FieldOwner)
			if err != nil {
				return false, err
			}
			if sameApply(owned, desired) {
				return false, nil
			}
		}
	}
	err = r.Client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership)
	if apierrors.IsInvalid(err) && !exists {
		// Not in the cache (it lacks the operator's labels) yet there, with
		// another roleRef: someone else's binding of our name. Replace it.
		if err = r.deleteForeignBinding(ctx, np.Name); err != nil {
			return false, err
		}
		replaced = true
		err = r.Client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership)
	}
	if isEscalationRefused(err) {
		// Remembered: the next pass plans the partner Stalled instead of
		// sending the binding again (refusals).
		r.refusals.remember(role, err.Error(), r.Clock.Now())
		return replaced, fmt.Errorf("the API server refused to let the operator bind ClusterRole %s: %w", role, err)
	}
	return replaced, err
}

func (r *PartnerReconciler) deleteForeignBinding(ctx context.Context, ns string) error {
	live := &rbacv1.RoleBinding{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: v1.RoleBindingName}, live); err != nil {
		return client.IgnoreNotFound(err)
	}
	return client.IgnoreNotFound(r.Client.Delete(ctx, live, client.Preconditions{UID: &live.UID}))
}

func desiredBinding(p *v1.Partner, ns, role string) *rbacv1ac.RoleBindingApplyConfiguration {
	desired := rbacv1ac.RoleBinding(v1.RoleBindingName, ns).
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
	return desired
}

// applyQuota applies the namespace's quota; owned adds the Partner as its
// controller (so that it goes with the Partner), which a kept namespace of a
// deleted Partner must not have. It reports what is in place afterwards.
func (r *PartnerReconciler) applyQuota(ctx context.Context, p *v1.Partner, np entitlement.NamespacePlan, owned bool) (entitlement.QuotaOutcome, error) {
	hard := corev1.ResourceList{}
	for k, v := range np.ExtraQuota {
		hard[k] = v
	}
	hard[v1.SubscriptionQuotaResource] = *resource.NewQuantity(np.SubscriptionsHard, resource.DecimalSI)
	if !np.Recount.IsZero() {
		hard[v1.QuotaRecountResource] = *resource.NewQuantity(np.Recount.Unix(), resource.DecimalSI)
	}
	desired := corev1ac.ResourceQuota(v1.ResourceQuotaName, np.Name).
		WithLabels(childLabels(p)).
		WithSpec(corev1ac.ResourceQuotaSpec().WithHard(hard))
	if owned {
		desired.WithOwnerReferences(ownerRef(p))
	}
	cur := &corev1.ResourceQuota{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: np.Name, Name: v1.ResourceQuotaName}, cur)
	if err != nil && !apierrors.IsNotFound(err) {
		return entitlement.QuotaFailedUnknown, err
	}
	failed := entitlement.QuotaFailedAbsent
	if err == nil {
		failed = entitlement.QuotaFailedPresent
		mine, err := corev1ac.ExtractResourceQuota(cur, FieldOwner)
		if err != nil {
			return failed, err
		}
		if sameApply(mine, desired) {
			return entitlement.QuotaWritten, nil
		}
	}
	if err := r.Client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return failed, err
	}
	return entitlement.QuotaWritten, nil
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
