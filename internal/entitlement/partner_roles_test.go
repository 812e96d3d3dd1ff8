package entitlement

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestClusterRoleFor(t *testing.T) {
	cases := []struct {
		ent  v1.TierEntitlement
		want string
	}{
		{v1.TierEntitlement{Tier: v1.TierReady}, "entitlements-partner-ready"},
		{v1.TierEntitlement{Tier: v1.TierAdvanced}, "entitlements-partner-advanced"},
		{v1.TierEntitlement{Tier: v1.TierPremier}, "entitlements-partner-premier"},
		{v1.TierEntitlement{Tier: v1.TierPremier, ClusterRole: "vendor-premier-plus"}, "vendor-premier-plus"},
	}
	for _, tc := range cases {
		if got := ClusterRoleFor(&tc.ent); got != tc.want {
			t.Errorf("ClusterRoleFor(%+v): want %q, got %q", tc.ent, tc.want, got)
		}
	}
}

func TestPlanPartnerClusterRole(t *testing.T) {
	for _, tr := range []v1.Tier{v1.TierReady, v1.TierAdvanced, v1.TierPremier} {
		plan := planFor(newPartner("acme", []string{"active-a"}, tier(tr)), nil)
		want := "entitlements-partner-" + strings.ToLower(string(tr))
		if plan.ClusterRole != want {
			t.Errorf("tier %s: want ClusterRole %q, got %q", tr, want, plan.ClusterRole)
		}
		if n := plan.Namespaces[0]; !n.Bind {
			t.Errorf("tier %s: want granted namespace bound, got %+v", tr, n)
		}
	}

	override := activeWithMaxNS(1, tierEnt(v1.TierAdvanced, func(e *v1.TierEntitlement) { e.ClusterRole = "vendor-advanced-plus" }))
	plan := planFor(newPartner("acme", []string{"active-a"}), func(in *PartnerInput) {
		in.Roles["vendor-advanced-plus"] = RoleObservation{Exists: true, Bindable: true}
	}, override)
	if plan.ClusterRole != "vendor-advanced-plus" || plan.Stalled != nil {
		t.Errorf("override: want ClusterRole vendor-advanced-plus and no Stalled, got %q, %+v", plan.ClusterRole, plan.Stalled)
	}
}

func TestPlanPartnerRoleNotBindable(t *testing.T) {
	const role = "entitlements-partner-advanced"
	cases := []struct {
		name string
		obs  *RoleObservation // nil: absent from the map
		msg  []string
	}{
		{"missing", nil, []string{role, "does not exist"}},
		{"exists but observed zero", &RoleObservation{}, []string{role, "does not exist"}},
		{"not labelled bindable", &RoleObservation{Exists: true}, []string{role, v1.LabelBindable + "=true"}},
		{"forbidden", &RoleObservation{Exists: true, Bindable: true, Forbidden: "rolebindings.rbac.authorization.k8s.io is forbidden: user cannot bind"},
			[]string{role, "may not bind", "is forbidden"}},
		{"bindable but grants write on RoleBindings", &RoleObservation{Exists: true, Bindable: true, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"rolebindings"}, Verbs: []string{"create"}},
		}}, []string{role, "is not bound", "write on rolebindings"}},
		{"bindable but grants impersonate", &RoleObservation{Exists: true, Bindable: true, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}},
		}}, []string{role, "verb impersonate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPartner("acme", []string{"active-a"}, namespaces("a"))
			edit := func(in *PartnerInput) {
				in.Namespaces["a"] = NamespaceObservation{Exists: true, Owner: "acme"}
				delete(in.Roles, role)
				if tc.obs != nil {
					in.Roles[role] = *tc.obs
				}
			}
			plan := planFor(p, edit)
			if plan.ClusterRole != "" {
				t.Errorf("ClusterRole: want \"\", got %q", plan.ClusterRole)
			}
			if plan.Phase != v1.PartnerEntitled || plan.Hard != 10 {
				t.Errorf("phase/hard: want Entitled with hard 10 (the role only blocks the binding), got %s, %d", plan.Phase, plan.Hard)
			}
			if n := nsPlan(t, plan, "a"); n.State != v1.NamespaceGranted || !n.Manage || n.Bind || n.SubscriptionsHard != 10 ||
				!strings.Contains(n.Message, "without access") {
				t.Errorf("namespace a: want Granted, managed, not bound, hard 10, message saying it has no access; got %+v", n)
			}
			wantCond(t, plan.Conditions, v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRoleNotBindable, tc.msg...)
			wantEvents(t, plan.Events, v1.EventGranted, v1.EventRoleNotBindable)
			if e := findEvent(plan.Events, v1.EventRoleNotBindable); e != nil && (e.Type != corev1.EventTypeWarning || e.Message != plan.Stalled.Message) {
				t.Errorf("RoleNotBindable event: want Warning with the Stalled message, got %+v", *e)
			}

			// Same Stalled message already in the status: no repeated event.
			p.Status = v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "active-a",
				Conditions: []metav1.Condition{*plan.Stalled}}
			again := planFor(p, edit)
			wantEvents(t, again.Events)

			// A different old message: the event again.
			p.Status.Conditions[0].Message = "ClusterRole something-else does not exist"
			changed := planFor(p, edit)
			wantEvents(t, changed.Events, v1.EventRoleNotBindable)
		})
	}

	t.Run("missing role message names the bindable label", func(t *testing.T) {
		plan := planFor(newPartner("acme", []string{"active-a"}), func(in *PartnerInput) { delete(in.Roles, role) })
		wantCond(t, plan.Conditions, v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRoleNotBindable, role, v1.LabelBindable)
	})

	t.Run("role event not repeated when a conflict comes", func(t *testing.T) {
		p := newPartner("acme", []string{"active-a"}, namespaces("a", "b"))
		noRole := func(in *PartnerInput) { delete(in.Roles, role) }
		first := planFor(p, noRole, activeWithMaxNS(2))
		wantEvents(t, first.Events, v1.EventGranted, v1.EventRoleNotBindable)
		p.Status = v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "active-a", Conditions: []metav1.Condition{*first.Stalled}}
		second := planFor(p, func(in *PartnerInput) {
			noRole(in)
			in.Namespaces["b"] = NamespaceObservation{Exists: true, Owner: "globex"}
		}, activeWithMaxNS(2))
		wantEvents(t, second.Events, v1.EventNamespaceConflict)
	})

	t.Run("not entitled: role not checked", func(t *testing.T) {
		plan := planFor(newPartner("acme", []string{"expired"}), func(in *PartnerInput) { in.Roles = nil })
		if plan.Stalled != nil {
			t.Errorf("Stalled for a revoked partner with no role: want none, got %+v", *plan.Stalled)
		}
	})

	t.Run("role problem outranks a namespace conflict", func(t *testing.T) {
		plan := planFor(newPartner("acme", []string{"active-a"}, namespaces("a", "b")), func(in *PartnerInput) {
			delete(in.Roles, role)
			in.Namespaces["b"] = NamespaceObservation{Exists: true, Owner: "globex"}
		}, activeWithMaxNS(2))
		wantCond(t, plan.Conditions, v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonRoleNotBindable, role, "namespace b belongs to partner globex")
	})
}

func TestContractRoleProblems(t *testing.T) {
	c := newContract("c", entitlements(
		v1.TierEntitlement{Tier: v1.TierReady, Subscriptions: 1},
		v1.TierEntitlement{Tier: v1.TierAdvanced, Subscriptions: 1, ClusterRole: "custom"},
		v1.TierEntitlement{Tier: v1.TierPremier, Subscriptions: 1, ClusterRole: "backdoor"},
	))
	roles := map[string]RoleObservation{
		"entitlements-partner-ready": {Exists: true, Bindable: true},
		"backdoor": {Exists: true, Bindable: true, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"delete"}}}},
	}
	got := ContractRoleProblems(c, roles)
	if len(got) != 2 || !strings.Contains(got[0], "tier Advanced: ClusterRole custom does not exist") ||
		!strings.Contains(got[1], "tier Premier: ClusterRole backdoor is not bound: it grants write on namespaces") {
		t.Errorf("ContractRoleProblems: want Advanced missing and Premier escaping, got %q", got)
	}
	roles["custom"] = RoleObservation{Exists: true, Bindable: true}
	delete(roles, "backdoor")
	roles["backdoor"] = RoleObservation{Exists: true, Bindable: true}
	if got := ContractRoleProblems(c, roles); len(got) != 0 {
		t.Errorf("every role bindable: want no problem, got %q", got)
	}
}
