// Package uninstall_test checks that uninstalling the operator's CRDs never
// cascades into partner namespaces, even for partners with
// deletionPolicy: Delete.
package uninstall_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

func TestDeletingTheCRDKeepsNamespaces(t *testing.T) {
	c := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k8s, err := client.New(c.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testenv.TierRoles() {
		if err := k8s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	m, err := testenv.StartManager(c.Config, testenv.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()

	contract := testenv.Contract("magirus-de", "Magirus", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(5, 2)...)
	p := testenv.Partner("elbe", v1.TierPremier, "DE", []string{contract.Name}, "elbe-prod", "elbe-dev")
	p.Spec.DeletionPolicy = v1.DeletionDelete
	for _, o := range []client.Object{contract, p} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := testcluster.Poll(20*time.Second, func() error {
		got := &v1.Partner{}
		if err := k8s.Get(ctx, types.NamespacedName{Name: p.Name}, got); err != nil {
			return err
		}
		if got.Status.Phase != v1.PartnerEntitled {
			return fmt.Errorf("phase %q", got.Status.Phase)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	data := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "elbe-prod", Name: "customer-data"}}
	if err := k8s.Create(ctx, data); err != nil {
		t.Fatal(err)
	}

	// Uninstall: delete the Partner CRD. The API server deletes every
	// Partner; the operator's finalizer sees its CRD going and keeps the
	// namespaces despite deletionPolicy Delete.
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "partners." + v1.GroupVersion.Group}}
	if err := k8s.Delete(ctx, crd); err != nil {
		t.Fatal(err)
	}
	if err := testcluster.Poll(60*time.Second, func() error {
		err := k8s.Get(ctx, types.NamespacedName{Name: crd.Name}, &apiextensionsv1.CustomResourceDefinition{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("CRD still there (%v)", err)
	}); err != nil {
		t.Fatal(err)
	}
	// Namespaces and content stay, for a bounded while after the CRD is gone
	// (kube-controller-manager's garbage collector runs meanwhile).
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range []string{"elbe-prod", "elbe-dev"} {
			ns := &corev1.Namespace{}
			if err := k8s.Get(ctx, types.NamespacedName{Name: n}, ns); err != nil || !ns.DeletionTimestamp.IsZero() {
				t.Fatalf("namespace %s after uninstalling the CRD: err %v, deletionTimestamp %v", n, err, ns.DeletionTimestamp)
			}
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(data), &corev1.ConfigMap{}); err != nil {
			t.Fatalf("customer data after uninstalling the CRD: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
