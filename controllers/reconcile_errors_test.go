package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

func TestStatusPatchFailures(t *testing.T) {
	r, _, _ := reconcilerWith(t, faults{})
	p := partner("a")
	res, err := r.statusPatchFailed(context.Background(), p, nil, errConflict)
	if err != nil || res.RequeueAfter != staleRetry {
		t.Errorf("409 on the status patch: want a quiet retry after %v, got %v, %v", staleRetry, res, err)
	}
	_, err = r.statusPatchFailed(context.Background(), p, nil, errServer)
	if err == nil || !strings.Contains(err.Error(), "status of Partner acme") || !strings.Contains(err.Error(), "etcd timeout") {
		t.Errorf("500 on the status patch: want an error naming the partner and the cause, got %v", err)
	}
	applyErr := errors.New("quota refused")
	_, err = r.statusPatchFailed(context.Background(), p, applyErr, errConflict)
	if err == nil || !strings.Contains(err.Error(), "quota refused") {
		t.Errorf("409 after an apply error: want the apply error kept, got %v", err)
	}
}

func TestReconcileErrorsNameTheObject(t *testing.T) {
	cases := []struct {
		name   string
		faults faults
		want   string
	}{
		{"get Partner 500", faults{get: map[string]error{"Partner/acme": errServer}}, "getting Partner acme"},
		{"get contract 500", faults{get: map[string]error{"DistributorContract/c": errServer}}, "DistributorContract c for Partner acme"},
		{"status patch 500", faults{statusPatch: map[string]error{"Partner/acme": errServer}}, "patching status of Partner acme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			contract := &v1.DistributorContract{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1.DistributorContractSpec{Region: "DE"}}
			r, _, _ := reconcilerWith(t, tc.faults, partner("a"), contract)
			_, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "acme"}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestDeleteUnderInjectedErrors(t *testing.T) {
	created := managedNamespace("a")
	created.Annotations = map[string]string{v1.AnnotationCreatedBy: "acme"}
	p := partner("a")
	p.Spec.DeletionPolicy = v1.DeletionDelete
	p.Status.Namespaces = []v1.NamespaceStatus{{Name: "a", State: v1.NamespaceGranted, UID: "ns-uid"}}
	now := metav1.Now()
	p.DeletionTimestamp = &now

	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "partners." + v1.GroupVersion.Group}}
	r, _, c := reconcilerWith(t, faults{delete: map[string]error{"Namespace/a": errServer}}, p, created, crd)
	err := r.reconcileDelete(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "deleting namespace a") {
		t.Fatalf("namespace delete 500: want an error naming it, got %v", err)
	}
	got := &v1.Partner{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "acme"}, got); err != nil || !containsString(got.Finalizers, v1.Finalizer) {
		t.Errorf("finalizer: want kept while a namespace could not be deleted, got %v (err %v)", got.Finalizers, err)
	}
	if rc := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionReady); rc == nil || rc.Status != metav1.ConditionFalse || rc.Reason != v1.ReasonDeleting {
		t.Errorf("Ready of a Partner stuck in deletion: want False/Deleting, got %+v", rc)
	}

	// The CRD is gone (being uninstalled): namespaces are kept whatever the
	// policy, the partner is released.
	r, applied, _ := reconcilerWith(t, faults{}, p.DeepCopy(), created.DeepCopy())
	if err := r.reconcileDelete(context.Background(), p.DeepCopy()); err != nil {
		t.Fatalf("reconcileDelete while the CRD is absent: %v", err)
	}
	if applied.has("delete Namespace/a") {
		t.Errorf("namespace deleted while the Partner CRD is being removed; calls %v", applied.seen)
	}
}

func TestRefusalsAreRememberedForTheRecheck(t *testing.T) {
	var f refusals
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.remember("role", "refused", t0)
	roles := map[string]entitlement.RoleObservation{"role": {Exists: true, Bindable: true}}
	f.apply(roles, t0.Add(30*time.Second), time.Minute)
	if roles["role"].Forbidden != "refused" {
		t.Errorf("within the recheck: want the refusal applied, got %+v", roles["role"])
	}
	roles = map[string]entitlement.RoleObservation{"role": {Exists: true, Bindable: true}}
	f.apply(roles, t0.Add(time.Minute), time.Minute)
	if roles["role"].Forbidden != "" {
		t.Errorf("after the recheck: want the refusal forgotten (tried again), got %+v", roles["role"])
	}
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
