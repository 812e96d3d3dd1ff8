package entitlement

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// escapeVerbs are verbs that widen a subject's own permissions whatever the
// resource: with them a partner's people could grant themselves more than
// the tier gives.
var escapeVerbs = []string{"escalate", "bind", "impersonate"}

// writeVerbs change an object.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

// guardedResources are what the operator's grant is made of (access,
// quota, the namespace itself) and what would let a partner's people undo
// it: write access to any of them in a partner namespace is a way out of
// the tier. Keyed by API group.
var guardedResources = map[string][]string{
	"":                           {"resourcequotas", "limitranges", "namespaces"},
	rbacv1.GroupName:             {"rolebindings", "roles"},
	"entitlements.partnerops.io": {"partners", "distributorcontracts"},
}

// RoleEscape reports why a ClusterRole with these rules must not be bound
// to a partner's people in its namespaces, or "" when it may. A role may
// not grant escalate, bind or impersonate, nor write RoleBindings, Roles,
// ResourceQuotas, LimitRanges, Namespaces or this API's cluster objects,
// whatever its bindable label says: the API server's own escalation check
// lets the operator bind any role whose rules it holds itself, and the
// operator holds exactly these.
func RoleEscape(rules []rbacv1.PolicyRule) string {
	var found []string
	for _, r := range rules {
		if len(r.Resources) == 0 {
			continue // non-resource URLs: not namespaced, not granted by a RoleBinding
		}
		for _, v := range r.Verbs {
			if v == rbacv1.VerbAll || slices.Contains(escapeVerbs, v) {
				if v == rbacv1.VerbAll {
					v = "* (every verb)"
				}
				found = appendOnce(found, "verb "+v)
			}
		}
		if !slices.ContainsFunc(r.Verbs, func(v string) bool { return v == rbacv1.VerbAll || slices.Contains(writeVerbs, v) }) {
			continue
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				base, _, _ := strings.Cut(res, "/")
				switch {
				case base == rbacv1.ResourceAll && g == rbacv1.APIGroupAll:
					found = appendOnce(found, "write on every resource")
				case base == rbacv1.ResourceAll:
					if _, guarded := guardedResources[g]; guarded {
						found = appendOnce(found, fmt.Sprintf("write on every resource of API group %q", g))
					}
				case g == rbacv1.APIGroupAll:
					for _, names := range guardedResources {
						if slices.Contains(names, base) {
							found = appendOnce(found, "write on "+base)
						}
					}
				case slices.Contains(guardedResources[g], base):
					found = appendOnce(found, "write on "+base)
				}
			}
		}
	}
	if len(found) == 0 {
		return ""
	}
	slices.Sort(found)
	return "it grants " + strings.Join(found, ", ")
}

func appendOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// RoleProblem says why a ClusterRole cannot be bound to a partner's people,
// or "" when it can: it must exist, be labelled bindable and not grant a
// way out of the tier (RoleEscape).
func RoleProblem(role string, obs RoleObservation) string {
	switch {
	case !obs.Exists:
		return fmt.Sprintf("ClusterRole %s does not exist: create it labelled %s=true", role, v1.LabelBindable)
	case !obs.Bindable:
		return fmt.Sprintf("ClusterRole %s is not labelled %s=true (the operator binds only such roles)", role, v1.LabelBindable)
	}
	if escape := RoleEscape(obs.Rules); escape != "" {
		return fmt.Sprintf("ClusterRole %s is not bound: %s, which would let the partner's people change their own access or limits", role, escape)
	}
	return ""
}

// ContractRoleProblems lists, per tier the contract covers, why the tier's
// ClusterRole cannot be bound ("tier: problem"), in tier order; roles maps
// role names to what was observed.
func ContractRoleProblems(c *v1.DistributorContract, roles map[string]RoleObservation) []string {
	var out []string
	for i := range c.Spec.Entitlements {
		ent := &c.Spec.Entitlements[i]
		role := ClusterRoleFor(ent)
		if p := RoleProblem(role, roles[role]); p != "" {
			out = append(out, fmt.Sprintf("tier %s: %s", ent.Tier, p))
		}
	}
	return out
}
