package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

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
	refusedOverQuota(t, "rv-ns", "sub-3")
	for _, n := range []string{"sub-1", "sub-2"} {
		if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: "rv-ns", Name: n}, &v1.Subscription{}); err != nil {
			t.Errorf("Subscription %s after revocation: %v", n, err)
		}
	}
	got := &corev1.ConfigMap{}
	if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(cm), got); err != nil || got.Data["k"] != "v" {
		t.Errorf("ConfigMap after revocation: %v %v", got.Data, err)
	}
	ns, err := getNamespace("rv-ns")
	if err != nil || !ns.DeletionTimestamp.IsZero() || ns.Labels[v1.LabelState] != "Revoked" {
		t.Errorf("namespace after revocation: %v, labels %v", err, ns.Labels)
	}
	eventually(t, 5*time.Second, "Revoked event", hasEvent("Partner", p.Name, v1.EventRevoked))

	// Re-grant: a contract that starts later is added (Pending), then its
	// start is moved to two seconds ahead.
	next := testenv.Contract("rv-next", "LXPN", "DE", time.Now().Add(time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierPremier, 4, 1))
	create(t, next)
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Contracts = append(p.Spec.Contracts, next.Name) })
	eventually(t, 10*time.Second, "Pending", partnerPhase(t, p.Name, v1.PartnerPending, ""))
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

func TestDriftIsUndone(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	c := openContract("dr-c", testenv.Tier(v1.TierAdvanced, 3, 1))
	p := testenv.Partner("dr-p", v1.TierAdvanced, "DE", []string{c.Name}, "dr-ns")
	create(t, c, p)
	eventually(t, 10*time.Second, "Entitled", partnerPhase(t, p.Name, v1.PartnerEntitled, c.Name))
	key := types.NamespacedName{Namespace: "dr-ns", Name: v1.RoleBindingName}
	rb := &rbacv1.RoleBinding{}
	if err := k8s.Get(ctx(t), key, rb); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx(t), rb); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "RoleBinding recreated", func() error {
		got := &rbacv1.RoleBinding{}
		if err := k8s.Get(context.Background(), key, got); err != nil {
			return err
		}
		if got.UID == rb.UID {
			return fmt.Errorf("not deleted yet")
		}
		return nil
	})

	qkey := types.NamespacedName{Namespace: "dr-ns", Name: v1.ResourceQuotaName}
	q := &corev1.ResourceQuota{}
	if err := k8s.Get(ctx(t), qkey, q); err != nil {
		t.Fatal(err)
	}
	// A merge patch, as kubectl edit sends (an update could conflict with
	// kube-controller-manager's status writes).
	qpatch := client.MergeFrom(q.DeepCopy())
	q.Spec.Hard[v1.SubscriptionQuotaResource] = resource.MustParse("100")
	if err := k8s.Patch(ctx(t), q, qpatch, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "edited hard limit restored", func() error {
		h, err := quotaHard("dr-ns")
		if err != nil {
			return err
		}
		if h != 3 {
			return fmt.Errorf("hard %d, want 3", h)
		}
		return nil
	})
	if err := k8s.Delete(ctx(t), q); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "quota recreated", func() error {
		got := &corev1.ResourceQuota{}
		if err := k8s.Get(context.Background(), qkey, got); err != nil {
			return err
		}
		if got.UID == q.UID {
			return fmt.Errorf("not deleted yet")
		}
		return nil
	})
}

func TestHijackEndsInConflict(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{StalledRecheck: time.Second})
	c := openContract("hj-c", testenv.Tier(v1.TierPremier, 3, 3))
	taken := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "hj-taken", Labels: map[string]string{"team": "payments"}}}
	create(t, c, taken)
	other := testenv.Partner("hj-other", v1.TierPremier, "DE", []string{c.Name}, "hj-others")
	create(t, other)
	eventually(t, 10*time.Second, "other partner entitled", partnerPhase(t, other.Name, v1.PartnerEntitled, c.Name))

	p := testenv.Partner("hj-p", v1.TierPremier, "DE", []string{c.Name}, "hj-taken", "hj-others", "hj-own")
	create(t, p)
	eventually(t, 10*time.Second, "conflicts reported", func() error {
		got := getPartner(t, p.Name)
		states := map[string]v1.NamespaceState{}
		for _, n := range got.Status.Namespaces {
			states[n.Name] = n.State
		}
		if states["hj-taken"] != v1.NamespaceConflict || states["hj-others"] != v1.NamespaceConflict || states["hj-own"] != v1.NamespaceGranted {
			return fmt.Errorf("states %v", states)
		}
		st := condition(got.Status.Conditions, v1.ConditionStalled)
		if st == nil || st.Status != metav1.ConditionTrue || st.Reason != v1.ReasonNamespaceConflict || !strings.Contains(st.Message, "hj-taken") {
			return fmt.Errorf("Stalled %+v", st)
		}
		if r := condition(got.Status.Conditions, v1.ConditionReady); r == nil || r.Status != metav1.ConditionFalse {
			return fmt.Errorf("Ready %+v, want False", r)
		}
		return nil
	})
	consistently(t, 2*time.Second, "no RoleBinding in the unlabelled namespace", notFound(&rbacv1.RoleBinding{}, "hj-taken", v1.RoleBindingName))
	ns, _ := getNamespace("hj-taken")
	if ns.Labels[v1.LabelPartner] != "" || ns.Labels[v1.LabelManagedBy] != "" {
		t.Errorf("unlabelled namespace was labelled: %v", ns.Labels)
	}
	rb := &rbacv1.RoleBinding{}
	if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: "hj-others", Name: v1.RoleBindingName}, rb); err != nil {
		t.Fatal(err)
	}
	if rb.Labels[v1.LabelPartner] != other.Name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "hj-other-admins" {
		t.Errorf("the other partner's RoleBinding was changed: %v %v", rb.Labels, rb.Subjects)
	}
	eventually(t, 5*time.Second, "NamespaceConflict event", hasEvent("Partner", p.Name, v1.EventNamespaceConflict))

	sys := testenv.Partner("hj-sys", v1.TierPremier, "DE", []string{c.Name}, "kube-system")
	err := k8s.Create(ctx(t), sys)
	if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.namespaces[0]") {
		t.Errorf("a partner claiming kube-system: want refused at admission naming spec.namespaces[0], got %v", err)
	}

	// Labelling the namespace for the partner is not enough (anyone who may
	// write namespaces could forge it) ...
	patch := client.MergeFrom(ns.DeepCopy())
	ns.Labels[v1.LabelPartner] = p.Name
	if err := k8s.Patch(ctx(t), ns, patch); err != nil {
		t.Fatal(err)
	}
	consistently(t, 3*time.Second, "labelled namespace stays Conflict, without the partner's binding", func() error {
		got := getPartner(t, p.Name)
		for _, n := range got.Status.Namespaces {
			if n.Name == "hj-taken" && n.State != v1.NamespaceConflict {
				return fmt.Errorf("hj-taken is %s", n.State)
			}
		}
		return notFound(&rbacv1.RoleBinding{}, "hj-taken", v1.RoleBindingName)()
	})
	// ... the hand-over also takes the Partner's adopt annotation. The
	// operator caches only namespaces it manages, so no namespace event
	// reaches it; the annotation is on the Partner.
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Annotations = map[string]string{v1.AnnotationAdopt: "hj-taken"} })
	eventually(t, 15*time.Second, "handed-over namespace granted", func() error {
		got := getPartner(t, p.Name)
		for _, n := range got.Status.Namespaces {
			if n.Name == "hj-taken" && (n.State != v1.NamespaceGranted || !n.Adopted) {
				return fmt.Errorf("hj-taken is %s, adopted %v", n.State, n.Adopted)
			}
		}
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: "hj-taken", Name: v1.RoleBindingName}, &rbacv1.RoleBinding{})
	})
}

func TestUnbindableRoleStalls(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	unlabelled := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "rb-unlabelled"}}
	create(t, unlabelled)
	for _, tc := range []struct{ name, role string }{{"rb-admin", "cluster-admin"}, {"rb-plain", "rb-unlabelled"}} {
		ent := testenv.Tier(v1.TierReady, 2, 1)
		ent.ClusterRole = tc.role
		c := openContract(tc.name+"-c", ent)
		p := testenv.Partner(tc.name, v1.TierReady, "DE", []string{c.Name}, tc.name+"-ns")
		create(t, c, p)
		eventually(t, 10*time.Second, "Stalled", func() error {
			got := getPartner(t, p.Name)
			st := condition(got.Status.Conditions, v1.ConditionStalled)
			if st == nil || st.Status != metav1.ConditionTrue || st.Reason != v1.ReasonRoleNotBindable || !strings.Contains(st.Message, tc.role) || !strings.Contains(st.Message, v1.LabelBindable) {
				return fmt.Errorf("Stalled %+v", st)
			}
			return nil
		})
		consistently(t, 2*time.Second, "nothing bound", notFound(&rbacv1.RoleBinding{}, tc.name+"-ns", v1.RoleBindingName))
		eventually(t, 5*time.Second, "RoleNotBindable event", hasEvent("Partner", p.Name, v1.EventRoleNotBindable))
	}
}

func TestQuotaSpreadAnySplit(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	c := openContract("qs-c", testenv.Tier(v1.TierAdvanced, 5, 2))
	p := testenv.Partner("qs-p", v1.TierAdvanced, "DE", []string{c.Name}, "qs-a", "qs-b")
	create(t, c, p)
	eventually(t, 10*time.Second, "Entitled", partnerPhase(t, p.Name, v1.PartnerEntitled, c.Name))

	// 3 + 2.
	for i := range 3 {
		createSubscription(t, "qs-a", fmt.Sprintf("a-%d", i))
	}
	for i := range 2 {
		createSubscription(t, "qs-b", fmt.Sprintf("b-%d", i))
	}
	eventually(t, 15*time.Second, "rebalanced to 3/2", func() error {
		if err := quotaSettled("qs-a", 3)(); err != nil {
			return err
		}
		return quotaSettled("qs-b", 2)()
	})
	refusedOverQuota(t, "qs-a", "a-over")
	refusedOverQuota(t, "qs-b", "b-over")

	// Move to 5 + 0: free b, fill a.
	for i := range 2 {
		if err := k8s.Delete(ctx(t), newSubscription("qs-b", fmt.Sprintf("b-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 3; i < 5; i++ {
		createSubscription(t, "qs-a", fmt.Sprintf("a-%d", i))
	}
	eventually(t, 15*time.Second, "rebalanced to 5/0", func() error {
		if err := quotaSettled("qs-a", 5)(); err != nil {
			return err
		}
		return quotaSettled("qs-b", 0)()
	})
	refusedOverQuota(t, "qs-a", "a-over")
	refusedOverQuota(t, "qs-b", "b-over")
	eventually(t, 10*time.Second, "status 5/5", func() error {
		if s := getPartner(t, p.Name).Status.Subscriptions; s.Summary != "5/5" {
			return fmt.Errorf("subscriptions %+v", s)
		}
		return nil
	})
}

// TestBackToBackWithinQuota: Subscriptions created one right after the
// other, while the operator rebalances after each, are all admitted up to
// the limit — a rebalance from a cache that has seen the new Subscription but
// not yet the quota's new count must not lower the limit under the partner.
func TestBackToBackWithinQuota(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	c := openContract("b2b-c", testenv.Tier(v1.TierAdvanced, 5, 1))
	p := testenv.Partner("b2b-p", v1.TierAdvanced, "DE", []string{c.Name}, "b2b")
	create(t, c, p)
	eventually(t, 10*time.Second, "Entitled", partnerPhase(t, p.Name, v1.PartnerEntitled, c.Name))
	eventually(t, 10*time.Second, "quota 5", quotaSettled("b2b", 5))
	for round := range 3 {
		for i := range 5 {
			if err := k8s.Create(ctx(t), newSubscription("b2b", fmt.Sprintf("s-%d-%d", round, i))); err != nil {
				t.Fatalf("round %d: Subscription %d of 5 refused: %v", round, i+1, err)
			}
		}
		refusedOverQuota(t, "b2b", fmt.Sprintf("s-%d-over", round))
		// Free them again for the next round; the quota count follows the
		// deletions (kube-controller-manager), then the spread.
		if err := k8s.DeleteAllOf(ctx(t), &v1.Subscription{}, client.InNamespace("b2b")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "quota count back to 0", func() error {
			q := &corev1.ResourceQuota{}
			if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: "b2b", Name: v1.ResourceQuotaName}, q); err != nil {
				return err
			}
			if u := q.Status.Used[v1.SubscriptionQuotaResource]; u.Value() != 0 {
				return fmt.Errorf("used %s", u.String())
			}
			return quotaSettled("b2b", 5)()
		})
	}
}

// TestQuotaCountLagIsNotAnOpening: kube-controller-manager recalculates a
// quota's usage from its own cache whenever the hard limit changes; under
// load that cache can miss a Subscription just created, and the quota then
// counts one too few until its next full resync. Simulated here by writing
// the lagging count into the quota's status: the operator must not hand
// the missing one out again.
func TestQuotaCountLagIsNotAnOpening(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	c := openContract("lag-c", testenv.Tier(v1.TierAdvanced, 5, 2))
	p := testenv.Partner("lag-p", v1.TierAdvanced, "DE", []string{c.Name}, "lag-a", "lag-b")
	create(t, c, p)
	eventually(t, 10*time.Second, "Entitled", partnerPhase(t, p.Name, v1.PartnerEntitled, c.Name))
	for i := range 3 {
		createSubscription(t, "lag-a", fmt.Sprintf("a-%d", i))
	}
	for i := range 2 {
		createSubscription(t, "lag-b", fmt.Sprintf("b-%d", i))
	}
	eventually(t, 15*time.Second, "settled at 3/2", func() error {
		if err := quotaSettled("lag-a", 3)(); err != nil {
			return err
		}
		return quotaSettled("lag-b", 2)()
	})

	// The quota of lag-b now counts 1 of its 2 Subscriptions.
	// (kube-controller-manager writes the status too: retry on conflict.)
	eventually(t, 10*time.Second, "quota count set to 1", func() error {
		q := &corev1.ResourceQuota{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: "lag-b", Name: v1.ResourceQuotaName}, q); err != nil {
			return err
		}
		q.Status.Used[v1.SubscriptionQuotaResource] = resource.MustParse("1")
		return k8s.Status().Update(context.Background(), q)
	})
	// Once the operator has seen it, admission in lag-b has no headroom
	// (hard lowered to the lagging count, or the count corrected).
	eventually(t, 10*time.Second, "no headroom in lag-b", func() error {
		q := &corev1.ResourceQuota{}
		if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: "lag-b", Name: v1.ResourceQuotaName}, q); err != nil {
			return err
		}
		h, u := q.Spec.Hard[v1.SubscriptionQuotaResource], q.Status.Used[v1.SubscriptionQuotaResource]
		if h.Value() > u.Value() {
			return fmt.Errorf("quota lag-b: hard %s, used %s: room for %d more", h.String(), u.String(), h.Value()-u.Value())
		}
		return nil
	})
	refusedOverQuota(t, "lag-b", "b-over")
	refusedOverQuota(t, "lag-a", "a-over")
	list := &v1.SubscriptionList{}
	if err := k8s.List(ctx(t), list, client.InNamespace("lag-b")); err != nil || len(list.Items) != 2 {
		t.Fatalf("Subscriptions in lag-b: %d (err %v), want 2", len(list.Items), err)
	}
	eventually(t, 10*time.Second, "status 5/5", func() error {
		if s := getPartner(t, p.Name).Status.Subscriptions; s.Summary != "5/5" {
			return fmt.Errorf("subscriptions %+v", s)
		}
		return nil
	})
	// The lowered hard makes kube-controller-manager recount lag-b; with the
	// count right again the spread settles back where it was.
	eventually(t, 40*time.Second, "settled at 3/2 again", func() error {
		if err := quotaSettled("lag-a", 3)(); err != nil {
			return err
		}
		return quotaSettled("lag-b", 2)()
	})
}

func TestDeletionPolicies(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	c := openContract("dp-c", testenv.Tier(v1.TierAdvanced, 5, 3))
	create(t, c)

	// A second finalizer holds the Partner after the operator's is gone, so
	// the revocation is seen to be the operator's work, not the garbage
	// collector's.
	const hold = "test.partnerops.io/hold"
	keep := testenv.Partner("dp-keep", v1.TierAdvanced, "DE", []string{c.Name}, "dp-keep-ns")
	keep.Finalizers = []string{hold}
	create(t, keep)
	eventually(t, 10*time.Second, "Entitled", partnerPhase(t, keep.Name, v1.PartnerEntitled, c.Name))
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "dp-keep-ns", Name: "data"}})
	if err := k8s.Delete(ctx(t), keep); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "operator's finalizer released", func() error {
		if got := getPartner(t, keep.Name); hasFinalizer(got) {
			return fmt.Errorf("finalizers %v", got.Finalizers)
		}
		return nil
	})
	if err := notFound(&rbacv1.RoleBinding{}, "dp-keep-ns", v1.RoleBindingName)(); err != nil {
		t.Errorf("access not revoked by the time the finalizer was released: %v", err)
	}
	patchPartner(t, keep.Name, func(p *v1.Partner) { p.Finalizers = nil })
	eventually(t, 15*time.Second, "Retain partner gone", notFound(&v1.Partner{}, "", keep.Name))
	// Three seconds give the garbage collector time to act on the gone
	// Partner: the kept namespace stays revoked, its quota at 0 and unowned.
	consistently(t, 3*time.Second, "Retain keeps the namespace, its content and a zero quota", func() error {
		ns, err := getNamespace("dp-keep-ns")
		if err != nil || !ns.DeletionTimestamp.IsZero() {
			return fmt.Errorf("namespace: %v %v", err, ns.DeletionTimestamp)
		}
		if ns.Labels[v1.LabelState] != string(v1.NamespaceRevoked) {
			return fmt.Errorf("namespace state label %q, want Revoked", ns.Labels[v1.LabelState])
		}
		q := &corev1.ResourceQuota{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: "dp-keep-ns", Name: v1.ResourceQuotaName}, q); err != nil {
			return fmt.Errorf("quota: %w", err)
		}
		if h := q.Spec.Hard[v1.SubscriptionQuotaResource]; h.Value() != 0 || len(q.OwnerReferences) != 0 {
			return fmt.Errorf("quota hard %s owners %v, want 0 and none", h.String(), q.OwnerReferences)
		}
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: "dp-keep-ns", Name: "data"}, &corev1.ConfigMap{})
	})
	refusedOverQuota(t, "dp-keep-ns", "after-delete")

	// Handed over: labelled by its owner and named in the Partner's adopt
	// annotation (the created-by annotation forged as well). Forged: the
	// operator's labels and created-by annotation written by someone else.
	// Neither was created by the operator, so neither may be deleted.
	forgedMeta := func(name string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{v1.LabelPartner: "dp-del", v1.LabelManagedBy: v1.ManagedByValue},
			Annotations: map[string]string{v1.AnnotationCreatedBy: "dp-del"}}}
	}
	create(t, forgedMeta("dp-adopted"), forgedMeta("dp-forged"))
	del := testenv.Partner("dp-del", v1.TierAdvanced, "DE", []string{c.Name}, "dp-del-ns", "dp-adopted", "dp-forged")
	del.Annotations = map[string]string{v1.AnnotationAdopt: "dp-adopted"}
	del.Spec.DeletionPolicy = v1.DeletionDelete
	create(t, del)
	eventually(t, 10*time.Second, "created and adopted namespaces granted, forged one Conflict", func() error {
		got := getPartner(t, del.Name)
		states := map[string]v1.NamespaceState{}
		for _, n := range got.Status.Namespaces {
			states[n.Name] = n.State
		}
		if states["dp-del-ns"] != v1.NamespaceGranted || states["dp-adopted"] != v1.NamespaceGranted || states["dp-forged"] != v1.NamespaceConflict {
			return fmt.Errorf("states %v", states)
		}
		return nil
	})
	consistently(t, 2*time.Second, "no RoleBinding in the forged namespace", notFound(&rbacv1.RoleBinding{}, "dp-forged", v1.RoleBindingName))
	if err := k8s.Delete(ctx(t), del); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "created namespace deleted", notFound(&corev1.Namespace{}, "", "dp-del-ns"))
	eventually(t, 15*time.Second, "Delete partner gone", notFound(&v1.Partner{}, "", del.Name))
	for _, name := range []string{"dp-adopted", "dp-forged"} {
		ns, err := getNamespace(name)
		if err != nil || !ns.DeletionTimestamp.IsZero() {
			t.Errorf("namespace %s, which the operator did not create, must be kept: %v", name, err)
		}
	}
}

// TestSteadyStateWritesNothing converges five entitled partners with two
// namespaces each (one rebalanced by a Subscription), then restarts the
// manager over every Partner and DistributorContract on the control plane
// (also any the other tests left): the new manager reconciles them all and
// issues no write.
func TestSteadyStateWritesNothing(t *testing.T) {
	needCluster(t)
	c := openContract("ss-c", testenv.Tier(v1.TierAdvanced, 5, 2))
	create(t, c)
	for i := range 5 {
		p := testenv.Partner(fmt.Sprintf("ss-p%d", i), v1.TierAdvanced, "DE", []string{c.Name}, fmt.Sprintf("ss-%d-a", i), fmt.Sprintf("ss-%d-b", i))
		create(t, p)
	}
	m := startManager(t, testenv.ManagerOptions{})
	for i := range 5 {
		eventually(t, 20*time.Second, "Entitled", partnerPhase(t, fmt.Sprintf("ss-p%d", i), v1.PartnerEntitled, c.Name))
		eventually(t, 20*time.Second, "Ready (quotas counted)", partnerReady(fmt.Sprintf("ss-p%d", i)))
	}
	createSubscription(t, "ss-0-a", "s1")
	eventually(t, 10*time.Second, "rebalanced", quotaSettled("ss-0-b", 4))
	// Stop only once the status shows the rebalance too, or the restarted
	// manager rightly writes it.
	eventually(t, 10*time.Second, "status settled", func() error {
		got := getPartner(t, "ss-p0")
		want := map[string][2]int32{"ss-0-a": {1, 5}, "ss-0-b": {0, 4}}
		for _, n := range got.Status.Namespaces {
			if w, ok := want[n.Name]; ok && (n.SubscriptionsUsed != w[0] || n.SubscriptionsHard != w[1]) {
				return fmt.Errorf("namespace %s used/hard %d/%d, want %d/%d", n.Name, n.SubscriptionsUsed, n.SubscriptionsHard, w[0], w[1])
			}
		}
		if got.Status.Subscriptions.Summary != "1/5" {
			return fmt.Errorf("subscriptions %s, want 1/5", got.Status.Subscriptions.Summary)
		}
		return nil
	})
	m.Stop()

	partners, contracts := &v1.PartnerList{}, &v1.DistributorContractList{}
	if err := k8s.List(ctx(t), partners); err != nil {
		t.Fatal(err)
	}
	if err := k8s.List(ctx(t), contracts); err != nil {
		t.Fatal(err)
	}
	before := reconcileTotals(t)
	m2 := startManager(t, testenv.ManagerOptions{})
	eventually(t, 30*time.Second, "every object reconciled", func() error {
		after := reconcileTotals(t)
		if dp, dc := after["partner"]-before["partner"], after["distributorcontract"]-before["distributorcontract"]; dp < float64(len(partners.Items)) || dc < float64(len(contracts.Items)) {
			return fmt.Errorf("reconciled %v partners of %d, %v contracts of %d", dp, len(partners.Items), dc, len(contracts.Items))
		}
		return nil
	})
	consistently(t, 2*time.Second, "no writes", func() error {
		if w := m2.Writes.Load(); w != 0 {
			return fmt.Errorf("the restarted manager issued %d writes: %v", w, m2.WriteLog())
		}
		return nil
	})
	t.Logf("restarted manager: %d partners, %d contracts reconciled with %d requests, %d writes",
		len(partners.Items), len(contracts.Items), m2.Requests.Load(), m2.Writes.Load())
}

func reconcileTotals(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := ctrlmetrics.Registry.(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// TestUnlistedNamespaceIsRevokedAndKept: a namespace removed from
// spec.namespaces loses access and quota but keeps its content.
func TestUnlistedNamespaceIsRevokedAndKept(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	c := openContract("ul-c", testenv.Tier(v1.TierAdvanced, 4, 2))
	p := testenv.Partner("ul-p", v1.TierAdvanced, "DE", []string{c.Name}, "ul-a", "ul-b")
	create(t, c, p)
	eventually(t, 10*time.Second, "Entitled", partnerPhase(t, p.Name, v1.PartnerEntitled, c.Name))
	eventually(t, 10*time.Second, "RoleBinding in ul-b", func() error {
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: "ul-b", Name: v1.RoleBindingName}, &rbacv1.RoleBinding{})
	})
	createSubscription(t, "ul-b", "kept")
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Namespaces = p.Spec.Namespaces[:1] })
	eventually(t, 10*time.Second, "RoleBinding in ul-b gone", notFound(&rbacv1.RoleBinding{}, "ul-b", v1.RoleBindingName))
	eventually(t, 10*time.Second, "ul-b quota 0", quotaSettled("ul-b", 0))
	eventually(t, 10*time.Second, "status shows ul-b revoked", func() error {
		got := getPartner(t, p.Name)
		for _, n := range got.Status.Namespaces {
			if n.Name == "ul-b" && n.State == v1.NamespaceRevoked && strings.Contains(n.Message, "no longer listed") {
				return nil
			}
		}
		return fmt.Errorf("namespaces %+v", got.Status.Namespaces)
	})
	if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: "ul-b", Name: "kept"}, &v1.Subscription{}); err != nil {
		t.Errorf("Subscription in the unlisted namespace: %v", err)
	}
	ns, err := getNamespace("ul-b")
	if err != nil || !ns.DeletionTimestamp.IsZero() || ns.Labels[v1.LabelState] != "Revoked" {
		t.Errorf("unlisted namespace: err %v labels %v", err, ns.Labels)
	}
}

// TestRefusedQuotaGrantsNoAccess: a namespaceQuota the ResourceQuota refuses
// (a negative value passes the CRD schema) must not leave the partner's
// people bound without a limit; fixing the contract grants access.
func TestRefusedQuotaGrantsNoAccess(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	ent := testenv.Tier(v1.TierReady, 3, 1)
	// A fractional pod count passes the CRD's schema but no ResourceQuota.
	ent.NamespaceQuota = corev1.ResourceList{"pods": resource.MustParse("500m")}
	c := openContract("badq-c", ent)
	p := testenv.Partner("badq-p", v1.TierReady, "DE", []string{c.Name}, "badq-ns")
	p.Spec.Access = append(p.Spec.Access, v1.Subject{Kind: v1.SubjectUser, Name: "leaver@acme.example"})
	create(t, c, p)
	eventually(t, 15*time.Second, "Ready False naming the quota", func() error {
		got := getPartner(t, p.Name)
		r := condition(got.Status.Conditions, v1.ConditionReady)
		if r == nil || r.Status != metav1.ConditionFalse || r.Reason != v1.ReasonApplyFailed ||
			!strings.Contains(r.Message, "ResourceQuota "+v1.ResourceQuotaName) || !strings.Contains(r.Message, "badq-ns") || !strings.Contains(r.Message, "pods") {
			return fmt.Errorf("Ready %+v", r)
		}
		return nil
	})
	consistently(t, 2*time.Second, "no RoleBinding without a quota", notFound(&rbacv1.RoleBinding{}, "badq-ns", v1.RoleBindingName))

	// Patches, not updates: the operator writes the contract's status
	// meanwhile.
	patchContract(t, c.Name, func(c *v1.DistributorContract) {
		c.Spec.Entitlements[0].NamespaceQuota = corev1.ResourceList{"pods": resource.MustParse("10")}
	})
	eventually(t, 15*time.Second, "bound once the quota is valid", func() error {
		rb := &rbacv1.RoleBinding{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: "badq-ns", Name: v1.RoleBindingName}, rb); err != nil {
			return err
		}
		got := getPartner(t, p.Name)
		if r := condition(got.Status.Conditions, v1.ConditionReady); r == nil || r.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready %+v", r)
		}
		return nil
	})

	// The quota is refused again while someone leaves the partner: removing
	// access must not wait for the quota (the old quota still limits).
	patchContract(t, c.Name, func(c *v1.DistributorContract) {
		c.Spec.Entitlements[0].NamespaceQuota = corev1.ResourceList{"pods": resource.MustParse("1500m")}
	})
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Access = p.Spec.Access[:1] })
	eventually(t, 15*time.Second, "leaver unbound despite the refused quota", func() error {
		rb := &rbacv1.RoleBinding{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: "badq-ns", Name: v1.RoleBindingName}, rb); err != nil {
			return err
		}
		if len(rb.Subjects) != 1 || rb.Subjects[0].Name != "badq-p-admins" {
			return fmt.Errorf("subjects %v, want only badq-p-admins", rb.Subjects)
		}
		got := getPartner(t, p.Name)
		if r := condition(got.Status.Conditions, v1.ConditionReady); r == nil || r.Status != metav1.ConditionFalse || !strings.Contains(r.Message, "ResourceQuota") {
			return fmt.Errorf("Ready %+v, want False naming the quota", r)
		}
		return nil
	})

	// Suspended (binding gone, quota at 0), then entitled again while the
	// contract's quota is still refused: the old quota lacks the contract's
	// limits, so no binding may be created under it.
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Suspended = true })
	eventually(t, 15*time.Second, "suspended: unbound", notFound(&rbacv1.RoleBinding{}, "badq-ns", v1.RoleBindingName))
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Suspended = false })
	eventually(t, 15*time.Second, "unsuspended, Ready False naming the quota", func() error {
		got := getPartner(t, p.Name)
		r := condition(got.Status.Conditions, v1.ConditionReady)
		if got.Status.Phase != v1.PartnerEntitled || r == nil || r.Status != metav1.ConditionFalse || !strings.Contains(r.Message, "ResourceQuota") {
			return fmt.Errorf("phase %s, Ready %+v", got.Status.Phase, r)
		}
		return nil
	})
	consistently(t, 2*time.Second, "no binding under a quota without the contract's limits", notFound(&rbacv1.RoleBinding{}, "badq-ns", v1.RoleBindingName))
	deleteAndWait(t, p)
}

// deleteAndWait deletes a Partner whose apply keeps failing and waits until
// it is gone, so that later tests (TestSteadyStateWritesNothing restarts
// the manager over every Partner) do not see its retries.
func deleteAndWait(t *testing.T, p *v1.Partner) {
	t.Helper()
	if err := k8s.Delete(ctx(t), p); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "partner "+p.Name+" gone", notFound(&v1.Partner{}, "", p.Name))
}

// TestForeignRefusalIsNotRoleNotBindable: a 403 that is not the RBAC
// escalation check — here a quota of the namespace's owner that allows no
// RoleBindings — fails that namespace only. Before, any 403 read as "role
// not bindable" and unbound the partner in every namespace.
func TestForeignRefusalIsNotRoleNotBindable(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	handed := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fq-b", Labels: map[string]string{v1.LabelPartner: "fq-p"}}}
	noBindings := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: "fq-b", Name: "no-rolebindings"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/rolebindings.rbac.authorization.k8s.io": resource.MustParse("0")}},
	}
	create(t, handed, noBindings)
	eventually(t, 30*time.Second, "foreign quota counted", func() error {
		q := &corev1.ResourceQuota{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: "fq-b", Name: "no-rolebindings"}, q); err != nil {
			return err
		}
		if _, ok := q.Status.Hard["count/rolebindings.rbac.authorization.k8s.io"]; !ok {
			return fmt.Errorf("quota status not computed yet")
		}
		return nil
	})
	c := openContract("fq-c", testenv.Tier(v1.TierAdvanced, 4, 2))
	p := testenv.Partner("fq-p", v1.TierAdvanced, "DE", []string{c.Name}, "fq-a", "fq-b")
	p.Annotations = map[string]string{v1.AnnotationAdopt: "fq-b"} // handed over
	create(t, c, p)
	eventually(t, 15*time.Second, "Ready False naming fq-b, not Stalled", func() error {
		got := getPartner(t, p.Name)
		r := condition(got.Status.Conditions, v1.ConditionReady)
		if r == nil || r.Status != metav1.ConditionFalse || r.Reason != v1.ReasonApplyFailed || !strings.Contains(r.Message, "fq-b") {
			return fmt.Errorf("Ready %+v", r)
		}
		if st := condition(got.Status.Conditions, v1.ConditionStalled); st != nil {
			return fmt.Errorf("Stalled %+v, want none", st)
		}
		return nil
	})
	consistently(t, 3*time.Second, "fq-a stays bound", func() error {
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: "fq-a", Name: v1.RoleBindingName}, &rbacv1.RoleBinding{})
	})
	if n, err := eventOccurrences("Partner", p.Name, v1.EventRoleNotBindable); err != nil || n != 0 {
		t.Errorf("RoleNotBindable events: %d (err %v), want none", n, err)
	}
	deleteAndWait(t, p)
}
