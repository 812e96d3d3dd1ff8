package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
	"github.com/partnerops/entitlement-operator/internal/metrics"
)

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
	// Say so first: a deletion that cannot finish (an API error, a
	// namespace that will not go) must not leave the Partner reading Ready.
	if err := r.markDeleting(ctx, p); err != nil {
		return fmt.Errorf("marking Partner %s as deleting: %w", p.Name, err)
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
	if err := r.Client.List(ctx, labelled, client.MatchingFields{IndexChildPartner: p.Name}); err != nil {
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
		if listed[ns.Name] && entitlement.ShouldDeleteNamespace(deleteNamespaces, p.Name, entitlement.RecordedUID(p, ns.Name), ns.UID, ns.Labels, ns.Annotations) {
			if err := r.Client.Delete(ctx, ns, client.Preconditions{UID: &ns.UID}); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting namespace %s: %w", ns.Name, err))
				continue
			}
			r.Recorder.Eventf(p, nil, corev1.EventTypeNormal, v1.EventNamespaceDeleted, "Delete",
				"deleted namespace %s (deletionPolicy Delete, created by the operator)", ns.Name)
			continue
		}
		obs := entitlement.NamespaceObservation{Name: ns.Name, Exists: true, UID: ns.UID, Labels: ns.Labels, Annotations: ns.Annotations}
		q := &corev1.ResourceQuota{}
		switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: v1.ResourceQuotaName}, q); {
		case err == nil:
			obs.Quota = entitlement.ObserveQuota(q)
		case !apierrors.IsNotFound(err):
			errs = append(errs, fmt.Errorf("reading ResourceQuota in %s: %w", ns.Name, err))
			continue
		}
		np := entitlement.RetainPlan(p, obs)
		if _, err := r.applyNamespace(ctx, np); err != nil {
			errs = append(errs, fmt.Errorf("revoking namespace %s: %w", ns.Name, err))
			continue
		}
		if _, err := r.applyRoleBinding(ctx, p, np, "", entitlement.BindRemove); err != nil {
			errs = append(errs, fmt.Errorf("deleting RoleBinding in %s: %w", ns.Name, err))
		}
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
		metrics.Revocations.WithLabelValues("false").Inc()
	}
	metrics.ForgetPartner(p.Name)
	return nil
}

// markDeleting sets Ready=False and Reconciling=True with reason Deleting,
// once (no write when they already say so).
func (r *PartnerReconciler) markDeleting(ctx context.Context, p *v1.Partner) error {
	if c := meta.FindStatusCondition(p.Status.Conditions, v1.ConditionReady); c != nil && c.Reason == v1.ReasonDeleting {
		return nil
	}
	next := p.DeepCopy()
	now := r.Clock.Now()
	const msg = "the Partner is being deleted: revoking its access (deletionPolicy decides its namespaces) before the finalizer is released"
	for _, t := range []string{v1.ConditionReady, v1.ConditionReconciling} {
		status := metav1.ConditionFalse
		if t == v1.ConditionReconciling {
			status = metav1.ConditionTrue
		}
		entitlement.SetCondition(&next.Status.Conditions, metav1.Condition{Type: t, Status: status, Reason: v1.ReasonDeleting, Message: msg, ObservedGeneration: p.Generation}, now)
	}
	if err := r.writeStatus(ctx, p, next); err != nil {
		return err
	}
	*p = *next
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
