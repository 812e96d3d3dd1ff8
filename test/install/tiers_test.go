package install_test

import (
	"context"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

const partnerUser = "alice"

// installTierRoles applies the real tier ClusterRoles from config/default.
func installTierRoles(t *testing.T) {
	t.Helper()
	objs := kustomizeDefault(t)
	for _, n := range tierRoleNames {
		applyReal(t, find(t, objs, "ClusterRole", n))
	}
}

// partnerNamespace sets up a namespace the way the operator grants it: the
// operator's labels, the ResourceQuota partner-entitlements counting
// Subscriptions, and the RoleBinding partner-access binding user to role.
func partnerNamespace(t *testing.T, name, partner, role, user string) {
	t.Helper()
	c := ctx(t)
	labels := map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: partner}
	nsLabels := map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: partner, v1.LabelState: "Granted"}
	objs := []client.Object{
		// The view the operator writes on a granted namespace, which the
		// admission policies read (they fail closed without it).
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: nsLabels,
			Annotations: map[string]string{v1.AnnotationPrefix + "phase": "Entitled", v1.AnnotationPrefix + "contract": "tiers-test"}}},
		&corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: v1.ResourceQuotaName, Namespace: name, Labels: labels},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
				v1.SubscriptionQuotaResource: resource.MustParse("5"),
			}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: v1.RoleBindingName, Namespace: name, Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
		},
	}
	for _, o := range objs {
		if err := admin.Create(c, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func subscription(ns, name string) *v1.Subscription {
	return &v1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1.SubscriptionSpec{Product: "Directory Server", Customer: "Example Corp"},
	}
}

// TestTierRolesAsPartnerUser binds each real tier ClusterRole to user alice
// in one partner namespace (as the operator would) and checks with real
// requests as alice what she can and cannot do there and next door.
func TestTierRolesAsPartnerUser(t *testing.T) {
	needCluster(t)
	installTierRoles(t)
	cfg, err := cluster.UserConfig(partnerUser)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}

	for _, tier := range []string{"ready", "advanced", "premier"} {
		t.Run(tier, func(t *testing.T) {
			c := ctx(t)
			role := v1.DefaultClusterRolePrefix + tier
			mine, other := "acme-"+tier, "globex-"+tier
			partnerNamespace(t, mine, "acme-"+tier, role, partnerUser)
			partnerNamespace(t, other, "globex-"+tier, role, "bob")

			// She can sell in her namespace: once the quota controller has
			// computed the quota's usage, the create goes through.
			if err := testcluster.Poll(60*time.Second, func() error {
				return alice.Create(c, subscription(mine, "first"))
			}); err != nil {
				t.Fatalf("alice cannot create a Subscription in %s: %v", mine, err)
			}
			expectOK(t, "get her Subscription", alice.Get(c, client.ObjectKey{Namespace: mine, Name: "first"}, &v1.Subscription{}))
			expectOK(t, "list Subscriptions", alice.List(c, &v1.SubscriptionList{}, client.InNamespace(mine)))
			expectOK(t, "read the quota", alice.Get(c, client.ObjectKey{Namespace: mine, Name: v1.ResourceQuotaName}, &corev1.ResourceQuota{}))
			expectOK(t, "list pods", alice.List(c, &corev1.PodList{}, client.InNamespace(mine)))
			expectOK(t, "get her namespace", alice.Get(c, client.ObjectKey{Name: mine}, &corev1.Namespace{}))

			// Not in another partner's namespace.
			expectRefused(t, "create a Subscription in "+other, alice.Create(c, subscription(other, "sneaky")))
			expectRefused(t, "list Subscriptions in "+other, alice.List(c, &v1.SubscriptionList{}, client.InNamespace(other)))

			// The quota that enforces her allowance is read-only.
			q := &corev1.ResourceQuota{}
			if err := admin.Get(c, client.ObjectKey{Namespace: mine, Name: v1.ResourceQuotaName}, q); err != nil {
				t.Fatal(err)
			}
			q.Spec.Hard[v1.SubscriptionQuotaResource] = resource.MustParse("1000")
			expectRefused(t, "update the ResourceQuota", alice.Update(c, q.DeepCopy()))
			expectRefused(t, "patch the ResourceQuota", alice.Patch(c, q.DeepCopy(), client.Merge))
			expectRefused(t, "delete the ResourceQuota", alice.Delete(c, q.DeepCopy()))
			expectRefused(t, "create another ResourceQuota", alice.Create(c, &corev1.ResourceQuota{
				ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: mine}}))

			// Her own access is not hers to change.
			rb := &rbacv1.RoleBinding{}
			if err := admin.Get(c, client.ObjectKey{Namespace: mine, Name: v1.RoleBindingName}, rb); err != nil {
				t.Fatal(err)
			}
			rb.Subjects = append(rb.Subjects, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: "User", Name: "mallory"})
			expectRefused(t, "update the RoleBinding partner-access", alice.Update(c, rb.DeepCopy()))
			expectRefused(t, "patch the RoleBinding partner-access", alice.Patch(c, rb.DeepCopy(), client.Merge))
			expectRefused(t, "delete the RoleBinding partner-access", alice.Delete(c, rb.DeepCopy()))
			for _, target := range []string{"cluster-admin", "admin", role} {
				expectRefused(t, "bind "+target, alice.Create(c, &rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: "grab-" + target, Namespace: mine},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: target},
					Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: partnerUser}},
				}))
			}
			expectRefused(t, "create a Role", alice.Create(c, &rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: mine},
				Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}},
			}))
			ns := &corev1.Namespace{}
			if err := admin.Get(c, client.ObjectKey{Name: mine}, ns); err != nil {
				t.Fatal(err)
			}
			ns.Labels[v1.LabelPartner] = "someone-else"
			expectRefused(t, "relabel her namespace", alice.Update(c, ns.DeepCopy()))
			expectRefused(t, "delete her namespace", alice.Delete(c, ns.DeepCopy()))

			// No way around RBAC: neither bind, escalate nor impersonate.
			for _, ra := range []authorizationv1.ResourceAttributes{
				{Namespace: mine, Verb: "bind", Group: rbacv1.GroupName, Resource: "clusterroles", Name: "cluster-admin"},
				{Namespace: mine, Verb: "bind", Group: rbacv1.GroupName, Resource: "clusterroles", Name: role},
				{Namespace: mine, Verb: "escalate", Group: rbacv1.GroupName, Resource: "roles"},
				{Namespace: mine, Verb: "impersonate", Resource: "serviceaccounts", Name: "default"},
				{Verb: "impersonate", Resource: "users", Name: "admin"},
				{Namespace: mine, Verb: "create", Resource: "serviceaccounts/token", Name: "default"},
				{Verb: "list", Resource: "namespaces"},
				{Verb: "create", Resource: "namespaces"},
			} {
				if ok := selfCan(t, alice, ra); ok {
					t.Errorf("alice may %s %s/%s %s in %q", ra.Verb, ra.Group, ra.Resource, ra.Name, ra.Namespace)
				}
			}

			// What the tier is for.
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: mine}, Data: map[string]string{"a": "b"}}
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: mine}, StringData: map[string]string{"a": "b"}}
			np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: mine},
				Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
			switch tier {
			case "ready":
				expectRefused(t, "create a ConfigMap", alice.Create(c, cm))
				expectRefused(t, "list Secrets", alice.List(c, &corev1.SecretList{}, client.InNamespace(mine)))
				expectRefused(t, "update her Subscription", alice.Update(c, subscription(mine, "first")))
			case "advanced":
				expectOK(t, "create a ConfigMap", alice.Create(c, cm))
				expectOK(t, "create a Secret", alice.Create(c, secret))
				expectRefused(t, "create a NetworkPolicy", alice.Create(c, np))
				expectRefused(t, "list RoleBindings", alice.List(c, &rbacv1.RoleBindingList{}, client.InNamespace(mine)))
			case "premier":
				expectOK(t, "create a ConfigMap", alice.Create(c, cm))
				expectOK(t, "create a NetworkPolicy", alice.Create(c, np))
				expectOK(t, "create a ServiceAccount", alice.Create(c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ci", Namespace: mine}}))
				expectOK(t, "list RoleBindings", alice.List(c, &rbacv1.RoleBindingList{}, client.InNamespace(mine)))
			}
			expectOK(t, "delete her Subscription", alice.Delete(c, subscription(mine, "first")))
		})
	}
}

func expectOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("alice should be able to %s: %v", what, err)
	}
}

func expectRefused(t *testing.T, what string, err error) {
	t.Helper()
	if e := forbiddenByRBAC(err, partnerUser); e != nil {
		t.Errorf("alice must not %s: %v", what, e)
	}
}

func selfCan(t *testing.T, c client.Client, ra authorizationv1.ResourceAttributes) bool {
	t.Helper()
	r := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}
	if err := c.Create(context.Background(), r); err != nil {
		t.Fatalf("SelfSubjectAccessReview %+v: %v", ra, err)
	}
	return r.Status.Allowed
}
