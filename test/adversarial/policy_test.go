package adversarial_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// TestDeletedPolicyBindingIsReported: an admin deletes the binding of the
// products policy, then weakens the contract-end one to Warn. The API
// server would admit forbidden products and sell past a contract's end;
// every contract says so (Ready False, Stalled AdmissionPolicyMissing, an
// event) until the bindings are back as shipped.
func TestDeletedPolicyBindingIsReported(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{RequireAdmissionPolicies: true})
	c := testenv.Contract("pol-c", "Bytec", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierReady, 5, 1))
	create(t, c)
	readyIs := func(status metav1.ConditionStatus, reason, mentions string) func() error {
		return func() error {
			got := &v1.DistributorContract{}
			if err := k8s.Get(ctx(t), client.ObjectKey{Name: c.Name}, got); err != nil {
				return err
			}
			r := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionReady)
			if r == nil || r.Status != status || r.Reason != reason || !strings.Contains(r.Message, mentions) {
				return fmt.Errorf("Ready %+v", r)
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, "Ready with the policies as shipped", readyIs(metav1.ConditionTrue, v1.ReasonReconciled, ""))

	products := &admissionv1.ValidatingAdmissionPolicyBinding{}
	if err := k8s.Get(ctx(t), client.ObjectKey{Name: v1.PolicyProducts}, products); err != nil {
		t.Fatal(err)
	}
	restore := products.DeepCopy()
	restore.ResourceVersion, restore.UID, restore.CreationTimestamp, restore.ManagedFields = "", "", metav1.Time{}, nil
	if err := k8s.Delete(ctx(t), products); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Create(ctx(t), restore) })
	eventually(t, 30*time.Second, "the deleted binding reported", readyIs(metav1.ConditionFalse, v1.ReasonAdmissionPolicyMissing, v1.PolicyProducts))
	eventually(t, 10*time.Second, "a Warning event on the contract", func() error {
		evs := &eventsv1.EventList{}
		if err := k8s.List(ctx(t), evs); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == c.Name && e.Reason == v1.ReasonAdmissionPolicyMissing && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("no %s event on %s", v1.ReasonAdmissionPolicyMissing, c.Name)
	})
	if err := k8s.Create(ctx(t), restore); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Ready again once restored", readyIs(metav1.ConditionTrue, v1.ReasonReconciled, ""))

	end := &admissionv1.ValidatingAdmissionPolicyBinding{}
	if err := k8s.Get(ctx(t), client.ObjectKey{Name: v1.PolicyContractEnd}, end); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(end.DeepCopy())
	end.Spec.ValidationActions = []admissionv1.ValidationAction{admissionv1.Warn}
	if err := k8s.Patch(ctx(t), end, patch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b := &admissionv1.ValidatingAdmissionPolicyBinding{}
		if k8s.Get(ctx(t), client.ObjectKey{Name: v1.PolicyContractEnd}, b) == nil {
			p := client.MergeFrom(b.DeepCopy())
			b.Spec.ValidationActions = []admissionv1.ValidationAction{admissionv1.Deny}
			_ = k8s.Patch(ctx(t), b, p)
		}
	})
	eventually(t, 30*time.Second, "a binding that only warns reported", readyIs(metav1.ConditionFalse, v1.ReasonAdmissionPolicyMissing, v1.PolicyContractEnd))
}

// TestForeignLabelsDoNotGrowTheStatus: someone who may label namespaces
// labels many for a partner. The partner's status lists a few of them, so
// its size stays bounded and it can always be written.
func TestForeignLabelsDoNotGrowTheStatus(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	c := testenv.Contract("fl-c", "Bytec", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierReady, 5, 1))
	p := testenv.Partner("fl-p", v1.TierReady, "DE", []string{c.Name}, "fl-own")
	create(t, c, p)
	n := setting("ADVERSARIAL_FOREIGN", 40)
	for i := range n {
		create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fl-foreign-%d", i),
			Labels: map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: p.Name}}})
	}
	eventually(t, 60*time.Second, "own namespace granted, a bounded list of foreign ones", func() error {
		got := getPartner(t, p.Name)
		own, _ := nsState(got, "fl-own")
		if own.State != v1.NamespaceGranted || len(got.Status.Namespaces) != 1+10 {
			return fmt.Errorf("own %s, %d namespaces listed", own.State, len(got.Status.Namespaces))
		}
		if !strings.Contains(fmt.Sprint(got.Status.Namespaces), fmt.Sprintf("and %d more namespaces", n-10)) {
			return fmt.Errorf("no count of the ones left out: %v", got.Status.Namespaces)
		}
		return nil
	})
}

// TestRevokedKeepsTheNamespaceQuota: revoked means no new Subscriptions,
// not unlimited compute: the contract's namespaceQuota limits stay on a
// revoked partner's quota.
func TestRevokedKeepsTheNamespaceQuota(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	ent := testenv.Tier(v1.TierReady, 5, 1)
	ent.NamespaceQuota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("7")}
	c := testenv.Contract("nq-c", "Bytec", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, ent)
	p := testenv.Partner("nq-p", v1.TierReady, "DE", []string{c.Name}, "nq-ns")
	create(t, c, p)
	quota := func(subs, pods string) func() error {
		return func() error {
			q := &corev1.ResourceQuota{}
			if err := k8s.Get(ctx(t), client.ObjectKey{Namespace: "nq-ns", Name: v1.ResourceQuotaName}, q); err != nil {
				return err
			}
			s, pd := q.Spec.Hard[v1.SubscriptionQuotaResource], q.Spec.Hard[corev1.ResourcePods]
			if s.String() != subs || pd.String() != pods {
				return fmt.Errorf("hard %v", q.Spec.Hard)
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, "granted: 5 Subscriptions, 7 pods", quota("5", "7"))
	setEnd(t, c.Name, time.Now().Add(-time.Minute))
	eventually(t, 30*time.Second, "revoked: no Subscriptions, still 7 pods", quota("0", "7"))
}
