package controllers

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
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

// TestRevocationPass: a contract that has ended under an Entitled
// partner, the revocation not announced (an edit). One pass revokes: the
// RoleBinding goes and the quota is lowered, the status says Revoked and
// the Revoked event is emitted; the namespace's view, which guards no
// access, follows in the next pass (PartnerPlan.ViewLater), and then
// nothing is left to do.
func TestRevocationPass(t *testing.T) {
	r, applied, c, rec := revocationDue(t)
	reconcile := passes(t, r, c)

	res, got := reconcile()
	calls := applied.list()
	if want := []string{"delete RoleBinding/a", "apply ResourceQuota/a"}; !inOrder(calls, want) || slices.Contains(calls, "patch Namespace/a") {
		t.Errorf("want %v in that order and no view yet, got %v", want, calls)
	}
	if got.Status.Phase != v1.PartnerRevoked {
		t.Errorf("want the status Revoked, got %s", got.Status.Phase)
	}
	if evs := rec.list(); !slices.Contains(evs, v1.EventRevoked) {
		t.Errorf("want the Revoked event in the same pass, got %v", evs)
	}
	if res.RequeueAfter != entitlement.AccessFollowUp || priority(res) != 0 {
		t.Errorf("want the view's pass at once at the default priority, got %+v", res)
	}

	before := len(applied.list())
	_, again := reconcile()
	if more := applied.list()[before:]; !slices.Contains(more, "patch Namespace/a") || slices.Contains(more, "delete RoleBinding/a") {
		t.Errorf("the next pass: want the view written, nothing taken away again; got %v", more)
	}
	if again.ResourceVersion != got.ResourceVersion {
		t.Errorf("the next pass: want no status write, got resourceVersion %s (was %s)", again.ResourceVersion, got.ResourceVersion)
	}
	ns := &corev1.Namespace{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "a"}, ns); err != nil {
		t.Fatal(err)
	}
	if got := ns.Annotations[v1.AnnotationPrefix+"phase"]; got != string(v1.PartnerRevoked) {
		t.Errorf("namespace view: want phase Revoked, got %q", got)
	}
	if _, has := ns.Annotations[v1.AnnotationPrefix+"contract"]; has {
		t.Errorf("namespace view: a revoked namespace names no contract, got %v", ns.Annotations)
	}
}

// TestScheduledRevocationTakesAccessFirst: the revocation the status
// announced for a contract's end takes the RoleBinding and the quota away
// in a pass of its own, writing nothing else, and comes back at once at
// PriorityTransition; that pass, finding the access gone, writes the
// status and emits Revoked; the view follows.
func TestScheduledRevocationTakesAccessFirst(t *testing.T) {
	r, applied, c, rec := revocationDue(t)
	p := &v1.Partner{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "acme"}, p); err != nil {
		t.Fatal(err)
	}
	p.Status.Next = &v1.NextChange{At: *p.Status.EntitledUntil, Outcome: v1.NextRevoke}
	if err := c.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	reconcile := passes(t, r, c)

	res, got := reconcile()
	if calls := applied.list(); !inOrder(calls, []string{"delete RoleBinding/a", "apply ResourceQuota/a"}) || slices.Contains(calls, "patch Namespace/a") {
		t.Errorf("access-only pass: want the binding deleted and the quota written, nothing else; got %v", calls)
	}
	if got.Status.Phase != v1.PartnerEntitled || len(rec.list()) != 0 {
		t.Errorf("access-only pass: want no status and no event yet, got phase %s, events %v", got.Status.Phase, rec.list())
	}
	if priority(res) != entitlement.PriorityTransition || res.RequeueAfter != entitlement.AccessFollowUp {
		t.Errorf("access-only pass: want the next pass at once at PriorityTransition, got %+v", res)
	}
	// The fake client's applies record calls without storing them: the
	// quota the follow-up pass observes is what the access pass wrote.
	q := &corev1.ResourceQuota{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "a", Name: v1.ResourceQuotaName}, q); err != nil {
		t.Fatal(err)
	}
	q.Spec.Hard[v1.SubscriptionQuotaResource] = resource.MustParse("0")
	if err := c.Update(context.Background(), q); err != nil {
		t.Fatal(err)
	}

	_, got = reconcile()
	if got.Status.Phase != v1.PartnerRevoked || !slices.Contains(rec.list(), v1.EventRevoked) {
		t.Errorf("follow-up pass: want the status Revoked and the event; got phase %s, events %v, calls %v", got.Status.Phase, rec.list(), applied.list())
	}
	_, _ = reconcile()
	if !slices.Contains(applied.list(), "patch Namespace/a") {
		t.Errorf("the pass after: want the view written, got calls %v", applied.list())
	}
}

// TestExtendedBeforeThePass: the contract is extended before the pass
// that would have revoked: the pass binds again and the status stays
// Entitled.
func TestExtendedBeforeThePass(t *testing.T) {
	r, applied, c, _ := revocationDue(t)
	reconcile := passes(t, r, c)
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
	q := &corev1.ResourceQuota{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "a", Name: v1.ResourceQuotaName}, q); err != nil {
		t.Fatal(err)
	}
	q.Status = corev1.ResourceQuotaStatus{ // counted by kube-controller-manager
		Hard: corev1.ResourceList{v1.SubscriptionQuotaResource: resource.MustParse("3")},
		Used: corev1.ResourceList{v1.SubscriptionQuotaResource: resource.MustParse("0")},
	}
	if err := c.Update(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	res, got := reconcile()
	if calls := applied.list(); !slices.Contains(calls, "apply RoleBinding/a") || slices.Contains(calls, "delete RoleBinding/a") {
		t.Errorf("want the binding kept and applied, got %v", calls)
	}
	if got.Status.Phase != v1.PartnerEntitled {
		t.Errorf("want Entitled on the extended contract, got %s", got.Status.Phase)
	}
	if priority(res) != entitlement.PriorityDue || res.RequeueAfter <= 0 {
		t.Errorf("want the next pass at the contract's next boundary, at PriorityDue; got %+v", res)
	}
}

// inOrder reports whether want appear in calls in that order.
func inOrder(calls, want []string) bool {
	at := 0
	for _, c := range calls {
		if at < len(want) && c == want[at] {
			at++
		}
	}
	return at == len(want)
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

// TestFailoverPass: a failover to a contract with the same role and
// limits keeps the binding; in one pass the namespace's view names the new
// contract, the status says Entitled on it, and FailedOver is emitted.
func TestFailoverPass(t *testing.T) {
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
	ns := managedNamespace("a")
	ns.Annotations = map[string]string{v1.AnnotationPrefix + "phase": "Entitled", v1.AnnotationPrefix + "contract": "c", v1.AnnotationSuccessor: "d"}
	r, applied, c := reconcilerWith(t, faults{}, p, contract("c", &ended), contract("d", nil), role, ns, q, ourBinding("a"))
	rec := &reasons{}
	r.Recorder = rec
	reconcile := passes(t, r, c)

	_, got := reconcile()
	if calls := applied.list(); slices.Contains(calls, "delete RoleBinding/a") || !slices.Contains(calls, "patch Namespace/a") {
		t.Errorf("a failover to the same role keeps the binding and writes the view; got %v", calls)
	}
	if got.Status.Phase != v1.PartnerEntitled || got.Status.Contract != "d" {
		t.Errorf("want Entitled on d, got %s on %q", got.Status.Phase, got.Status.Contract)
	}
	if evs := rec.list(); !slices.Contains(evs, v1.EventFailedOver) {
		t.Errorf("want FailedOver in the same pass, got %v", evs)
	}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "a"}, ns); err != nil {
		t.Fatal(err)
	}
	if ns.Annotations[v1.AnnotationPrefix+"contract"] != "d" || ns.Annotations[v1.AnnotationSuccessor] != "" {
		t.Errorf("namespace view: want contract d and no successor (d is open-ended), got %v", ns.Annotations)
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
// operator's own status write fails at its status write (the
// resourceVersion lock) and announces nothing: no event a second time; the
// error sends it back through the workqueue's backoff, by when the cache
// has the newer copy.
func TestStaleCopyAfterOwnWrite(t *testing.T) {
	r, _, c, rec := revocationDue(t)
	reconcile := passes(t, r, c)

	before := &v1.Partner{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "acme"}, before); err != nil {
		t.Fatal(err)
	}
	_, written := reconcile()
	if written.Status.Phase != v1.PartnerRevoked {
		t.Fatalf("want the Revoked status written, got %s", written.Status.Phase)
	}
	events := len(rec.list())

	// The stale copy still says Entitled: its pass decides the revocation
	// again, and its status write must fail.
	r.Client = staleGets{Client: c, copy: before}
	_, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "acme"}})
	if !apierrors.IsConflict(err) {
		t.Errorf("pass on the stale copy: want a conflict returned, got %v", err)
	}
	if evs := rec.list()[events:]; len(evs) != 0 {
		t.Errorf("pass on the stale copy: want no event announced again, got %v", evs)
	}
}
