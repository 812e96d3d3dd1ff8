package controllers

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
// (no loop), sends nothing else (it plans the same writes: the first pass's
// outcome is reused) and holds the Revoked event for the deferred pass; the
// third emits it.
func TestRevocationPasses(t *testing.T) {
	r, applied, c, rec := revocationDue(t)
	reconcile := passes(t, r, c)

	res, got := reconcile()
	if !applied.has("delete RoleBinding/a") || !applied.has("apply ResourceQuota/a") {
		t.Errorf("first pass: want the RoleBinding deleted and the quota written, got %v", applied.seen)
	}
	if got.Status.Phase != v1.PartnerEntitled || priority(res) != PriorityStatus {
		t.Errorf("first pass: want the status left for a pass at priority %d, got phase %s, result %+v (priority %d)", PriorityStatus, got.Status.Phase, res, priority(res))
	}

	accessWrites := len(applied.list())
	res, got = reconcile()
	if got.Status.Phase != v1.PartnerRevoked {
		t.Errorf("second pass: want the status Revoked (even with the old quota still cached), got %s", got.Status.Phase)
	}
	if again := applied.list()[accessWrites:]; len(again) != 0 {
		t.Errorf("second pass: same plan at the same resourceVersion, want the first pass's writes reused, not sent again; got %v", again)
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

// TestStatusPassPlansChangedWrites: the contract is extended between the
// access pass and the status pass. The status pass's plan writes other
// children (the binding back), so it applies them instead of reusing the
// access pass's outcome, and the status says Entitled.
func TestStatusPassPlansChangedWrites(t *testing.T) {
	r, applied, c, _ := revocationDue(t)
	reconcile := passes(t, r, c)

	if res, _ := reconcile(); priority(res) != PriorityStatus {
		t.Fatalf("first pass: want the status left for a pass at priority %d, got %+v", PriorityStatus, res)
	}
	contract := &v1.DistributorContract{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "c"}, contract); err != nil {
		t.Fatal(err)
	}
	contract.Spec.EndsAt = &metav1.Time{Time: contract.Spec.StartsAt.Add(48 * time.Hour)}
	if err := c.Update(context.Background(), contract); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "entitlements-partner-ready",
		Labels: map[string]string{v1.LabelBindable: "true"}}}
	if err := c.Create(context.Background(), role); err != nil {
		t.Fatal(err)
	}
	accessWrites := len(applied.list())

	_, got := reconcile()
	if again := applied.list()[accessWrites:]; !slices.Contains(again, "apply RoleBinding/a") {
		t.Errorf("second pass: the plan binds again, want the binding applied, got %v", again)
	}
	if got.Status.Phase != v1.PartnerEntitled {
		t.Errorf("second pass: want Entitled on the extended contract, got %s", got.Status.Phase)
	}
}

// revocationDue is partner "acme", Entitled through contract "c" with its
// namespace, quota and binding in place, after c's end: a revocation due.
func revocationDue(t *testing.T) (*PartnerReconciler, *recordedApplies, client.Client, *reasons) {
	t.Helper()
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
	return r, applied, c, rec
}

// passes returns a function that reconciles the partner "acme" once and
// returns the result and the partner as stored after it.
func passes(t *testing.T, r *PartnerReconciler, c client.Client) func() (ctrl.Result, *v1.Partner) {
	return func() (ctrl.Result, *v1.Partner) {
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
}

func priority(res ctrl.Result) int {
	if res.Priority == nil {
		return 0
	}
	return *res.Priority
}

// TestFailoverPasses: a failover to a contract with the same role and
// limits keeps the binding, and still leaves its status for the pass at
// PriorityStatus (whether the pass wrote access or not: here the fake
// client, which records no managedFields, re-applies the quota; the rule
// itself is TestStatusAfterAccess's): at an instant when many partners change, its status
// (a Partner write) must not go ahead of other partners' RoleBinding
// deletions. The second pass writes it, the third emits FailedOver.
func TestFailoverPasses(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ended := metav1.NewTime(now.Add(-time.Second))
	contract := func(name string, ends *metav1.Time) *v1.DistributorContract {
		return &v1.DistributorContract{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.DistributorContractSpec{
			Distributor: "Bytec", Region: "DE", StartsAt: metav1.NewTime(now.Add(-time.Hour)), EndsAt: ends,
			Entitlements: []v1.TierEntitlement{{Tier: v1.TierReady, Subscriptions: 3, MaxNamespaces: 1}},
		}}
	}
	p := partner("a")
	p.Spec.Contracts = []string{"c", "d"}
	p.Status = v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "c", EntitledUntil: &ended, ObservedGeneration: 1,
		Namespaces: []v1.NamespaceStatus{{Name: "a", State: v1.NamespaceGranted, UID: "ns-uid", SubscriptionsHard: 3}}}
	q := ourQuota("a") // counted by kube-controller-manager
	q.Status = corev1.ResourceQuotaStatus{
		Hard: corev1.ResourceList{v1.SubscriptionQuotaResource: resource.MustParse("3")},
		Used: corev1.ResourceList{v1.SubscriptionQuotaResource: resource.MustParse("0")},
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "entitlements-partner-ready",
		Labels: map[string]string{v1.LabelBindable: "true"}}}
	r, applied, c := reconcilerWith(t, faults{}, p, contract("c", &ended), contract("d", nil), role, managedNamespace("a"), q, ourBinding("a"))
	rec := &reasons{}
	r.Recorder = rec
	reconcile := passes(t, r, c)

	res, got := reconcile()
	if applied.has("delete RoleBinding/a") {
		t.Errorf("first pass: a failover to the same role must keep the binding, got %v", applied.seen)
	}
	if got.Status.Contract != "c" || priority(res) != PriorityStatus {
		t.Errorf("first pass: want the status left for a pass at priority %d, got contract %q, result %+v (priority %d)", PriorityStatus, got.Status.Contract, res, priority(res))
	}

	res, got = reconcile()
	if got.Status.Phase != v1.PartnerEntitled || got.Status.Contract != "d" {
		t.Errorf("second pass: want Entitled on d, got %s on %q", got.Status.Phase, got.Status.Contract)
	}
	if priority(res) != PriorityDeferred || len(rec.list()) != 0 {
		t.Errorf("second pass: want the events held for a pass at priority %d, got result %+v (priority %d), events %v", PriorityDeferred, res, priority(res), rec.list())
	}

	_, _ = reconcile()
	if evs := rec.list(); !slices.Contains(evs, v1.EventFailedOver) {
		t.Errorf("third pass: want the held FailedOver event emitted, got %v", evs)
	}
}

// staleGets serves a fixed copy of one Partner, as a cache that has not
// yet seen the operator's last status write does.
type staleGets struct {
	client.Client
	copy *v1.Partner
}

func (s staleGets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if p, ok := obj.(*v1.Partner); ok && key.Name == s.copy.Name {
		s.copy.DeepCopyInto(p)
		return nil
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

// TestStaleCopyAfterOwnWrite: a pass on a cached copy older than the
// operator's own status write (sent by a quota recount before the cache
// caught up) does nothing and looks again after CacheCatchUp; it used to
// defer the status again and then meet a 409 writing it from that copy.
func TestStaleCopyAfterOwnWrite(t *testing.T) {
	r, _, c, rec := revocationDue(t)
	reconcile := passes(t, r, c)

	_, before := reconcile() // access
	res, written := reconcile()
	if written.Status.Phase != v1.PartnerRevoked || written.ResourceVersion == before.ResourceVersion {
		t.Fatalf("second pass: want the Revoked status written, got phase %s (resourceVersion %s, before %s), result %+v",
			written.Status.Phase, written.ResourceVersion, before.ResourceVersion, res)
	}

	r.Client = staleGets{Client: c, copy: before}
	res, got := reconcile()
	if res.RequeueAfter != CacheCatchUp || res.Priority != nil {
		t.Errorf("pass on the copy the status write replaced: want a look again after %s, got %+v", CacheCatchUp, res)
	}
	if got.ResourceVersion != written.ResourceVersion || len(rec.list()) != 0 {
		t.Errorf("pass on the stale copy: want no write and no event, got resourceVersion %s (was %s), events %v",
			got.ResourceVersion, written.ResourceVersion, rec.list())
	}

	r.Client = c
	if res, _ = reconcile(); res.RequeueAfter == CacheCatchUp {
		t.Errorf("once the cache shows the write: want the pass done, got another look again (%+v)", res)
	}
	if evs := rec.list(); !slices.Contains(evs, v1.EventRevoked) {
		t.Errorf("once the cache shows the write: want the held Revoked event, got %v", evs)
	}
}
