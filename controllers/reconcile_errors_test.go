package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// TestStatusWriteFailures: a pass whose status write fails returns the
// error (the workqueue's backoff retries it; controller-runtime counts it),
// naming the partner and the cause, and keeping an apply error beside it.
func TestStatusWriteFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		check func(error) bool
	}{
		{"409: a stale copy", errConflict, apierrors.IsConflict},
		{"500", errServer, func(err error) bool { return strings.Contains(err.Error(), "etcd timeout") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			contract := &v1.DistributorContract{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1.DistributorContractSpec{Region: "DE"}}
			r, _, _ := reconcilerWith(t, faults{statusWrite: map[string]error{"Partner/acme": tc.err}}, partner("a"), contract)
			_, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "acme"}})
			if err == nil || !tc.check(err) || !strings.Contains(err.Error(), "status of Partner acme") {
				t.Errorf("want the error returned, naming the partner and the cause, got %v", err)
			}
		})
	}
	applyErr := errors.New("quota refused")
	if err := errorsOf(partner("a"), applyErr, errConflict); !errors.Is(err, applyErr) || !apierrors.IsConflict(err) {
		t.Errorf("409 after an apply error: want both kept, got %v", err)
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
	if got := f.of("role", t0.Add(30*time.Second), time.Minute); got != "refused" {
		t.Errorf("within the recheck: want the refusal, got %q", got)
	}
	if got := f.of("other", t0.Add(30*time.Second), time.Minute); got != "" {
		t.Errorf("another role: want none, got %q", got)
	}
	if got := f.of("role", t0.Add(time.Minute), time.Minute); got != "" {
		t.Errorf("after the recheck: want the refusal forgotten (tried again), got %q", got)
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

// TestContractPassAtItsInstant: a contract's pass is scheduled for its
// next instant itself, at PriorityDue: its status write there is what
// stops selling at the contract's end (the contract-end admission policy
// reads it). A conflict at the write is returned, for the backoff to retry.
func TestContractPassAtItsInstant(t *testing.T) {
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
		conflict bool
		want     time.Duration
	}{
		{"instant in 300ms", &ends, false, 300 * time.Millisecond},
		{"instant in a month", ptr.To(metav1.NewTime(now.Add(30 * 24 * time.Hour))), false, 30*24*time.Hour - 2*time.Second - 700*time.Millisecond},
		{"no end", nil, false, 0},
		{"409 at the write", &ends, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c.DeepCopy()
			c.Spec.EndsAt = tc.ends
			fc := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(c).
				WithStatusSubresource(&v1.DistributorContract{}).
				WithIndex(&v1.Partner{}, IndexPartnerSupplier, func(o client.Object) []string { return nonEmpty(o.(*v1.Partner).Status.Contract) }).
				WithInterceptorFuncs(interceptor.Funcs{
					SubResourceUpdate: func(ctx context.Context, cl client.Client, sub string, o client.Object, opts ...client.SubResourceUpdateOption) error {
						if tc.conflict {
							return errConflict
						}
						return cl.SubResource(sub).Update(ctx, o, opts...)
					},
				}).Build()
			r := &ContractReconciler{Client: fc, APIReader: fc, Clock: clocktesting.NewFakeClock(now), Recorder: &nopRecorder{}}
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "c"}})
			if tc.conflict {
				if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "DistributorContract c") {
					t.Errorf("want the conflict returned, naming the contract, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter != tc.want || (tc.want > 0 && (res.Priority == nil || *res.Priority != entitlement.PriorityDue)) {
				t.Errorf("want the next pass after %v at PriorityDue, got %+v", tc.want, res)
			}
		})
	}
}
