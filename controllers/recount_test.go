package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// delays records AddAfter's durations by name.
type delays struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	got map[string]time.Duration
}

func (d *delays) AddAfter(r reconcile.Request, after time.Duration) { d.got[r.Name] = after }

// TestRecountDelayFollowsSupplied: a partner's change reaches its contract
// after a delay that grows with the partners the contract counted last
// (so the re-counts of a long mass expiry stay linear), and a deleted
// contract is forgotten.
func TestRecountDelayFollowsSupplied(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	objs := []client.Object{&v1.DistributorContract{ObjectMeta: metav1.ObjectMeta{Name: "big", Generation: 1}, Spec: v1.DistributorContractSpec{
		Distributor: "Bytec", Region: "DE", StartsAt: metav1.NewTime(now.Add(-time.Hour)),
		Entitlements: []v1.TierEntitlement{{Tier: v1.TierReady, Subscriptions: 3, MaxNamespaces: 1}},
	}}}
	for i := range 2500 {
		p := partner()
		p.Name, p.Spec.Contracts, p.Status.Contract = fmt.Sprintf("p%04d", i), []string{"big"}, "big"
		objs = append(objs, p)
	}
	c := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(objs...).
		WithStatusSubresource(&v1.DistributorContract{}, &v1.Partner{}).
		WithIndex(&v1.Partner{}, IndexPartnerSupplier, func(o client.Object) []string { return nonEmpty(o.(*v1.Partner).Status.Contract) }).
		Build()
	r := &ContractReconciler{Client: c, APIReader: c, Clock: clocktesting.NewFakeClock(now), Recorder: &nopRecorder{}}
	reconcileContract := func() {
		t.Helper()
		if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: "big"}}); err != nil {
			t.Fatal(err)
		}
	}
	q := &delays{got: map[string]time.Duration{}}
	moved := func() {
		t.Helper()
		old, n := partner(), partner()
		old.Status.Contract, n.Status.Contract = "big", "other"
		supplierChanges(r.recountDelay).Update(context.Background(), event.UpdateEvent{ObjectOld: old, ObjectNew: n}, q)
	}

	// The clock is on a whole second, a boundary: each delay ends half a
	// second past one (entitlement.OffBoundary).
	first := ContractStatusCoalesce + time.Second/2
	moved()
	if q.got["big"] != first || q.got["other"] != first {
		t.Errorf("before any count: want %s for both contracts, got %v", first, q.got)
	}
	reconcileContract()
	moved()
	if want := 3*ContractStatusCoalesce + time.Second/2; q.got["big"] != want {
		t.Errorf("after counting 2500 partners: want %s, got %s", want, q.got["big"])
	}
	if q.got["other"] != first {
		t.Errorf("a contract never counted: want %s, got %s", first, q.got["other"])
	}

	if err := c.Delete(context.Background(), objs[0]); err != nil {
		t.Fatal(err)
	}
	reconcileContract()
	moved()
	if q.got["big"] != first {
		t.Errorf("after the contract is deleted: want %s, got %s", first, q.got["big"])
	}
}
