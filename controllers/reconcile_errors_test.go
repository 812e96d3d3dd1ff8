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
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

func TestStatusPatchFailures(t *testing.T) {
	r, _, _ := reconcilerWith(t, faults{})
	p := partner("a")
	none := &entitlement.PartnerPlan{}
	res, err := r.statusWriteFailed(context.Background(), p, none, nil, errConflict)
	if err != nil || res.RequeueAfter != staleRetry {
		t.Errorf("409 on the status patch: want a quiet retry after %v, got %v, %v", staleRetry, res, err)
	}
	// The pass that met the conflict had taken the place of the one queued
	// for the partner's next instant: the retry must not come after it.
	soon := &entitlement.PartnerPlan{RequeueAt: r.Clock.Now().Add(300 * time.Millisecond)}
	res, err = r.statusWriteFailed(context.Background(), p, soon, nil, errConflict)
	if err != nil || res.RequeueAfter != 300*time.Millisecond || res.Priority == nil || *res.Priority != PriorityDue {
		t.Errorf("409 with a transition due in 300ms: want a retry at it (PriorityDue), got %+v, %v", res, err)
	}
	later := &entitlement.PartnerPlan{RequeueAt: r.Clock.Now().Add(time.Hour)}
	if res, _ = r.statusWriteFailed(context.Background(), p, later, nil, errConflict); res.RequeueAfter != staleRetry {
		t.Errorf("409 with a transition due in 1h: want a retry after %v, got %+v", staleRetry, res)
	}
	_, err = r.statusWriteFailed(context.Background(), p, none, nil, errServer)
	if err == nil || !strings.Contains(err.Error(), "status of Partner acme") || !strings.Contains(err.Error(), "etcd timeout") {
		t.Errorf("500 on the status patch: want an error naming the partner and the cause, got %v", err)
	}
	applyErr := errors.New("quota refused")
	_, err = r.statusWriteFailed(context.Background(), p, none, applyErr, errConflict)
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
		{"status write 500", faults{statusWrite: map[string]error{"Partner/acme": errServer}}, "writing status of Partner acme"},
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

// TestContractConflictKeepsItsInstant: a contract pass whose status write
// meets a stale copy's 409 retries no later than ContractPhaseAfter past
// the contract's next instant. It had taken the place of the pass queued
// for that instant, and the newer copy's status-only event starts no pass:
// with the plain 1 s backstop the phase was applied up to 1 s late.
func TestContractConflictKeepsItsInstant(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, int(700*time.Millisecond), time.UTC)
	ends := metav1.NewTime(time.Date(2026, 12, 1, 12, 0, 3, 0, time.UTC)) // Expiring due at :01, in 300ms
	c := &v1.DistributorContract{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 1}, Spec: v1.DistributorContractSpec{
		Distributor: "Bytec", Region: "DE", StartsAt: metav1.NewTime(now.Add(-time.Hour)), EndsAt: &ends,
		NoticePeriod: &metav1.Duration{Duration: 2 * time.Second},
		Entitlements: []v1.TierEntitlement{{Tier: v1.TierReady, Subscriptions: 3, MaxNamespaces: 1}},
	}}
	for _, tc := range []struct {
		name     string
		ends     *metav1.Time
		want     time.Duration
		priority bool
	}{
		{"instant in 300ms", &ends, 300*time.Millisecond + ContractPhaseAfter, true},
		{"instant in a month", ptr.To(metav1.NewTime(now.Add(30 * 24 * time.Hour))), staleRetry, false},
		{"no end", nil, staleRetry, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.DeepCopy()
			c.Spec.EndsAt = tc.ends
			fc := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(c).
				WithStatusSubresource(&v1.DistributorContract{}).
				WithIndex(&v1.Partner{}, IndexPartnerSupplier, func(o client.Object) []string { return nonEmpty(o.(*v1.Partner).Status.Contract) }).
				WithInterceptorFuncs(interceptor.Funcs{
					SubResourceUpdate: func(context.Context, client.Client, string, client.Object, ...client.SubResourceUpdateOption) error {
						return errConflict
					},
				}).Build()
			r := &ContractReconciler{Client: fc, APIReader: fc, Clock: clocktesting.NewFakeClock(now), Recorder: &nopRecorder{}}
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "c"}})
			if err != nil {
				t.Fatalf("a 409 is retried quietly, got %v", err)
			}
			if res.RequeueAfter != tc.want || (res.Priority != nil) != tc.priority {
				t.Errorf("want a retry after %v (PriorityDue: %v), got %+v", tc.want, tc.priority, res)
			}
		})
	}
}
