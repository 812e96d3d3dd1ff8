package install_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

const fieldOwner = client.FieldOwner("install-test")

// TestKustomizeDryRun installs config/default: the Namespace and the CRDs for
// real, then every other object with a server-side dry run (full
// validation and admission, nothing stored).
func TestKustomizeDryRun(t *testing.T) {
	needCluster(t)
	dryRunInstall(t, kustomizeDefault(t))
}

// TestChartDryRun does the same with the Helm chart's rendering (CRDs from
// its crds/ directory), into the release namespace.
func TestChartDryRun(t *testing.T) {
	needCluster(t)
	dryRunInstall(t, chartDefault(t))
}

func dryRunInstall(t *testing.T, objs []*unstructured.Unstructured) {
	c := ctx(t)
	var rest []*unstructured.Unstructured
	haveNS := false
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace":
			haveNS = true
			applyReal(t, o)
		case "CustomResourceDefinition":
			applyReal(t, o)
		default:
			rest = append(rest, o)
		}
	}
	if !haveNS {
		// Helm: `--create-namespace`, labelled as docs/operations.md says.
		ensureNamespace(t, installNamespace, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	}
	for _, o := range ofKind(objs, "CustomResourceDefinition") {
		crd := fromUnstructured[apiextensionsv1.CustomResourceDefinition](t, o)
		gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: crd.Spec.Versions[0].Name, Resource: crd.Spec.Names.Plural}
		if err := testcluster.Poll(30*time.Second, func() error { return cluster.CRDEstablished(c, gvr) }); err != nil {
			t.Fatal(err)
		}
	}
	if len(rest) < 10 {
		t.Fatalf("only %d objects besides namespaces and CRDs", len(rest))
	}
	for _, o := range rest {
		if o.GetNamespace() == "" && isNamespaced(t, o) {
			t.Errorf("%s has no namespace", id(o))
			continue
		}
		if err := dryRunCreate(t, o); err != nil {
			t.Errorf("dry-run create %s: %v", id(o), err)
		}
	}

	// The Deployment's pod passes the namespace's Pod Security admission
	// (restricted is enforced on pods, not on Deployments).
	for _, o := range ofKind(objs, "Deployment") {
		d := fromUnstructured[appsv1.Deployment](t, o)
		if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "" {
			ensureServiceAccount(t, d.Namespace, sa)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "pod-security-check", Namespace: d.Namespace, Labels: d.Spec.Template.Labels},
			Spec:       d.Spec.Template.Spec,
		}
		if err := admin.Create(c, pod, client.DryRunAll); err != nil {
			t.Errorf("the manager's pod is refused in namespace %s: %v", d.Namespace, err)
		}
		ns := &corev1.Namespace{}
		if err := admin.Get(c, client.ObjectKey{Name: d.Namespace}, ns); err != nil {
			t.Fatal(err)
		}
		if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("namespace %s does not enforce restricted Pod Security: the check above proves little", d.Namespace)
		}
	}
}

func isNamespaced(t *testing.T, o *unstructured.Unstructured) bool {
	t.Helper()
	namespaced, err := admin.IsObjectNamespaced(o)
	if err != nil {
		t.Fatalf("%s: %v", id(o), err)
	}
	return namespaced
}

// dryRunCreate creates o with dryRun=All, or, if an object of that name
// exists already (created for real by another test), applies it with
// dryRun=All.
func dryRunCreate(t *testing.T, o *unstructured.Unstructured) error {
	c := ctx(t)
	err := admin.Create(c, o.DeepCopy(), client.DryRunAll, fieldOwner)
	if apierrors.IsAlreadyExists(err) {
		err = admin.Apply(c, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.DryRunAll, fieldOwner, client.ForceOwnership)
	}
	return err
}

// applyReal server-side applies o for real.
func applyReal(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	if err := admin.Apply(ctx(t), client.ApplyConfigurationFromUnstructured(o.DeepCopy()), fieldOwner, client.ForceOwnership); err != nil {
		t.Fatalf("applying %s: %v", id(o), err)
	}
}

func ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := admin.Create(ctx(t), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func ensureServiceAccount(t *testing.T, namespace, name string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if err := admin.Create(ctx(t), sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// forbiddenByRBAC reports whether err is the authorizer's refusal of user
// (not a quota or validation error, which are also 403 or 422).
func forbiddenByRBAC(err error, user string) error {
	if err == nil {
		return fmt.Errorf("allowed, want forbidden")
	}
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), fmt.Sprintf("User %q cannot", user)) {
		return fmt.Errorf("got %v, want an RBAC refusal of %s", err, user)
	}
	return nil
}
