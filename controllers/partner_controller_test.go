package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var longAgo = time.Now().Add(-24 * time.Hour)

func openContract(name string, ents ...v1.TierEntitlement) *v1.DistributorContract {
	return testenv.Contract(name, "Magirus", "DE", longAgo, time.Time{}, 0, 0, ents...)
}

func newSubscription(ns, name string) *v1.Subscription {
	return &v1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.SubscriptionSpec{Product: "Directory Server", Customer: "Example AG"},
	}
}

// createSubscription retries until the quota admits it (the quota status
// and the operator's rebalance are asynchronous).
func createSubscription(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, 15*time.Second, "creating Subscription "+ns+"/"+name, func() error {
		return k8s.Create(context.Background(), newSubscription(ns, name))
	})
}

func refusedOverQuota(t *testing.T, ns, name string) {
	t.Helper()
	err := k8s.Create(ctx(t), newSubscription(ns, name))
	if err == nil {
		t.Fatalf("Subscription %s/%s was admitted; want it refused for exceeding quota", ns, name)
	}
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("Subscription %s/%s: want a Forbidden exceeded-quota error, got %v", ns, name, err)
	}
}

// refusedRevoked asserts that the API server refuses a new Subscription in
// a namespace of a revoked partner, saying so (the products policy fails
// closed on the view; the quota, hard 0, is the second line).
func refusedRevoked(t *testing.T, ns, name string) {
	t.Helper()
	err := k8s.Create(ctx(t), newSubscription(ns, name))
	if err == nil {
		t.Fatalf("Subscription %s/%s was admitted; want it refused, the partner is revoked", ns, name)
	}
	// Either policy may answer: the contract-end one from the contract's
	// status at the instant, the products one once the namespace's view
	// says Revoked.
	if msg := err.Error(); !(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)) ||
		!strings.Contains(msg, "no new Subscriptions") || !strings.Contains(strings.ToLower(msg), "revoked") {
		t.Fatalf("Subscription %s/%s: want a refusal saying the partner is revoked, got %v", ns, name, err)
	}
}

func quotaHard(ns string) (int64, error) {
	q := &corev1.ResourceQuota{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: v1.ResourceQuotaName}, q); err != nil {
		return 0, err
	}
	h, ok := q.Spec.Hard[v1.SubscriptionQuotaResource]
	if !ok {
		return 0, fmt.Errorf("quota in %s has no %s", ns, v1.SubscriptionQuotaResource)
	}
	return h.Value(), nil
}

// quotaSettled: spec hard, status hard and status used agree with want.
func quotaSettled(ns string, wantHard int64) func() error {
	return func() error {
		q := &corev1.ResourceQuota{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: v1.ResourceQuotaName}, q); err != nil {
			return err
		}
		h, sh := q.Spec.Hard[v1.SubscriptionQuotaResource], q.Status.Hard[v1.SubscriptionQuotaResource]
		if h.Value() != wantHard || sh.Value() != wantHard {
			u := q.Status.Used[v1.SubscriptionQuotaResource]
			return fmt.Errorf("quota %s: spec hard %s status hard %s (used %s), want %d", ns, h.String(), sh.String(), u.String(), wantHard)
		}
		return nil
	}
}

func TestGrantCreatesExactlyTheExpectedObjects(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	ent := testenv.Tier(v1.TierAdvanced, 5, 2)
	ent.NamespaceQuota = corev1.ResourceList{"requests.cpu": resource.MustParse("4")}
	c := openContract("grant-c", ent)
	p := testenv.Partner("grant-p", v1.TierAdvanced, "DE", []string{"grant-c"}, "grant-a", "grant-b", "grant-over")
	p.Spec.Access = append(p.Spec.Access,
		v1.Subject{Kind: v1.SubjectUser, Name: "jane@acme.example"},
		v1.Subject{Kind: v1.SubjectServiceAccount, Name: "ci", Namespace: "grant-a"})
	create(t, c, p)
	eventually(t, 15*time.Second, "Entitled", partnerPhase(t, p.Name, v1.PartnerEntitled, c.Name))
	eventually(t, 15*time.Second, "Ready", partnerReady(p.Name))

	got := getPartner(t, p.Name)
	for _, n := range got.Status.Namespaces {
		if n.Name != "grant-over" && n.UID == "" {
			t.Errorf("namespace %s: want its UID recorded in status, got none", n.Name)
		}
	}
	for _, n := range []string{"grant-a", "grant-b"} {
		ns, err := getNamespace(n)
		if err != nil {
			t.Fatalf("namespace %s: %v", n, err)
		}
		wantLabels := map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: p.Name, v1.LabelState: "Granted"}
		for k, v := range wantLabels {
			if ns.Labels[k] != v {
				t.Errorf("namespace %s label %s=%q, want %q", n, k, ns.Labels[k], v)
			}
		}
		if len(ns.OwnerReferences) != 0 {
			t.Errorf("namespace %s has owner references %v; namespaces must never have any", n, ns.OwnerReferences)
		}
		if ns.Annotations[v1.AnnotationCreatedBy] != p.Name {
			t.Errorf("namespace %s lacks the created-by annotation", n)
		}

		rb := &rbacv1.RoleBinding{}
		if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: n, Name: v1.RoleBindingName}, rb); err != nil {
			t.Fatalf("RoleBinding in %s: %v", n, err)
		}
		if rb.RoleRef.Kind != "ClusterRole" || rb.RoleRef.Name != "entitlements-partner-advanced" {
			t.Errorf("RoleBinding %s roleRef %+v", n, rb.RoleRef)
		}
		wantSubjects := []rbacv1.Subject{
			{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "grant-p-admins"},
			{Kind: "User", APIGroup: rbacv1.GroupName, Name: "jane@acme.example"},
			{Kind: "ServiceAccount", Name: "ci", Namespace: "grant-a"},
		}
		if fmt.Sprint(rb.Subjects) != fmt.Sprint(wantSubjects) {
			t.Errorf("RoleBinding %s subjects %v, want %v", n, rb.Subjects, wantSubjects)
		}
		checkChild(t, rb, got)

		q := &corev1.ResourceQuota{}
		if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: n, Name: v1.ResourceQuotaName}, q); err != nil {
			t.Fatalf("ResourceQuota in %s: %v", n, err)
		}
		if h := q.Spec.Hard[v1.SubscriptionQuotaResource]; h.Value() != 5 {
			t.Errorf("quota %s subscriptions hard %s, want 5", n, h.String())
		}
		if h := q.Spec.Hard["requests.cpu"]; h.String() != "4" {
			t.Errorf("quota %s requests.cpu %s, want 4", n, h.String())
		}
		checkChild(t, q, got)
	}
	if _, err := getNamespace("grant-over"); !apierrors.IsNotFound(err) {
		t.Errorf("namespace beyond maxNamespaces: want not created, got %v", err)
	}
	states := map[string]v1.NamespaceState{}
	for _, n := range got.Status.Namespaces {
		states[n.Name] = n.State
	}
	if states["grant-a"] != v1.NamespaceGranted || states["grant-b"] != v1.NamespaceGranted || states["grant-over"] != v1.NamespaceOverLimit {
		t.Errorf("namespace states %v", states)
	}
	rbs := &rbacv1.RoleBindingList{}
	if err := k8s.List(ctx(t), rbs, client.MatchingLabels{v1.LabelPartner: p.Name}); err != nil || len(rbs.Items) != 2 {
		t.Errorf("RoleBindings of the partner: %d (err %v), want exactly 2", len(rbs.Items), err)
	}
	qs := &corev1.ResourceQuotaList{}
	if err := k8s.List(ctx(t), qs, client.MatchingLabels{v1.LabelPartner: p.Name}); err != nil || len(qs.Items) != 2 {
		t.Errorf("ResourceQuotas of the partner: %d (err %v), want exactly 2", len(qs.Items), err)
	}
	for _, ct := range []string{v1.ConditionReady, v1.ConditionEntitled} {
		if cond := condition(got.Status.Conditions, ct); cond == nil || cond.Status != metav1.ConditionTrue {
			t.Errorf("condition %s = %+v, want True", ct, cond)
		}
	}
	if got.Status.Subscriptions.Hard != 5 || got.Status.Subscriptions.Summary != "0/5" {
		t.Errorf("status.subscriptions %+v, want 0/5", got.Status.Subscriptions)
	}
	if !hasFinalizer(got) {
		t.Errorf("finalizer %s missing", v1.Finalizer)
	}
	eventually(t, 5*time.Second, "Granted event", hasEvent("Partner", p.Name, v1.EventGranted))
	// Reconciles of stale cached copies (triggered by the children just
	// created) must not announce the grant again.
	consistently(t, 2*time.Second, "one Granted event", emittedOnce("Partner", p.Name, v1.EventGranted))
}

func hasFinalizer(p *v1.Partner) bool {
	for _, f := range p.Finalizers {
		if f == v1.Finalizer {
			return true
		}
	}
	return false
}

func checkChild(t *testing.T, o client.Object, p *v1.Partner) {
	t.Helper()
	if o.GetLabels()[v1.LabelManagedBy] != v1.ManagedByValue || o.GetLabels()[v1.LabelPartner] != p.Name {
		t.Errorf("%T %s/%s labels %v", o, o.GetNamespace(), o.GetName(), o.GetLabels())
	}
	refs := o.GetOwnerReferences()
	if len(refs) != 1 || refs[0].UID != p.UID || refs[0].Kind != "Partner" || refs[0].Controller == nil || !*refs[0].Controller {
		t.Errorf("%T %s/%s owner references %+v, want the Partner as controller", o, o.GetNamespace(), o.GetName(), refs)
	}
}

func TestFailoverAtTheInstant(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	// Open-ended until the grant is seen, then ending seconds ahead: the
	// windows below do not depend on how fast the start was.
	grace := time.Second
	first := testenv.Contract("fo-bytec", "Bytec", "DE", longAgo, time.Time{}, time.Hour, grace, testenv.Tier(v1.TierReady, 3, 1))
	secondEnt := testenv.Tier(v1.TierReady, 7, 1)
	secondEnt.ClusterRole = "entitlements-partner-premier" // another role: the binding must be replaced
	second := openContract("fo-magirus", secondEnt)
	p := testenv.Partner("fo-p", v1.TierReady, "DE", []string{first.Name, second.Name}, "fo-ns")
	create(t, first, second, p)
	eventually(t, 10*time.Second, "Entitled by first", partnerPhase(t, p.Name, v1.PartnerEntitled, first.Name))
	ends := time.Now().Truncate(time.Second).Add(6 * time.Second)
	setEndsAt(t, first.Name, ends) // within the hour's notice: Expiring at once
	eventually(t, 6*time.Second, "ContractExpiring", func() error {
		got := getPartner(t, p.Name)
		c := condition(got.Status.Conditions, v1.ConditionContractExpiring)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "fail over to fo-magirus") {
			return fmt.Errorf("ContractExpiring %+v", c)
		}
		// The forecast: what the operator then does, and when.
		if n := got.Status.Next; n == nil || n.Outcome != v1.NextFailOver || n.Contract != second.Name || !n.At.Time.Equal(ends.Add(grace)) {
			return fmt.Errorf("status.next %+v, want FailOver to %s at %v", n, second.Name, ends.Add(grace))
		}
		return nil
	})

	eventually(t, 6*time.Second, "the contract's forecast", func() error {
		c := &v1.DistributorContract{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Name: first.Name}, c); err != nil {
			return err
		}
		f := c.Status.Forecast
		if f == nil || f.FailOver != 1 || f.Revoke != 0 || len(f.Partners) != 1 || f.Partners[0].Contract != second.Name || !f.At.Time.Equal(ends.Add(grace)) {
			return fmt.Errorf("forecast %+v, want %s failing over to %s at %v", f, p.Name, second.Name, ends.Add(grace))
		}
		return nil
	})

	due := ends.Add(grace)
	var movedAt time.Time
	eventually(t, 15*time.Second, "failed over", func() error {
		if err := partnerPhase(t, p.Name, v1.PartnerEntitled, second.Name)(); err != nil {
			return err
		}
		movedAt = time.Now()
		return nil
	})
	lag := movedAt.Sub(due)
	t.Logf("failover due %s observed %s lag %v", due.Format("15:04:05.000"), movedAt.Format("15:04:05.000"), lag.Round(time.Millisecond))
	if lag < 0 || lag > time.Second {
		t.Errorf("failover lag %v, want within [0, 1s]", lag)
	}
	eventually(t, 10*time.Second, "binding to the new role and quota", func() error {
		rb := &rbacv1.RoleBinding{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: "fo-ns", Name: v1.RoleBindingName}, rb); err != nil {
			return err
		}
		if rb.RoleRef.Name != "entitlements-partner-premier" {
			return fmt.Errorf("roleRef %s", rb.RoleRef.Name)
		}
		return quotaSettled("fo-ns", 7)()
	})
	eventually(t, 5*time.Second, "FailedOver event", hasEvent("Partner", p.Name, v1.EventFailedOver))
	// The record: written with the change, newest first, once.
	got := getPartner(t, p.Name)
	if h := got.Status.History; len(h) != 2 || h[0].Outcome != v1.HistoryFailedOver || h[0].Contract != second.Name ||
		h[0].PreviousContract != first.Name || h[1].Outcome != v1.HistoryGranted || h[0].Time.Time.Before(due) {
		t.Errorf("status.history %+v, want FailedOver %s→%s (not before %v), then Granted", h, first.Name, second.Name, due)
	}
	if got.Status.Next != nil {
		t.Errorf("status.next %+v, want none (open-ended supply)", *got.Status.Next)
	}
}

func TestRevokeKeepsData(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	// Open-ended until the data is in place, then ending seconds ahead.
	c := testenv.Contract("rv-c", "Bytec", "DE", longAgo, time.Time{}, 0, 0, testenv.Tier(v1.TierPremier, 5, 1))
	p := testenv.Partner("rv-p", v1.TierPremier, "DE", []string{c.Name}, "rv-ns")
	create(t, c, p)
	eventually(t, 10*time.Second, "Entitled", partnerPhase(t, p.Name, v1.PartnerEntitled, c.Name))
	createSubscription(t, "rv-ns", "sub-1")
	createSubscription(t, "rv-ns", "sub-2")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "rv-ns", Name: "customer-data"}, Data: map[string]string{"k": "v"}}
	create(t, cm)
	setEndsAt(t, c.Name, time.Now().Truncate(time.Second).Add(2*time.Second))

	eventually(t, 15*time.Second, "Revoked", partnerPhase(t, p.Name, v1.PartnerRevoked, ""))
	eventually(t, 10*time.Second, "RoleBinding gone", notFound(&rbacv1.RoleBinding{}, "rv-ns", v1.RoleBindingName))
	eventually(t, 10*time.Second, "quota hard 0", quotaSettled("rv-ns", 0))
	refusedRevoked(t, "rv-ns", "sub-3")
	for _, n := range []string{"sub-1", "sub-2"} {
		if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: "rv-ns", Name: n}, &v1.Subscription{}); err != nil {
			t.Errorf("Subscription %s after revocation: %v", n, err)
		}
	}
	got := &corev1.ConfigMap{}
	if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(cm), got); err != nil || got.Data["k"] != "v" {
		t.Errorf("ConfigMap after revocation: %v %v", got.Data, err)
	}
	eventually(t, 15*time.Second, "namespace kept, labelled Revoked", func() error {
		ns, err := getNamespace("rv-ns")
		if err != nil || !ns.DeletionTimestamp.IsZero() || ns.Labels[v1.LabelState] != "Revoked" {
			return fmt.Errorf("namespace after revocation: %v, labels %v", err, ns.Labels)
		}
		return nil
	})
	eventually(t, 5*time.Second, "Revoked event", hasEvent("Partner", p.Name, v1.EventRevoked))

	// Re-grant: a contract that starts later is added; the partner stays
	// Revoked (it was entitled: Pending is for one never granted) and its
	// status.next announces the grant. Then the start is moved to two
	// seconds ahead.
	next := testenv.Contract("rv-next", "LXPN", "DE", time.Now().Add(time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierPremier, 4, 1))
	create(t, next)
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Contracts = append(p.Spec.Contracts, next.Name) })
	eventually(t, 10*time.Second, "Revoked, the grant announced", func() error {
		got := getPartner(t, p.Name)
		if got.Status.Phase != v1.PartnerRevoked || got.Status.Next == nil || got.Status.Next.Outcome != v1.NextGrant || got.Status.Next.Contract != next.Name {
			return fmt.Errorf("phase %s, next %+v", got.Status.Phase, got.Status.Next)
		}
		return nil
	})
	patchContract(t, next.Name, func(c *v1.DistributorContract) {
		c.Spec.StartsAt = metav1.NewTime(time.Now().Truncate(time.Second).Add(2 * time.Second))
	})
	eventually(t, 15*time.Second, "re-granted at start", partnerPhase(t, p.Name, v1.PartnerEntitled, next.Name))
	eventually(t, 10*time.Second, "RoleBinding back", func() error {
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: "rv-ns", Name: v1.RoleBindingName}, &rbacv1.RoleBinding{})
	})
	eventually(t, 10*time.Second, "quota 4", quotaSettled("rv-ns", 4))
}

func patchPartner(t *testing.T, name string, mutate func(*v1.Partner)) {
	t.Helper()
	p := getPartner(t, name)
	patch := client.MergeFrom(p.DeepCopy())
	mutate(p)
	if err := k8s.Patch(ctx(t), p, patch); err != nil {
		t.Fatal(err)
	}
}

func TestSuspendAndUnsuspend(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	c := openContract("su-c", testenv.Tier(v1.TierReady, 2, 1))
	p := testenv.Partner("su-p", v1.TierReady, "DE", []string{c.Name}, "su-ns")
	create(t, c, p)
	eventually(t, 10*time.Second, "Entitled", partnerPhase(t, p.Name, v1.PartnerEntitled, c.Name))
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Suspended = true })
	eventually(t, 10*time.Second, "Suspended", partnerPhase(t, p.Name, v1.PartnerSuspended, ""))
	eventually(t, 10*time.Second, "RoleBinding gone", notFound(&rbacv1.RoleBinding{}, "su-ns", v1.RoleBindingName))
	eventually(t, 10*time.Second, "quota 0", quotaSettled("su-ns", 0))
	eventually(t, 5*time.Second, "Suspended event", hasEvent("Partner", p.Name, v1.EventSuspended))
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Suspended = false })
	eventually(t, 10*time.Second, "Entitled again", partnerPhase(t, p.Name, v1.PartnerEntitled, c.Name))
	eventually(t, 10*time.Second, "RoleBinding back", func() error {
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: "su-ns", Name: v1.RoleBindingName}, &rbacv1.RoleBinding{})
	})
	eventually(t, 10*time.Second, "quota 2", quotaSettled("su-ns", 2))
}
