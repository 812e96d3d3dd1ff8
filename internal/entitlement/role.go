package entitlement

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
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
