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
	// ... nor is the Partner's adopt annotation alone (a Partner's editor
	// may write it) ...
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Annotations = map[string]string{v1.AnnotationAdopt: "hj-taken"} })
	consistently(t, 3*time.Second, "adopt annotation alone: still Conflict", func() error {
		got := getPartner(t, p.Name)
		for _, n := range got.Status.Namespaces {
			if n.Name == "hj-taken" && n.State != v1.NamespaceConflict {
				return fmt.Errorf("hj-taken is %s", n.State)
			}
		}
		return notFound(&rbacv1.RoleBinding{}, "hj-taken", v1.RoleBindingName)()
	})
	// ... the hand-over takes the consent of whoever may write the
	// namespace, on the namespace itself. The operator caches only
	// namespaces it manages, so it sees it at its Stalled recheck.
	ns, _ = getNamespace("hj-taken")
	patch = client.MergeFrom(ns.DeepCopy())
	ns.Annotations = map[string]string{v1.AnnotationHandOverTo: p.Name}
	if err := k8s.Patch(ctx(t), ns, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "handed-over namespace granted", func() error {
		got := getPartner(t, p.Name)
		for _, n := range got.Status.Namespaces {
			if n.Name == "hj-taken" && (n.State != v1.NamespaceGranted || !n.Adopted) {
				return fmt.Errorf("hj-taken is %s, adopted %v", n.State, n.Adopted)
			}
		}
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: "hj-taken", Name: v1.RoleBindingName}, &rbacv1.RoleBinding{})
	})
	// The consent is used once: a Partner deleted and created again under
	// the same name does not inherit the namespace.
	eventually(t, 10*time.Second, "hand-over consent consumed", func() error {
		ns, err := getNamespace("hj-taken")
		if err != nil {
			return err
		}
		if v, ok := ns.Annotations[v1.AnnotationHandOverTo]; ok {
			return fmt.Errorf("annotation %s=%s still there", v1.AnnotationHandOverTo, v)
		}
		return nil
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

// TestForeignRefusalIsNotRoleNotBindable: a 403 that is not the RBAC
// escalation check — here a quota of the namespace's owner that allows no
// RoleBindings — fails that namespace only. Before, any 403 read as "role
// not bindable" and unbound the partner in every namespace.
func TestForeignRefusalIsNotRoleNotBindable(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	handed := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fq-b", Labels: map[string]string{v1.LabelPartner: "fq-p"},
		Annotations: map[string]string{v1.AnnotationHandOverTo: "fq-p"}}}
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
