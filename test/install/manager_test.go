package install_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// TestManagerWithInstalledRBAC runs the operator's controllers as the
// ServiceAccount of config/default, with only the RBAC the install gives it
// (the manager ClusterRole, its binding, and the real tier roles), and
// drives a partner through grant, suspension and deletion: any rule missing
// from config/rbac/role.yaml shows up here as a failure.
func TestManagerWithInstalledRBAC(t *testing.T) {
	needCluster(t)
	c := ctx(t)
	objs := kustomizeDefault(t)
	ensureNamespace(t, installNamespace, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	installTierRoles(t)
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRoleBinding", "Role", "RoleBinding":
			applyReal(t, o)
		case "ClusterRole":
			if o.GetName() == prefix+"manager-role" {
				applyReal(t, o)
			}
		}
	}
	sa := fmt.Sprintf("system:serviceaccount:%s:%scontroller-manager", installNamespace, prefix)
	cfg, err := cluster.UserConfig(sa, "system:serviceaccounts", "system:serviceaccounts:"+installNamespace, "system:authenticated")
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := testenv.StartManager(cfg, testenv.ManagerOptions{})
	if err != nil {
		t.Fatalf("the manager does not start with the installed RBAC: %v", err)
	}
	t.Cleanup(mgr.Stop)

	now := time.Now()
	contract := testenv.Contract("install-test-de", "Bytec", "DE", now.Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(10, 2)...)
	if err := admin.Create(c, contract); err != nil {
		t.Fatal(err)
	}
	p := testenv.Partner("initech", v1.TierPremier, "DE", []string{contract.Name}, "initech-prod")
	p.Spec.Access = []v1.Subject{{Kind: v1.SubjectUser, Name: "carol"}}
	p.Spec.DeletionPolicy = v1.DeletionDelete
	if err := admin.Create(c, p); err != nil {
		t.Fatal(err)
	}
	waitPhase := func(want v1.PartnerPhase) {
		t.Helper()
		if err := testcluster.Poll(60*time.Second, func() error {
			got := &v1.Partner{}
			if err := admin.Get(c, client.ObjectKey{Name: p.Name}, got); err != nil {
				return err
			}
			if got.Status.Phase != want || !meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionReady) || got.Status.ObservedGeneration != got.Generation {
				return fmt.Errorf("partner phase %q, conditions %+v", got.Status.Phase, got.Status.Conditions)
			}
			return nil
		}); err != nil {
			t.Fatalf("waiting for phase %s: %v", want, err)
		}
	}
	waitPhase(v1.PartnerEntitled)

	rb := &rbacv1.RoleBinding{}
	if err := admin.Get(c, client.ObjectKey{Namespace: "initech-prod", Name: v1.RoleBindingName}, rb); err != nil {
		t.Fatal(err)
	}
	if rb.RoleRef.Name != v1.DefaultClusterRolePrefix+"premier" {
		t.Errorf("partner-access binds %s", rb.RoleRef.Name)
	}
	carolCfg, err := cluster.UserConfig("carol")
	if err != nil {
		t.Fatal(err)
	}
	carol, err := client.New(carolCfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := testcluster.Poll(60*time.Second, func() error {
		return carol.Create(c, subscription("initech-prod", "deal-1"))
	}); err != nil {
		t.Fatalf("carol cannot sell in her granted namespace: %v", err)
	}

	// Suspension revokes: the operator deletes the RoleBinding.
	if err := admin.Get(c, client.ObjectKey{Name: p.Name}, p); err != nil {
		t.Fatal(err)
	}
	// A merge patch: the operator writes the Partner's status meanwhile.
	suspend := client.MergeFrom(p.DeepCopy())
	p.Spec.Suspended = true
	if err := admin.Patch(c, p, suspend); err != nil {
		t.Fatal(err)
	}
	waitPhase(v1.PartnerSuspended)
	if err := testcluster.Poll(30*time.Second, func() error {
		return forbiddenByRBAC(carol.Create(c, subscription("initech-prod", "deal-2")), "carol")
	}); err != nil {
		t.Errorf("after suspension: %v", err)
	}

	// Deletion with deletionPolicy Delete: the manager removes the namespace
	// it created and its finalizer.
	if err := admin.Delete(c, p); err != nil {
		t.Fatal(err)
	}
	if err := testcluster.Poll(60*time.Second, func() error {
		err := admin.Get(c, client.ObjectKey{Name: p.Name}, &v1.Partner{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("partner still there: %v", err)
	}); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{}
	if err := admin.Get(c, client.ObjectKey{Name: "initech-prod"}, ns); err == nil && ns.DeletionTimestamp.IsZero() {
		t.Errorf("namespace initech-prod not being deleted after its Partner (deletionPolicy Delete)")
	}
}
