package install_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// allRoles is every Role and ClusterRole anywhere: both renders (the chart
// with every option on) and every YAML file under config/ and dist/chart/files.
func allRoles(t *testing.T) map[string]*rbacv1.ClusterRole {
	t.Helper()
	roles := map[string]*rbacv1.ClusterRole{}
	add := func(where string, objs []*unstructured.Unstructured) {
		for _, o := range ofKind(objs, "Role", "ClusterRole") {
			roles[where+": "+id(o)] = fromUnstructured[rbacv1.ClusterRole](t, o)
		}
	}
	add("config/default", kustomizeDefault(t))
	add("config/prometheus", kustomizePrometheus(t))
	add("dist/chart", chartAll(t))
	for _, dir := range []string{"config", filepath.Join("dist", "chart", "files")} {
		err := filepath.WalkDir(path(dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || (!strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml")) {
				return err
			}
			if d.Name() == "kustomization.yaml" || d.Name() == "argocd-cm-patch.yaml" || strings.HasSuffix(d.Name(), "_test.yaml") || strings.HasSuffix(d.Name(), "_patch.yaml") {
				return nil // not objects: a kustomization, patches, promtool tests
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			objs, err := decode(b)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			add(rel, objs)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(roles) < 20 {
		t.Fatalf("found only %d roles", len(roles))
	}
	return roles
}

// TestRBACNoWildcardsAndBindOnlyTierRoles: no rule of any Role or ClusterRole
// has '*' in verbs, resources, apiGroups, resourceNames or nonResourceURLs;
// `bind` appears only in rules on clusterroles restricted by resourceNames
// to the three tier roles; nothing may escalate or impersonate; no role
// aggregates others (aggregation would let any labelled role add rules).
func TestRBACNoWildcardsAndBindOnlyTierRoles(t *testing.T) {
	for where, r := range allRoles(t) {
		if r.AggregationRule != nil {
			t.Errorf("%s has an aggregationRule", where)
		}
		for i, rule := range r.Rules {
			for field, vals := range map[string][]string{
				"verbs": rule.Verbs, "resources": rule.Resources, "apiGroups": rule.APIGroups,
				"resourceNames": rule.ResourceNames, "nonResourceURLs": rule.NonResourceURLs,
			} {
				for _, v := range vals {
					if strings.Contains(v, "*") {
						t.Errorf("%s rule %d: wildcard in %s: %q", where, i, field, v)
					}
				}
			}
			for _, verb := range []string{"escalate", "impersonate"} {
				if slices.Contains(rule.Verbs, verb) {
					t.Errorf("%s rule %d grants %s", where, i, verb)
				}
			}
			if !slices.Contains(rule.Verbs, "bind") {
				continue
			}
			ok := slices.Equal(rule.APIGroups, []string{rbacv1.GroupName}) &&
				slices.Equal(rule.Resources, []string{"clusterroles"}) &&
				len(rule.ResourceNames) > 0
			for _, n := range rule.ResourceNames {
				ok = ok && slices.Contains(tierRoleNames, n)
			}
			if !ok {
				t.Errorf("%s rule %d grants bind beyond the tier ClusterRoles by name: %+v", where, i, rule)
			}
		}
	}
}

// TestTierRoleRules checks the tier ClusterRoles' rules as written: bindable,
// nothing writable that guards the entitlement (quota, RBAC, the namespace),
// and each tier at least what the one below may.
func TestTierRoleRules(t *testing.T) {
	objs := kustomizeDefault(t)
	guarded := map[string][]string{ // group -> resources no tier may write
		"":                    {"resourcequotas", "resourcequotas/status", "namespaces", "namespaces/status", "namespaces/finalize", "limitranges", "endpoints", "serviceaccounts/token", "pods/ephemeralcontainers", "nodes"},
		rbacv1.GroupName:      {"roles", "rolebindings", "clusterroles", "clusterrolebindings"},
		"discovery.k8s.io":    {"endpointslices"},
		v1.GroupVersion.Group: {"partners", "distributorcontracts", "partners/status", "subscriptions/status"},
	}
	readOnly := []string{"get", "list", "watch"}
	var prev *rbacv1.ClusterRole
	for _, name := range tierRoleNames {
		o := find(t, objs, "ClusterRole", name)
		if o.GetLabels()[v1.LabelBindable] != "true" {
			t.Errorf("%s is not labelled %s=true", name, v1.LabelBindable)
		}
		for k := range o.GetLabels() {
			if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
				t.Errorf("%s is aggregated into a built-in role (%s)", name, k)
			}
		}
		r := fromUnstructured[rbacv1.ClusterRole](t, o)
		for i, rule := range r.Rules {
			if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 {
				t.Errorf("%s rule %d: nonResourceURLs/resourceNames not expected: %+v", name, i, rule)
			}
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					if slices.Contains(guarded[g], res) {
						for _, verb := range rule.Verbs {
							if !slices.Contains(readOnly, verb) {
								t.Errorf("%s may %s %s", name, verb, groupResource(g, res))
							}
						}
					}
				}
			}
		}
		if !allows(r, v1.GroupVersion.Group, "subscriptions", "create") || !allows(r, v1.GroupVersion.Group, "subscriptions", "delete") {
			t.Errorf("%s may not create and delete Subscriptions", name)
		}
		if prev != nil {
			for _, rule := range prev.Rules {
				for _, g := range rule.APIGroups {
					for _, res := range rule.Resources {
						for _, verb := range rule.Verbs {
							if !allows(r, g, res, verb) {
								t.Errorf("%s may not %s %s although %s may", name, verb, groupResource(g, res), prev.Name)
							}
						}
					}
				}
			}
		}
		prev = r
	}
	ready := fromUnstructured[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", tierRoleNames[0]))
	if allows(ready, "", "secrets", "get") || allows(ready, "apps", "deployments", "create") {
		t.Error("Ready may read Secrets or create Deployments")
	}
}

func allows(r *rbacv1.ClusterRole, group, resource, verb string) bool {
	for _, rule := range r.Rules {
		if slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb) {
			return true
		}
	}
	return false
}

func groupResource(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}
