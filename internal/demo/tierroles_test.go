package demo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

func TestLoadTierRolesFromTheRepository(t *testing.T) {
	root, err := testcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	roles, problems := LoadTierRoles(filepath.Join(root, "config", "rbac", "tiers"))
	if len(problems) > 0 {
		t.Fatalf("config/rbac/tiers: %v", errors.Join(problems...))
	}
	for _, name := range TierRoleNames() {
		if roles[name] == nil {
			t.Errorf("%s not loaded", name)
		}
	}
}

func TestLoadTierRolesProblems(t *testing.T) {
	const ready = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: entitlements-partner-ready
  labels: {entitlements.partnerops.io/bindable: "true"}
rules:
- {apiGroups: [entitlements.partnerops.io], resources: [subscriptions], verbs: [create]}
`
	tests := []struct {
		name  string
		files map[string]string
		// want: one problem mentions each of these; loaded: roles kept.
		want   []string
		loaded []string
	}{
		{"missing directory", nil, []string{"reading tier ClusterRoles"}, nil},
		{"empty directory", map[string]string{}, []string{"no *.yaml files"}, nil},
		{"two roles missing", map[string]string{"ready.yaml": ready, "kustomization.yaml": "resources: [ready.yaml]\n"},
			[]string{"entitlements-partner-advanced not found", "entitlements-partner-premier not found"}, []string{"entitlements-partner-ready"}},
		{"not bindable", map[string]string{"ready.yaml": strings.Replace(ready, `"true"`, `"false"`, 1)},
			[]string{"entitlements-partner-ready in", "not labelled"}, nil},
		{"does not parse", map[string]string{"ready.yaml": ready + "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\nmetadata: [\n"},
			[]string{"ready.yaml"}, []string{"entitlements-partner-ready"}},
		{"unknown field", map[string]string{"ready.yaml": strings.Replace(ready, "rules:", "rulez: []\nrules:", 1)},
			[]string{"unknown field"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tiers")
			if tc.files != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for name, content := range tc.files {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			roles, problems := LoadTierRoles(dir)
			all := errors.Join(problems...)
			for _, w := range tc.want {
				if all == nil || !strings.Contains(all.Error(), w) {
					t.Errorf("problems %v do not mention %q", all, w)
				}
			}
			if len(roles) != len(tc.loaded) {
				t.Errorf("loaded %d roles, want %v", len(roles), tc.loaded)
			}
			for _, n := range tc.loaded {
				if roles[n] == nil {
					t.Errorf("%s not loaded", n)
				}
			}
		})
	}
}
