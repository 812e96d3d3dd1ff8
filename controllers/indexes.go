// Package controllers holds one reconciler per kind. Each one gathers what
// its decision needs, calls a pure function of internal/entitlement, applies
// the result and writes status once.
package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Field indexes on Partners.
const (
	// IndexPartnerContracts indexes partners by each name in spec.contracts.
	IndexPartnerContracts = "spec.contracts"
	// IndexPartnerSupplier indexes partners by status.contract.
	IndexPartnerSupplier = "status.contract"
	// IndexPartnerNamespaces indexes partners by each name in
	// spec.namespaces.
	IndexPartnerNamespaces = "spec.namespaces"
	// IndexChildPartner indexes the namespaces, RoleBindings and
	// ResourceQuotas the operator manages by their partner label: a
	// partner's reconcile finds its own without scanning every one in the
	// cache (a label selector on the cache is a scan, so a thousand partners
	// reconciled at one instant would cost a million label matches).
	IndexChildPartner = "metadata.labels.partner"
	// FieldOwner is the server-side apply field manager of every write.
	FieldOwner = "entitlement-operator"
)

// SetupIndexes registers the field indexes the reconcilers use.
func SetupIndexes(ctx context.Context, mgr manager.Manager) error {
	idx := mgr.GetFieldIndexer()
	indexes := []struct {
		obj     client.Object
		field   string
		extract client.IndexerFunc
	}{
		{&v1.Partner{}, IndexPartnerContracts, func(o client.Object) []string { return o.(*v1.Partner).Spec.Contracts }},
		{&v1.Partner{}, IndexPartnerSupplier, func(o client.Object) []string { return nonEmpty(o.(*v1.Partner).Status.Contract) }},
		{&v1.Partner{}, IndexPartnerNamespaces, func(o client.Object) []string {
			ns := o.(*v1.Partner).Spec.Namespaces
			out := make([]string, len(ns))
			for i, n := range ns {
				out[i] = string(n)
			}
			return out
		}},
		{&corev1.Namespace{}, IndexChildPartner, partnerLabel},
		{&rbacv1.RoleBinding{}, IndexChildPartner, partnerLabel},
		{&corev1.ResourceQuota{}, IndexChildPartner, partnerLabel},
	}
	for _, i := range indexes {
		if err := idx.IndexField(ctx, i.obj, i.field, i.extract); err != nil {
			return fmt.Errorf("index %s: %w", i.field, err)
		}
	}
	return nil
}

func partnerLabel(o client.Object) []string { return nonEmpty(o.GetLabels()[v1.LabelPartner]) }

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
