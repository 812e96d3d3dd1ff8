package api_test

import (
	"path/filepath"
	"testing"

	"github.com/partnerops/entitlement-operator/internal/crdschema"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// repoPath is a path inside the repository.
func repoPath(t *testing.T, elem ...string) string {
	t.Helper()
	root, err := testcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// readCRDs reads config/crd/bases, keyed by kind.
func readCRDs(t *testing.T) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crds, err := crdschema.Read(repoPath(t, "config", "crd", "bases"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, crd := range crds {
		out[crd.Spec.Names.Kind] = crd
	}
	return out
}
