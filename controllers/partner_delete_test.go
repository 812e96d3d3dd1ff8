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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

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
	refusedRevoked(t, "dp-keep-ns", "after-delete")

	// Handed over: labelled by its owner and named in the Partner's adopt
	// annotation (the created-by annotation forged as well). Forged: the
	// operator's labels and created-by annotation written by someone else.
	// Neither was created by the operator, so neither may be deleted.
	forgedMeta := func(name string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{v1.LabelPartner: "dp-del", v1.LabelManagedBy: v1.ManagedByValue},
			Annotations: map[string]string{v1.AnnotationCreatedBy: "dp-del"}}}
	}
	adopted := forgedMeta("dp-adopted")
	adopted.Annotations[v1.AnnotationHandOverTo] = "dp-del" // its owner consents
	create(t, adopted, forgedMeta("dp-forged"))
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
		// The measurement counts from the Subscription cache, which can see
		// the new one after the quota's count did.
		if perf := got.Status.Performance; perf == nil || perf.Subscriptions != 1 {
			return fmt.Errorf("performance %+v, want 1 Subscription counted", perf)
		}
		return nil
	})
	// And once the contracts' status has counted it: partner changes reach
	// it after controllers.ContractStatusCoalesce. Quiet means no write for
	// twice that.
	lastWrites, lastAt := m.Writes.Load(), time.Now()
	eventually(t, 20*time.Second, "the first manager quiet", func() error {
		if w := m.Writes.Load(); w != lastWrites {
			lastWrites, lastAt = w, time.Now()
		}
		if quiet := time.Since(lastAt); quiet < 2*controllers.ContractStatusCoalesce {
			return fmt.Errorf("a write %s ago", quiet.Round(time.Millisecond))
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
