package api_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

const finalizer = "entitlements.partnerops.io/revoke"

// TestPartnerGetsItsFinalizerAtCreation: config/admission's
// MutatingAdmissionPolicy puts the operator's finalizer on a Partner in the
// request that creates it (no operator runs here), so the operator does not
// spend a Partner write on it; a finalizer of someone else's is kept, and
// one already there is not added twice.
func TestPartnerGetsItsFinalizerAtCreation(t *testing.T) {
	needCluster(t)
	ctx := testContext(t)
	partner := func(name string, finalizers ...string) (*unstructured.Unstructured, error) {
		obj, err := parseObject(fmt.Sprintf(`apiVersion: entitlements.partnerops.io/v1alpha1
kind: Partner
metadata: {name: %s}
spec:
  displayName: Finalizer Test
  tier: Ready
  type: Reseller
  region: DE
  contracts: [bytec-de]
  namespaces: [%s-prod]
  access: [{kind: Group, name: %s-admins}]
`, name, name, name))
		if err != nil {
			return nil, err
		}
		if len(finalizers) > 0 {
			obj.SetFinalizers(finalizers)
		}
		return obj, nil
	}
	dryRun := func(name string, finalizers ...string) ([]string, error) {
		p, err := partner(name, finalizers...)
		if err != nil {
			return nil, err
		}
		got, err := createStrict(ctx, p, true)
		if err != nil {
			return nil, err
		}
		return got.GetFinalizers(), nil
	}

	// The API server loads admission policies from its informers: a policy
	// created a moment ago may not be in force yet.
	if err := testcluster.Poll(30*time.Second, func() error {
		got, err := dryRun("finalizer-wait")
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{finalizer}) {
			return fmt.Errorf("finalizers %v, want [%s]", got, finalizer)
		}
		return nil
	}); err != nil {
		t.Fatalf("the finalizer policy never took effect on a dry-run create: %v", err)
	}

	cases := []struct {
		name  string
		given []string
		want  []string
	}{
		{"finalizer-none", nil, []string{finalizer}},
		{"finalizer-other", []string{"example.com/hold"}, []string{"example.com/hold", finalizer}},
		{"finalizer-already", []string{finalizer}, []string{finalizer}},
		{"finalizer-both", []string{finalizer, "example.com/hold"}, []string{finalizer, "example.com/hold"}},
	}
	for _, c := range cases {
		got, err := dryRun(c.name, c.given...)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: created with %v, stored %v, want %v", c.name, c.given, got, c.want)
		}
	}

	// Stored, not only answered: a real create, read back.
	p, err := partner("finalizer-stored")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := createStrict(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	ri, _ := resourceFor(p)
	t.Cleanup(func() {
		// No operator runs here to remove it: let the Partner go.
		_, _ = ri.Patch(ctx, p.GetName(), types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		_ = ri.Delete(ctx, p.GetName(), metav1.DeleteOptions{})
	})
	got, err := ri.Get(ctx, p.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.GetFinalizers(), []string{finalizer}) {
		t.Errorf("stored Partner has finalizers %v, want [%s]", got.GetFinalizers(), finalizer)
	}

	// Only at creation: a user who removes it (to let a Partner go without
	// the operator) is not overruled by the policy.
	if _, err := ri.Patch(ctx, p.GetName(), types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := ri.Get(ctx, p.GetName(), metav1.GetOptions{}); err != nil || len(got.GetFinalizers()) != 0 {
		t.Errorf("after removing the finalizer: %v (err %v), want none", got.GetFinalizers(), err)
	}
}
