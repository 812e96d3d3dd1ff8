package controllers_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// TestGitOpsInstallIsUsableWhenReady installs the CRDs on a fresh cluster
// and at once the contract and partners, as one Argo CD sync does.
// kube-controller-manager (stock 5-minute quota resync) syncs the new
// quotas before its discovery knows the Subscription CRD, so it cannot
// count them; the API server refuses every Subscription until it does.
// The partners must not be Ready before a Subscription is admitted, and
// must get there well within the resync.
func TestGitOpsInstallIsUsableWhenReady(t *testing.T) {
	needCluster(t)
	if testing.Short() {
		t.Skip("needs its own control plane")
	}
	root, err := testcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// As config/default installs it: without config/admission-finalizer,
	// whose policy refuses Partners (503) for the seconds it takes the API
	// server to learn a new CRD's schema (docs/operations.md).
	fresh := testcluster.StartForTest(t, testcluster.Options{CRDDirs: []string{t.TempDir()},
		ManifestDirs: []string{filepath.Join(root, "config", "admission")}})
	c, err := client.New(fresh.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	waitForQuotaDiscovery(t, fresh, c)
	start := time.Now()
	if _, err := envtest.InstallCRDs(fresh.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join(root, "config", "crd", "bases")}}); err != nil {
		t.Fatal(err)
	}
	m, err := testenv.StartManager(fresh.Config, testenv.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	bg := context.Background()
	for _, r := range testenv.TierRoles() {
		if err := c.Create(bg, r); err != nil {
			t.Fatal(err)
		}
	}
	contract := openContract("gi-c", testenv.Tier(v1.TierReady, 3, 1))
	if err := c.Create(bg, contract); err != nil {
		t.Fatal(err)
	}
	const n = 3
	for i := range n {
		p := testenv.Partner(fmt.Sprintf("gi-p%d", i), v1.TierReady, "DE", []string{contract.Name}, fmt.Sprintf("gi-%d", i))
		if err := c.Create(bg, p); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		name, ns := fmt.Sprintf("gi-p%d", i), fmt.Sprintf("gi-%d", i)
		var readyAt time.Time
		var sawPending bool
		if err := testcluster.Poll(90*time.Second, func() error {
			p := &v1.Partner{}
			if err := c.Get(bg, types.NamespacedName{Name: name}, p); err != nil {
				return err
			}
			for _, s := range p.Status.Namespaces {
				if s.State == v1.NamespacePending {
					sawPending = true
				}
			}
			r := condition(p.Status.Conditions, v1.ConditionReady)
			if r == nil || r.Status != metav1.ConditionTrue {
				return fmt.Errorf("Ready %+v", r)
			}
			readyAt = time.Now()
			return nil
		}); err != nil {
			t.Fatalf("partner %s: %v", name, err)
		}
		// Ready means usable: a Subscription within the limit is admitted
		// at once (no retry needed).
		if err := c.Create(bg, newSubscription(ns, "first")); err != nil {
			t.Errorf("partner %s Ready %.1fs after the CRDs, yet its first Subscription was refused: %v", name, readyAt.Sub(start).Seconds(), err)
		}
		t.Logf("partner %s: Ready %.1fs after the CRDs were applied (saw Pending: %v)", name, readyAt.Sub(start).Seconds(), sawPending)
	}
}

// waitForQuotaDiscovery returns once kube-controller-manager's quota
// controller has run a discovery pass (it counts a CRD created after it
// started), so that CRDs installed next are unknown to it until its next
// pass, 30 s later: the window a GitOps install falls into.
func waitForQuotaDiscovery(t *testing.T, cl *testcluster.Cluster, c client.Client) {
	t.Helper()
	bg := context.Background()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.probe.test"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "probe.test", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}}}},
		},
	}
	if err := c.Create(bg, crd); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "quota-probe"}}); err != nil {
		t.Fatal(err)
	}
	const res = "count/widgets.probe.test"
	if err := testcluster.Poll(90*time.Second, func() error {
		// A fresh quota each try: one synced before the discovery pass
		// would not be counted until the full resync.
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "quota-probe", GenerateName: "probe-"},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{res: resource.MustParse("1")}}}
		if err := c.Create(bg, q); err != nil {
			return err
		}
		return testcluster.Poll(2*time.Second, func() error {
			got := &corev1.ResourceQuota{}
			if err := c.Get(bg, client.ObjectKeyFromObject(q), got); err != nil {
				return err
			}
			if _, ok := got.Status.Used[res]; !ok {
				return fmt.Errorf("kube-controller-manager does not count %s yet", res)
			}
			return nil
		})
	}); err != nil {
		t.Fatalf("waiting for kube-controller-manager's quota discovery: %v", err)
	}
}

// TestRelabelledNamespaceIsRevoked relabels a partner's namespace (for
// another partner, or with no label): the operator marks it Conflict, and
// takes out what it put there for the partner — the binding goes, its quota
// admits nothing — so that revoking the partner later leaves nothing behind
// that nobody reconciles.
func TestRelabelledNamespaceIsRevoked(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{StalledRecheck: time.Second})
	c := openContract("rl-c", testenv.Tier(v1.TierAdvanced, 6, 2))
	p := testenv.Partner("rl-p", v1.TierAdvanced, "DE", []string{c.Name}, "rl-a", "rl-b")
	create(t, c, p)
	eventually(t, 20*time.Second, "Ready", partnerReady(p.Name))
	for ns, owner := range map[string]string{"rl-a": "someone-else", "rl-b": ""} {
		got, err := getNamespace(ns)
		if err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(got.DeepCopy())
		if owner == "" {
			delete(got.Labels, v1.LabelPartner)
		} else {
			got.Labels[v1.LabelPartner] = owner
		}
		if err := k8s.Patch(ctx(t), got, patch); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"rl-a", "rl-b"} {
		eventually(t, 20*time.Second, "binding gone from relabelled "+ns, notFound(&rbacv1.RoleBinding{}, ns, v1.RoleBindingName))
		eventually(t, 20*time.Second, "quota closed in relabelled "+ns, quotaSettled(ns, 0))
		refusedOverQuota(t, ns, "after-relabel")
	}
	// The status is written after the children, in the same reconcile.
	eventually(t, 10*time.Second, "both relabelled namespaces Conflict in status", func() error {
		for _, n := range getPartner(t, p.Name).Status.Namespaces {
			if n.State != v1.NamespaceConflict {
				return fmt.Errorf("relabelled namespace %s: want Conflict, got %s", n.Name, n.State)
			}
		}
		return nil
	})
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Suspended = true })
	eventually(t, 10*time.Second, "Suspended", partnerPhase(t, p.Name, v1.PartnerSuspended, ""))
	consistently(t, 2*time.Second, "no binding comes back", func() error {
		for _, ns := range []string{"rl-a", "rl-b"} {
			if err := notFound(&rbacv1.RoleBinding{}, ns, v1.RoleBindingName)(); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestForeignBindingIsReplaced replaces the partner's RoleBinding, while the
// manager is down, with one of the same name bound to cluster-admin and
// without the operator's labels. The restarted manager must converge: the
// foreign binding is replaced by the partner's own, with an event.
func TestForeignBindingIsReplaced(t *testing.T) {
	needCluster(t)
	m := startManager(t, testenv.ManagerOptions{})
	c := openContract("fb-c", testenv.Tier(v1.TierReady, 3, 1))
	p := testenv.Partner("fb-p", v1.TierReady, "DE", []string{c.Name}, "fb-a")
	create(t, c, p)
	eventually(t, 20*time.Second, "Ready", partnerReady(p.Name))
	m.Stop()
	rb := &rbacv1.RoleBinding{}
	if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: "fb-a", Name: v1.RoleBindingName}, rb); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx(t), rb); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "own binding gone", notFound(&rbacv1.RoleBinding{}, "fb-a", v1.RoleBindingName))
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "fb-a", Name: v1.RoleBindingName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "fb-p-admins"}},
	})
	startManager(t, testenv.ManagerOptions{})
	eventually(t, 20*time.Second, "foreign binding replaced by the partner's own", func() error {
		got := &rbacv1.RoleBinding{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: "fb-a", Name: v1.RoleBindingName}, got); err != nil {
			return err
		}
		if got.RoleRef.Name != "entitlements-partner-ready" || got.Labels[v1.LabelPartner] != p.Name {
			return fmt.Errorf("roleRef %s labels %v", got.RoleRef.Name, got.Labels)
		}
		return nil
	})
	eventually(t, 10*time.Second, "ForeignBindingReplaced event", hasEvent("Partner", p.Name, v1.EventForeignBindingReplaced))
	eventually(t, 10*time.Second, "Ready again", partnerReady(p.Name))
}

// TestEscapingRoleIsNotBound labels bindable a ClusterRole that lets its
// holders create RoleBindings — a subset of the operator's own rules, so
// the API server's escalation check would let the operator bind it. The
// operator must refuse it itself.
func TestEscapingRoleIsNotBound(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{StalledRecheck: time.Second})
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "er-backdoor", Labels: map[string]string{v1.LabelBindable: "true"}},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"subscriptions"}, Verbs: []string{"create", "get", "list"}},
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, Verbs: []string{"create"}},
		},
	}
	ent := testenv.Tier(v1.TierReady, 3, 1)
	ent.ClusterRole = role.Name
	c := openContract("er-c", ent)
	p := testenv.Partner("er-p", v1.TierReady, "DE", []string{c.Name}, "er-a")
	create(t, role, c, p)
	eventually(t, 20*time.Second, "Stalled RoleNotBindable naming the rule", func() error {
		got := getPartner(t, p.Name)
		st := condition(got.Status.Conditions, v1.ConditionStalled)
		if st == nil || st.Status != metav1.ConditionTrue || st.Reason != v1.ReasonRoleNotBindable || !strings.Contains(st.Message, "write on rolebindings") {
			return fmt.Errorf("Stalled %+v", st)
		}
		return nil
	})
	consistently(t, 2*time.Second, "no binding to the escaping role", notFound(&rbacv1.RoleBinding{}, "er-a", v1.RoleBindingName))
	eventually(t, 10*time.Second, "RoleNotBindable event", hasEvent("Partner", p.Name, v1.EventRoleNotBindable))
	// The quota still holds: nothing can be sold without access anyway.
	q := &corev1.ResourceQuota{}
	if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: "er-a", Name: v1.ResourceQuotaName}, q); err != nil {
		t.Errorf("quota in er-a: %v", err)
	}
}

// TestPartnerSeesItsEntitlement: a partner's people cannot read the
// cluster-scoped Partner, but their namespace shows them their entitlement
// (and no one else's).
func TestPartnerSeesItsEntitlement(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	ends := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	ending := testenv.Contract("pv-ending", "Bytec", "DE", time.Now().Add(-time.Hour), ends, time.Hour, 0, testenv.Tier(v1.TierReady, 7, 1))
	next := openContract("pv-next", testenv.Tier(v1.TierReady, 3, 1))
	p := testenv.Partner("pv-p", v1.TierReady, "DE", []string{ending.Name, next.Name}, "pv-a")
	other := testenv.Partner("pv-other", v1.TierReady, "DE", []string{next.Name}, "pv-other")
	create(t, ending, next, p, other)
	eventually(t, 20*time.Second, "Ready", partnerReady(p.Name))
	eventually(t, 20*time.Second, "other Ready", partnerReady(other.Name))
	cfg, err := cluster.UserConfig("jane@pv", p.Name+"-admins")
	if err != nil {
		t.Fatal(err)
	}
	user, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"phase": "Entitled", "contract": ending.Name, "subscriptions-limit": "7",
		"entitled-until": ends.Format(time.RFC3339), "next": "fail over to pv-next at " + ends.Format(time.RFC3339),
	}
	eventually(t, 20*time.Second, "the partner's user reads its entitlement on its namespace", func() error {
		ns := &corev1.Namespace{}
		if err := user.Get(context.Background(), client.ObjectKey{Name: "pv-a"}, ns); err != nil {
			return err
		}
		for k, v := range want {
			if got := ns.Annotations[v1.AnnotationPrefix+k]; got != v {
				return fmt.Errorf("annotation %s = %q, want %q", k, got, v)
			}
		}
		return nil
	})
	if err := user.Get(ctx(t), client.ObjectKey{Name: "pv-other"}, &corev1.Namespace{}); !apierrors.IsForbidden(err) {
		t.Errorf("another partner's namespace: want Forbidden, got %v", err)
	}
	if err := user.Get(ctx(t), client.ObjectKey{Name: p.Name}, &v1.Partner{}); !apierrors.IsForbidden(err) {
		t.Errorf("the cluster-scoped Partner: want Forbidden, got %v", err)
	}
	// Suspended: the view says so, and drops what no longer holds.
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Suspended = true })
	eventually(t, 20*time.Second, "the view follows the suspension", func() error {
		ns, err := getNamespace("pv-a")
		if err != nil {
			return err
		}
		if ns.Annotations[v1.AnnotationPrefix+"phase"] != "Suspended" || ns.Annotations[v1.AnnotationPrefix+"contract"] != "" ||
			ns.Annotations[v1.AnnotationPrefix+"next"] != "" || ns.Annotations[v1.AnnotationPrefix+"subscriptions-limit"] != "0" {
			return fmt.Errorf("annotations %v", ns.Annotations)
		}
		return nil
	})
}
