package api_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

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
	dir := repoPath(t, "config", "crd", "bases")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", dir, err)
	}
	out := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[crd.Spec.Names.Kind] = crd
	}
	return out
}

type rule struct {
	Path string
	apiextensionsv1.ValidationRule
}

// collectRules lists the x-kubernetes-validations of a schema and all
// schemas below it, in a stable order.
func collectRules(s *apiextensionsv1.JSONSchemaProps, path string) []rule {
	if s == nil {
		return nil
	}
	var out []rule
	for _, r := range s.XValidations {
		out = append(out, rule{Path: path, ValidationRule: r})
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := s.Properties[n]
		out = append(out, collectRules(&p, strings.TrimPrefix(path+"."+n, "."))...)
	}
	if s.Items != nil && s.Items.Schema != nil {
		out = append(out, collectRules(s.Items.Schema, path+"[*]")...)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		out = append(out, collectRules(s.AdditionalProperties.Schema, path+"[*]")...)
	}
	return out
}
