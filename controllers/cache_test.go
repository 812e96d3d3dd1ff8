package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// TestStripManagedFields: the cache keeps managedFields only where the
// apply reads them (the operator's RoleBindings and quotas).
func TestStripManagedFields(t *testing.T) {
	fields := []metav1.ManagedFieldsEntry{{Manager: FieldOwner, Operation: metav1.ManagedFieldsOperationApply}}
	cases := []struct {
		obj  client.Object
		keep bool
	}{
		{&rbacv1.RoleBinding{}, true},
		{&corev1.ResourceQuota{}, true},
		{&v1.Partner{}, false},
		{&v1.DistributorContract{}, false},
		{&v1.Subscription{}, false},
		{&corev1.Namespace{}, false},
		{&rbacv1.ClusterRole{}, false},
	}
	for _, tc := range cases {
		tc.obj.SetManagedFields(fields)
		out, err := stripManagedFields(tc.obj)
		if err != nil {
			t.Fatalf("%T: %v", tc.obj, err)
		}
		if got := len(out.(client.Object).GetManagedFields()) > 0; got != tc.keep {
			t.Errorf("%T: managedFields kept %v, want %v", tc.obj, got, tc.keep)
		}
	}
}
