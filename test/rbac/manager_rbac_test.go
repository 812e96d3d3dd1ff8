// Package rbac_test runs the operator with exactly the ClusterRole it ships
// (config/rbac/role.yaml, generated from the controllers' RBAC markers),
// impersonating its ServiceAccount — not as admin — and drives its whole job:
// grant, fail over, revoke, delete. If a permission were missing, a step
// would fail; if the role had a wildcard, the check here would.
package rbac_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

const (
	saNamespace = "entitlement-system"
	saName      = "controller-manager"
)

func readClusterRole(t *testing.T, path string) *rbacv1.ClusterRole {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(b, r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}

func TestManagerRoleHasNoWildcard(t *testing.T) {
	root, err := testcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	role := readClusterRole(t, filepath.Join(root, "config", "rbac", "role.yaml"))
	tiers := []string{"entitlements-partner-ready", "entitlements-partner-advanced", "entitlements-partner-premier"}
	for i, r := range role.Rules {
		for _, list := range [][]string{r.Verbs, r.Resources, r.APIGroups, r.ResourceNames} {
			if slices.Contains(list, "*") {
				t.Errorf("rule %d has a wildcard: %+v", i, r)
			}
		}
		for _, v := range []string{"bind", "escalate", "impersonate"} {
			if !slices.Contains(r.Verbs, v) {
				continue
			}
			if v != "bind" {
				t.Errorf("rule %d grants %s: %+v", i, v, r)
				continue
			}
			rn := slices.Clone(r.ResourceNames)
			slices.Sort(rn)
			want := slices.Clone(tiers)
			slices.Sort(want)
			if !slices.Equal(rn, want) || !slices.Equal(r.Resources, []string{"clusterroles"}) {
				t.Errorf("rule %d: bind must be limited to the tier ClusterRoles by name, got %+v", i, r)
			}
		}
	}
}

func TestManagerWorksWithItsOwnRBAC(t *testing.T) {
	c := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := client.New(c.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := testcluster.RepoRoot()

	// What config/default installs: the generated role, bound to the
	// ServiceAccount, and the real tier roles.
	role := readClusterRole(t, filepath.Join(root, "config", "rbac", "role.yaml"))
	role.Name = "entitlement-operator-manager-role"
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: saNamespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: saNamespace, Name: saName}},
		role,
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "entitlement-operator-manager-rolebinding"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: saNamespace, Name: saName}},
		},
	}
	tierFiles, _ := filepath.Glob(filepath.Join(root, "config", "rbac", "tiers", "partner_*_role.yaml"))
	if len(tierFiles) != 3 {
		t.Fatalf("want 3 tier roles in config/rbac/tiers, found %v", tierFiles)
	}
	for _, f := range tierFiles {
		objs = append(objs, readClusterRole(t, f))
	}
	for _, o := range objs {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}

	// The manager, as its ServiceAccount.
	asSA := rest.CopyConfig(c.Config)
	asSA.Impersonate = rest.ImpersonationConfig{
		UserName: fmt.Sprintf("system:serviceaccount:%s:%s", saNamespace, saName),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + saNamespace, "system:authenticated"},
	}
	m, err := testenv.StartManager(asSA, testenv.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	// Sanity: the impersonated identity is really not an admin.
	saClient, _ := client.New(asSA, client.Options{Scheme: controllers.NewScheme()})
	if err := saClient.List(ctx, &corev1.SecretList{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the ServiceAccount can list Secrets (err %v): the test would prove nothing", err)
	}

	poll := func(what string, f func() error) {
		t.Helper()
		if err := testcluster.Poll(20*time.Second, f); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	phase := func(name string, want v1.PartnerPhase, contract string) func() error {
		return func() error {
			p := &v1.Partner{}
			if err := admin.Get(ctx, types.NamespacedName{Name: name}, p); err != nil {
				return err
			}
			if p.Status.Phase != want || p.Status.Contract != contract {
				return fmt.Errorf("phase %s contract %s; conditions %+v", p.Status.Phase, p.Status.Contract, p.Status.Conditions)
			}
			return nil
		}
	}
	rbExists := func(ns string, want bool) func() error {
		return func() error {
			err := admin.Get(ctx, types.NamespacedName{Namespace: ns, Name: v1.RoleBindingName}, &rbacv1.RoleBinding{})
			if want {
				return err
			}
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("RoleBinding in %s still there (%v)", ns, err)
		}
	}

	// Grant, on each tier's real role. The first contract is open-ended
	// until every grant is seen, then ends a few seconds ahead: no race
	// between a slow start and a fixed end.
	first := testenv.Contract("bytec-de", "Bytec", "DE", time.Now().Add(-time.Hour), time.Time{}, time.Second, 0, testenv.AllTiers(5, 1)...)
	second := testenv.Contract("magirus-de", "Magirus", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierAdvanced, 5, 1))
	failover := testenv.Partner("acme", v1.TierAdvanced, "DE", []string{first.Name, second.Name}, "acme-prod")
	revoked := testenv.Partner("hansa", v1.TierReady, "DE", []string{first.Name}, "hansa-prod")
	premier := testenv.Partner("elbe", v1.TierPremier, "DE", []string{first.Name}, "elbe-prod")
	premier.Spec.DeletionPolicy = v1.DeletionDelete
	for _, o := range []client.Object{first, second, failover, revoked, premier} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*v1.Partner{failover, revoked, premier} {
		poll("grant "+p.Name, phase(p.Name, v1.PartnerEntitled, first.Name))
		poll("RoleBinding of "+p.Name, rbExists(string(p.Spec.Namespaces[0]), true))
	}
	rb := &rbacv1.RoleBinding{}
	if err := admin.Get(ctx, types.NamespacedName{Namespace: "elbe-prod", Name: v1.RoleBindingName}, rb); err != nil || rb.RoleRef.Name != "entitlements-partner-premier" {
		t.Fatalf("premier binding: %v %+v", err, rb.RoleRef)
	}

	// Fail over and revoke at the contract's end.
	cur := &v1.DistributorContract{}
	if err := admin.Get(ctx, types.NamespacedName{Name: first.Name}, cur); err != nil {
		t.Fatal(err)
	}
	// A merge patch: the operator writes the contract's status meanwhile.
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.EndsAt = &metav1.Time{Time: time.Now().Truncate(time.Second).Add(3 * time.Second)}
	if err := admin.Patch(ctx, cur, patch); err != nil {
		t.Fatal(err)
	}
	poll("fail over", phase(failover.Name, v1.PartnerEntitled, second.Name))
	poll("revoke", phase(revoked.Name, v1.PartnerRevoked, ""))
	poll("revoked binding gone", rbExists("hansa-prod", false))

	// Delete: Retain keeps the namespace, Delete removes the one it created.
	if err := admin.Delete(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	if err := admin.Delete(ctx, premier); err != nil {
		t.Fatal(err)
	}
	poll("partners gone", func() error {
		for _, n := range []string{revoked.Name, premier.Name} {
			if err := admin.Get(ctx, types.NamespacedName{Name: n}, &v1.Partner{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("partner %s still there (%v)", n, err)
			}
		}
		return nil
	})
	poll("Delete policy namespace terminating or gone", func() error {
		ns := &corev1.Namespace{}
		err := admin.Get(ctx, types.NamespacedName{Name: "elbe-prod"}, ns)
		if apierrors.IsNotFound(err) || (err == nil && !ns.DeletionTimestamp.IsZero()) {
			return nil
		}
		return fmt.Errorf("elbe-prod still active (%v)", err)
	})
	ns := &corev1.Namespace{}
	if err := admin.Get(ctx, types.NamespacedName{Name: "hansa-prod"}, ns); err != nil || !ns.DeletionTimestamp.IsZero() {
		t.Errorf("Retain namespace hansa-prod must be kept: %v", err)
	}

	// Nothing the manager asked for was refused.
	if n := m.Forbidden.Load(); n != 0 {
		t.Errorf("the API server refused %d of the manager's requests (403): its ClusterRole is missing a permission", n)
	}
	t.Logf("manager as its ServiceAccount: %d requests, %d writes, %d refused", m.Requests.Load(), m.Writes.Load(), m.Forbidden.Load())

	// A contract naming a role labelled bindable that the manager may not
	// bind (it holds neither bind on it nor its permissions): the API
	// server's escalation check refuses the binding, and the partner is
	// Stalled RoleNotBindable with nothing bound.
	custom := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "partner-custom", Labels: map[string]string{v1.LabelBindable: "true"}},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}},
	}
	ent := testenv.Tier(v1.TierReady, 2, 1)
	ent.ClusterRole = custom.Name
	customContract := testenv.Contract("custom-de", "Bytec", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, ent)
	kiel := testenv.Partner("kiel", v1.TierReady, "DE", []string{customContract.Name}, "kiel-prod")
	for _, o := range []client.Object{custom, customContract, kiel} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	poll("kiel Stalled: the API server refused the binding", func() error {
		p := &v1.Partner{}
		if err := admin.Get(ctx, types.NamespacedName{Name: kiel.Name}, p); err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1.ConditionStalled && c.Status == metav1.ConditionTrue && c.Reason == v1.ReasonRoleNotBindable &&
				strings.Contains(c.Message, "may not bind ClusterRole partner-custom") {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", p.Status.Conditions)
	})
	poll("nothing bound in kiel-prod", rbExists("kiel-prod", false))
	if m.Forbidden.Load() == 0 {
		t.Error("no 403 seen: the refusal did not come from the API server")
	}
}
