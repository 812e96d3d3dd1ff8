// Package controllers holds one reconciler per kind. Each one gathers what
// its decision needs, calls a pure function of internal/entitlement, applies
// the result and writes status once.
package controllers

import (
	"context"

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
	// FieldOwner is the server-side apply field manager of every write.
	FieldOwner = "entitlement-operator"
)

// SetupIndexes registers the field indexes the reconcilers use.
func SetupIndexes(ctx context.Context, mgr manager.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &v1.Partner{}, IndexPartnerContracts, func(o client.Object) []string {
		return o.(*v1.Partner).Spec.Contracts
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &v1.Partner{}, IndexPartnerSupplier, func(o client.Object) []string {
		if c := o.(*v1.Partner).Status.Contract; c != "" {
			return []string{c}
		}
		return nil
	})
}
