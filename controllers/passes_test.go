package controllers

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// reasons records the reasons of the events it is given.
type reasons struct {
	mu  sync.Mutex
	got []string
}

func (r *reasons) Eventf(_ runtime.Object, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, reason)
}

func (r *reasons) AnnotatedEventf(o runtime.Object, rel runtime.Object, _ map[string]string, typ, reason, action, note string, args ...any) {
	r.Eventf(o, rel, typ, reason, action, note, args...)
}

func (r *reasons) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// TestRevocationPasses: a contract that has ended under an Entitled
// partner. The first pass takes the access away (RoleBinding deleted,
// quota written) and leaves the status for a pass at PriorityStatus; the
// second writes the status even though its cache still shows the old quota
// (no loop) and holds the Revoked event for the deferred pass; the third
// emits it.
func TestRevocationPasses(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ended := metav1.NewTime(now.Add(-time.Second))
	contract := &v1.DistributorContract{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1.DistributorContractSpec{
		Distributor: "Bytec", Region: "DE", StartsAt: metav1.NewTime(now.Add(-time.Hour)), EndsAt: &ended,
		Entitlements: []v1.TierEntitlement{{Tier: v1.TierReady, Subscriptions: 3, MaxNamespaces: 1}},
	}}
	p := partner("a")
	p.Status = v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "c", EntitledUntil: &ended, ObservedGeneration: 1,
		Namespaces: []v1.NamespaceStatus{{Name: "a", State: v1.NamespaceGranted, UID: "ns-uid", SubscriptionsHard: 3}}}
	r, applied, c := reconcilerWith(t, faults{}, p, contract, managedNamespace("a"), ourQuota("a"), ourBinding("a"))
	rec := &reasons{}
	r.Recorder = rec
	reconcile := func() (ctrl.Result, *v1.Partner) {
		t.Helper()
		res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "acme"}})
		if err != nil {
			t.Fatal(err)
		}
		got := &v1.Partner{}
		if err := c.Get(context.Background(), client.ObjectKey{Name: "acme"}, got); err != nil {
			t.Fatal(err)
		}
		return res, got
	}
	priority := func(res ctrl.Result) int {
		if res.Priority == nil {
			return 0
		}
		return *res.Priority
	}

	res, got := reconcile()
	if !applied.has("delete RoleBinding/a") || !applied.has("apply ResourceQuota/a") {
		t.Errorf("first pass: want the RoleBinding deleted and the quota written, got %v", applied.seen)
	}
	if got.Status.Phase != v1.PartnerEntitled || priority(res) != PriorityStatus {
		t.Errorf("first pass: want the status left for a pass at priority %d, got phase %s, result %+v (priority %d)", PriorityStatus, got.Status.Phase, res, priority(res))
	}

	res, got = reconcile()
	if got.Status.Phase != v1.PartnerRevoked {
		t.Errorf("second pass: want the status Revoked (even with the old quota still cached), got %s", got.Status.Phase)
	}
	if priority(res) != PriorityDeferred || len(rec.list()) != 0 {
		t.Errorf("second pass: want the events held for a pass at priority %d, got result %+v (priority %d), events %v", PriorityDeferred, res, priority(res), rec.list())
	}

	res, _ = reconcile()
	if evs := rec.list(); !slices.Contains(evs, v1.EventRevoked) {
		t.Errorf("third pass: want the held Revoked event emitted, got %v", evs)
	}
	if priority(res) == PriorityDeferred || priority(res) == PriorityStatus {
		t.Errorf("third pass: nothing is left to defer, got result %+v (priority %d)", res, priority(res))
	}
}
