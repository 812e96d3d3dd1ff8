package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// TestStatusIsAtomicAcrossTheUpgrade: status is one atomic field for
// server-side apply, so a status write leaves a single f:status in
// managedFields (it listed every condition and namespace field, half of
// each Partner write's bytes). A Partner written under the previous CRD,
// whose status was granular, stays writable once the CRD is upgraded, and
// its next status write drops the old per-field entries. The CRD is a copy
// of the Partner's under another group, so the package's other tests keep
// theirs.
func TestStatusIsAtomicAcrossTheUpgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	current := readCRDs(t)["Partner"]
	status := current.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"]
	if status.XMapType == nil || *status.XMapType != "atomic" {
		t.Fatalf("Partner status x-kubernetes-map-type %v, want atomic", status.XMapType)
	}

	const g = "atomic-upgrade.partnerops.io"
	crd := current.DeepCopy()
	crd.Name, crd.Spec.Group = "partners."+g, g
	previous := crd.DeepCopy()
	prevStatus := previous.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"]
	prevStatus.XMapType = nil // the previous release's granular status
	previous.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"] = prevStatus

	ext, err := apiextensionsclient.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	crds := ext.ApiextensionsV1().CustomResourceDefinitions()
	if _, err := crds.Create(ctx, previous, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Gone before the next test: while it is being deleted its kind
		// Partner and category entitlements are still served, and
		// TestDiscovery would find two of each.
		_ = crds.Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
		if err := testcluster.Poll(time.Minute, func() error {
			_, err := crds.Get(context.Background(), crd.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("CRD %s still there (err %v)", crd.Name, err)
		}); err != nil {
			t.Error(err)
		}
	})
	gvr := schema.GroupVersionResource{Group: g, Version: "v1alpha1", Resource: "partners"}
	partners := dyn.Resource(gvr)
	p := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": g + "/v1alpha1", "kind": "Partner",
		"metadata": map[string]any{"name": "upgraded"},
		"spec": map[string]any{"tier": "Ready", "region": "DE", "contracts": []any{"c"}, "namespaces": []any{"upgraded-ns"},
			"access": []any{map[string]any{"kind": "Group", "name": "upgraded-admins"}}},
	}}
	// The CRD is served a moment after it is created.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := partners.Create(ctx, p, metav1.CreateOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("creating the partner under the previous CRD: %v", err)
	}
	statusPatch := func(phase string) *unstructured.Unstructured {
		t.Helper()
		patch, _ := json.Marshal(map[string]any{"status": map[string]any{"phase": phase, "observedGeneration": 1,
			"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "Reconciled", "message": phase,
				"lastTransitionTime": "2026-12-01T12:00:00Z", "observedGeneration": 1}}}})
		got, err := partners.Patch(ctx, "upgraded", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "entitlement-operator"}, "status")
		if err != nil {
			t.Fatalf("status patch (%s): %v", phase, err)
		}
		return got
	}
	statusFields := func(u *unstructured.Unstructured) string {
		for _, m := range u.GetManagedFields() {
			if m.Subresource == "status" && m.FieldsV1 != nil {
				return string(m.FieldsV1.Raw)
			}
		}
		return ""
	}
	before := statusFields(statusPatch("Entitled"))
	if !strings.Contains(before, `k:{\"type\":\"Ready\"}`) {
		t.Fatalf("under the granular CRD, want per-condition fields in managedFields, got %s", before)
	}

	cur, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec = crd.Spec
	if _, err := crds.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The API server serves the new schema shortly after the update.
	var after string
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		after = statusFields(statusPatch("Revoked"))
		return after == `{"f:status":{}}`, nil
	}); err != nil {
		t.Fatalf("after the upgrade, want the status write's managedFields to be {\"f:status\":{}}, got %s", after)
	}
	got, err := partners.Get(ctx, "upgraded", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if phase, _, _ := unstructured.NestedString(got.Object, "status", "phase"); phase != "Revoked" {
		t.Errorf("status.phase %q after the upgrade, want Revoked", phase)
	}
}
