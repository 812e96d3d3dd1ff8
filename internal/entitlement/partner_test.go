package entitlement

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// planFor plans partner p at t0 against the supply fixtures (plus extra
// contracts, which replace fixtures of the same name), with no namespace
// observed and every default role bindable; edit mutates the input first.
func planFor(p *v1.Partner, edit func(*PartnerInput), extra ...*v1.DistributorContract) PartnerPlan {
	in := input(p)
	in.Contracts = supplyFixtures()
	for _, c := range extra {
		in.Contracts[c.Name] = c
	}
	if edit != nil {
		edit(&in)
	}
	return PlanPartner(settled(in))
}

// settled makes the input's existing namespaces labelled for the partner
// the partner's own, as the operator left them: UID recorded in status,
// quota counted (unless the test observed a quota of its own).
func settled(in PartnerInput) PartnerInput {
	p := in.Partner.DeepCopy()
	for name, obs := range in.Namespaces {
		if !obs.Exists || obs.Owner != p.Name {
			continue
		}
		if obs.UID == "" {
			obs.UID = types.UID("uid-" + name)
			if _, found := recordOf(p, name); !found {
				p.Status.Namespaces = append(p.Status.Namespaces, v1.NamespaceStatus{Name: name, State: v1.NamespaceGranted, UID: obs.UID})
			}
		}
		if obs.Quota == (QuotaObservation{}) {
			obs.Quota = QuotaObservation{Exists: true, Synced: true, Counted: true}
		}
		in.Namespaces[name] = obs
	}
	in.Partner = p
	return in
}

func observe(ns map[string]NamespaceObservation) func(*PartnerInput) {
	return func(in *PartnerInput) {
		for k, v := range ns {
			in.Namespaces[k] = v
		}
	}
}

// activeWithMaxNS is the active-a fixture with maxNamespaces n for every tier.
func activeWithMaxNS(n int32, opts ...contractOpt) *v1.DistributorContract {
	base := []contractOpt{starts(t0.Add(-10 * day)), ends(t0.Add(100 * day)), notice(10 * day)}
	for _, tr := range []v1.Tier{v1.TierReady, v1.TierAdvanced, v1.TierPremier} {
		base = append(base, tierEnt(tr, func(e *v1.TierEntitlement) { e.MaxNamespaces = n }))
	}
	return newContract("active-a", append(base, opts...)...)
}

func TestPlanPartnerPhase(t *testing.T) {
	cases := []struct {
		name       string
		p          *v1.Partner
		wantPhase  v1.PartnerPhase
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMsg    []string
		wantHard   int64
		wantSupply string
	}{
		{
			name: "entitled", p: newPartner("acme", []string{"active-a"}),
			wantPhase: v1.PartnerEntitled, wantStatus: metav1.ConditionTrue, wantReason: v1.ReasonSupplied,
			wantMsg:  []string{"active-a", "Dist-active-a", "until " + formatTime(t0.Add(100*day))},
			wantHard: 10, wantSupply: "active-a",
		},
		{
			name: "entitled by an open-ended contract", p: newPartner("acme", []string{"open"}),
			wantPhase: v1.PartnerEntitled, wantStatus: metav1.ConditionTrue, wantReason: v1.ReasonSupplied,
			wantMsg: []string{"open"}, wantHard: 10, wantSupply: "open",
		},
		{
			name: "revoked: only an expired contract", p: newPartner("acme", []string{"expired"}),
			wantPhase: v1.PartnerRevoked, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonNoActiveContract,
			wantMsg: []string{"contract expired ended at"},
		},
		{
			name: "revoked: no listed contract exists", p: newPartner("acme", []string{"nope"}),
			wantPhase: v1.PartnerRevoked, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonNoActiveContract,
			wantMsg: []string{"contract nope not found"},
		},
		{
			name: "pending: a listed contract starts later", p: newPartner("acme", []string{"expired", "pending"}),
			wantPhase: v1.PartnerPending, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonContractPending,
			wantMsg: []string{"starts at " + formatTime(t0.Add(5*day))},
		},
		{
			name: "suspended wins over entitled", p: newPartner("acme", []string{"active-a"}, suspended()),
			wantPhase: v1.PartnerSuspended, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonSuspended,
			wantSupply: "active-a",
		},
		{
			name: "suspended wins over revoked", p: newPartner("acme", []string{"expired"}, suspended()),
			wantPhase: v1.PartnerSuspended, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonSuspended,
		},
		{
			name: "suspended wins over pending", p: newPartner("acme", []string{"pending"}, suspended()),
			wantPhase: v1.PartnerSuspended, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonSuspended,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planFor(tc.p, nil)
			if plan.Phase != tc.wantPhase {
				t.Errorf("Phase (contracts %v, suspended %v): want %s, got %s", tc.p.Spec.Contracts, tc.p.Spec.Suspended, tc.wantPhase, plan.Phase)
			}
			wantCond(t, plan.Conditions, v1.ConditionEntitled, tc.wantStatus, tc.wantReason, tc.wantMsg...)
			if plan.Hard != tc.wantHard {
				t.Errorf("Hard: want %d, got %d", tc.wantHard, plan.Hard)
			}
			if plan.Supply.Contract != tc.wantSupply {
				t.Errorf("Supply.Contract: want %q, got %q", tc.wantSupply, plan.Supply.Contract)
			}
			if tc.wantPhase != v1.PartnerEntitled {
				if plan.ClusterRole != "" {
					t.Errorf("ClusterRole when %s: want \"\", got %q", tc.wantPhase, plan.ClusterRole)
				}
				for _, n := range plan.Namespaces {
					if n.Bind || n.Create || n.SubscriptionsHard != 0 || n.State == v1.NamespaceGranted {
						t.Errorf("namespace %s when %s: want not granted, not created, not bound, hard 0; got %+v", n.Name, tc.wantPhase, n)
					}
				}
			}
		})
	}
}

func TestPlanPartnerEntitledOpenEndedMessageHasNoUntil(t *testing.T) {
	plan := planFor(newPartner("acme", []string{"open"}), nil)
	if c := findCond(plan.Conditions, v1.ConditionEntitled); c == nil || strings.Contains(c.Message, "until") {
		t.Errorf("Entitled condition of an open-ended supply: want no \"until\", got %+v", c)
	}
}

type nsWant struct {
	state                v1.NamespaceState
	create, manage, bind bool
}

func TestPlanPartnerNamespaces(t *testing.T) {
	own := NamespaceObservation{Exists: true, Owner: "acme"}
	cases := []struct {
		name     string
		p        *v1.Partner
		contract *v1.DistributorContract // replaces active-a when set
		obs      map[string]NamespaceObservation
		want     map[string]nsWant
		stalled  string // expected Stalled reason, "" for none
	}{
		{
			name:     "first maxNamespaces granted and created, the rest over limit and not created",
			p:        newPartner("acme", []string{"active-a"}, namespaces("a", "b", "c")),
			contract: activeWithMaxNS(2),
			want: map[string]nsWant{
				"a": {v1.NamespacePending, true, true, true},
				"b": {v1.NamespacePending, true, true, true},
				"c": {v1.NamespaceOverLimit, false, false, false},
			},
		},
		{
			name:     "existing own namespaces: granted not created; over limit managed (exists) but not bound",
			p:        newPartner("acme", []string{"active-a"}, namespaces("a", "b", "c")),
			contract: activeWithMaxNS(2),
			obs:      map[string]NamespaceObservation{"a": own, "c": own},
			want: map[string]nsWant{
				"a": {v1.NamespaceGranted, false, true, true},
				"b": {v1.NamespacePending, true, true, true},
				"c": {v1.NamespaceOverLimit, false, true, false},
			},
		},
		{
			name:     "maxNamespaces 0 counts as 1",
			p:        newPartner("acme", []string{"active-a"}, namespaces("a", "b")),
			contract: activeWithMaxNS(0),
			want: map[string]nsWant{
				"a": {v1.NamespacePending, true, true, true},
				"b": {v1.NamespaceOverLimit, false, false, false},
			},
		},
		{
			name:     "conflict: exists with another partner's label",
			p:        newPartner("acme", []string{"active-a"}, namespaces("a", "b")),
			contract: activeWithMaxNS(2),
			obs:      map[string]NamespaceObservation{"a": {Exists: true, Owner: "globex"}},
			want: map[string]nsWant{
				"a": {v1.NamespaceConflict, false, false, false},
				"b": {v1.NamespacePending, true, true, true},
			},
			stalled: v1.ReasonNamespaceConflict,
		},
		{
			name: "conflict: exists without a partner label (kube-system style)",
			p:    newPartner("acme", []string{"active-a"}, namespaces("kube-system")),
			obs:  map[string]NamespaceObservation{"kube-system": {Exists: true}},
			want: map[string]nsWant{
				"kube-system": {v1.NamespaceConflict, false, false, false},
			},
			stalled: v1.ReasonNamespaceConflict,
		},
		{
			name: "conflict also when revoked",
			p:    newPartner("acme", []string{"expired"}, namespaces("a")),
			obs:  map[string]NamespaceObservation{"a": {Exists: true, Owner: "globex"}},
			want: map[string]nsWant{
				"a": {v1.NamespaceConflict, false, false, false},
			},
			stalled: v1.ReasonNamespaceConflict,
		},
		{
			name: "conflict wins over terminating",
			p:    newPartner("acme", []string{"active-a"}, namespaces("a")),
			obs:  map[string]NamespaceObservation{"a": {Exists: true, Owner: "globex", Terminating: true}},
			want: map[string]nsWant{
				"a": {v1.NamespaceConflict, false, false, false},
			},
			stalled: v1.ReasonNamespaceConflict,
		},
		{
			name: "own terminating namespace: revoked, not managed, not created",
			p:    newPartner("acme", []string{"active-a"}, namespaces("a")),
			obs:  map[string]NamespaceObservation{"a": {Exists: true, Owner: "acme", Terminating: true}},
			want: map[string]nsWant{
				"a": {v1.NamespaceRevoked, false, false, false},
			},
		},
		{
			name: "revoked partner: existing managed unbound, absent not created",
			p:    newPartner("acme", []string{"expired"}, namespaces("a", "b")),
			obs:  map[string]NamespaceObservation{"a": own},
			want: map[string]nsWant{
				"a": {v1.NamespaceRevoked, false, true, false},
				"b": {v1.NamespaceRevoked, false, false, false},
			},
		},
		{
			name: "suspended partner: like revoked",
			p:    newPartner("acme", []string{"active-a"}, namespaces("a", "b"), suspended()),
			obs:  map[string]NamespaceObservation{"a": own},
			want: map[string]nsWant{
				"a": {v1.NamespaceRevoked, false, true, false},
				"b": {v1.NamespaceRevoked, false, false, false},
			},
		},
		{
			name: "pending partner: like revoked",
			p:    newPartner("acme", []string{"pending"}, namespaces("a", "b")),
			obs:  map[string]NamespaceObservation{"a": own},
			want: map[string]nsWant{
				"a": {v1.NamespaceRevoked, false, true, false},
				"b": {v1.NamespaceRevoked, false, false, false},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []*v1.DistributorContract
			if tc.contract != nil {
				extra = append(extra, tc.contract)
			}
			plan := planFor(tc.p, observe(tc.obs), extra...)
			if len(plan.Namespaces) != len(tc.p.Spec.Namespaces) {
				t.Fatalf("Namespaces: want %d plans, got %+v", len(tc.p.Spec.Namespaces), plan.Namespaces)
			}
			for i, n := range plan.Namespaces {
				if n.Name != string(tc.p.Spec.Namespaces[i]) {
					t.Errorf("Namespaces[%d]: want %s (spec order), got %s", i, tc.p.Spec.Namespaces[i], n.Name)
				}
				w := tc.want[n.Name]
				got := nsWant{n.State, n.Create, n.Manage, n.Bind}
				if got != w {
					t.Errorf("namespace %s (observed %+v, phase %s): want %+v, got %+v", n.Name, tc.obs[n.Name], plan.Phase, w, got)
				}
				if n.State != v1.NamespaceGranted && n.State != v1.NamespacePending && (n.SubscriptionsHard != 0 || n.ExtraQuota != nil) {
					t.Errorf("namespace %s (%s): want subscriptions hard 0 and no extra quota, got %d and %v", n.Name, n.State, n.SubscriptionsHard, n.ExtraQuota)
				}
				if n.State != v1.NamespaceGranted && n.Message == "" && !(n.State == v1.NamespaceRevoked && n.Manage) {
					t.Errorf("namespace %s (%s): want a message explaining it, got none", n.Name, n.State)
				}
			}
			switch {
			case tc.stalled == "" && plan.Stalled != nil:
				t.Errorf("Stalled: want none, got %+v", *plan.Stalled)
			case tc.stalled != "" && plan.Stalled == nil:
				t.Errorf("Stalled: want reason %s, got none", tc.stalled)
			case tc.stalled != "" && plan.Stalled.Reason != tc.stalled:
				t.Errorf("Stalled: want reason %s, got %+v", tc.stalled, *plan.Stalled)
			}
		})
	}
}

func TestPlanPartnerConflict(t *testing.T) {
	p := newPartner("acme", []string{"active-a"}, namespaces("shared", "free"))
	obs := observe(map[string]NamespaceObservation{
		"shared": {Exists: true, Owner: "globex"},
		"free":   {Exists: true},
	})
	plan := planFor(p, obs, activeWithMaxNS(2))

	wantCond(t, plan.Conditions, v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonNamespaceConflict,
		"namespace shared belongs to partner globex", "namespace free exists and does not belong to partner acme")
	if plan.Stalled == nil || contains(plan.Remove, v1.ConditionStalled) {
		t.Errorf("Stalled: want set and not in Remove, got %+v, Remove %v", plan.Stalled, plan.Remove)
	}
	wantEvents(t, plan.Events, v1.EventGranted, v1.EventNamespaceConflict, v1.EventNamespaceConflict)
	for _, e := range plan.Events[1:] {
		if e.Type != corev1.EventTypeWarning {
			t.Errorf("NamespaceConflict event: want Warning, got %+v", e)
		}
	}

	// Already recorded as Conflict in the status: no new event for it.
	p.Status = v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "active-a", Namespaces: []v1.NamespaceStatus{
		{Name: "shared", State: v1.NamespaceConflict}, {Name: "free", State: v1.NamespaceGranted},
	}}
	plan = planFor(p, obs, activeWithMaxNS(2))
	wantEvents(t, plan.Events, v1.EventNamespaceConflict)
	if e := findEvent(plan.Events, v1.EventNamespaceConflict); e != nil && !strings.Contains(e.Message, "free") {
		t.Errorf("NamespaceConflict event: want the newly conflicting namespace free, got %q", e.Message)
	}
	if plan.Stalled == nil {
		t.Errorf("Stalled: want still set while the conflict lasts, got none")
	}

	// Both recorded: no event at all.
	p.Status.Namespaces[1].State = v1.NamespaceConflict
	plan = planFor(p, obs, activeWithMaxNS(2))
	wantEvents(t, plan.Events)
}

func TestPlanPartnerTerminatingNamespace(t *testing.T) {
	p := newPartner("acme", []string{"active-a"}, namespaces("a"))
	plan := planFor(p, observe(map[string]NamespaceObservation{"a": {Exists: true, Owner: "acme", Terminating: true, Used: 3}}))
	wantCond(t, plan.Conditions, v1.ConditionReconciling, metav1.ConditionTrue, v1.ReasonNamespaceTerminating)
	if contains(plan.Remove, v1.ConditionReconciling) {
		t.Errorf("Remove: want no Reconciling while a namespace terminates, got %v", plan.Remove)
	}
	if n := nsPlan(t, plan, "a"); n.State != v1.NamespaceRevoked || n.Manage || n.Create || !strings.Contains(n.Message, "being deleted") {
		t.Errorf("terminating namespace: want Revoked, not managed/created, message 'being deleted'; got %+v", n)
	}
	if plan.Stalled != nil {
		t.Errorf("Stalled: a terminating namespace is not a user problem; got %+v", *plan.Stalled)
	}

	plan = planFor(p, observe(map[string]NamespaceObservation{"a": {Exists: true, Owner: "acme"}}))
	noCond(t, plan.Conditions, v1.ConditionReconciling)
	if !contains(plan.Remove, v1.ConditionReconciling) || !contains(plan.Remove, v1.ConditionStalled) {
		t.Errorf("Remove without problems: want Reconciling and Stalled, got %v", plan.Remove)
	}
}

func TestPlanPartnerUnlistedNamespaces(t *testing.T) {
	p := newPartner("acme", []string{"active-a"}, namespaces("a"))
	plan := planFor(p, func(in *PartnerInput) {
		in.Namespaces["old"] = NamespaceObservation{Exists: true, Owner: "acme", Used: 4}
		in.Namespaces["going"] = NamespaceObservation{Exists: true, Owner: "acme", Terminating: true}
		in.Unlisted = []string{"going", "old"}
	})
	if len(plan.Namespaces) != 3 || plan.Namespaces[0].Name != "a" {
		t.Fatalf("Namespaces: want listed a then unlisted going, old; got %+v", plan.Namespaces)
	}
	old := nsPlan(t, plan, "old")
	if old.State != v1.NamespaceRevoked || !old.Manage || old.Bind || old.Create || old.SubscriptionsHard != 0 || old.Used != 4 ||
		!strings.Contains(old.Message, v1.LabelPartner) {
		t.Errorf("unlisted namespace old: want Revoked, managed, unbound, hard 0, used 4, message naming the label; got %+v", old)
	}
	if g := nsPlan(t, plan, "going"); g.Manage || g.State != v1.NamespaceRevoked {
		t.Errorf("unlisted terminating namespace: want Revoked and not managed, got %+v", g)
	}
	// Its 4 Subscriptions still count against the limit of 10.
	if a := nsPlan(t, plan, "a"); a.SubscriptionsHard != 6 || plan.Used != 4 || plan.Hard != 10 {
		t.Errorf("limit 10 with 4 used in an unlisted namespace: want a hard 6, used 4/10; got a hard %d, used %d/%d",
			a.SubscriptionsHard, plan.Used, plan.Hard)
	}
}

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

func TestPlanPartnerQuota(t *testing.T) {
	quota := corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("4")}
	withQuota := activeWithMaxNS(2, tierEnt(v1.TierAdvanced, func(e *v1.TierEntitlement) { e.NamespaceQuota = quota }))
	withQuota1 := activeWithMaxNS(1, tierEnt(v1.TierAdvanced, func(e *v1.TierEntitlement) { e.NamespaceQuota = quota }))
	own := func(used int64) NamespaceObservation {
		return NamespaceObservation{Exists: true, Owner: "acme", Used: used}
	}
	cases := []struct {
		name      string
		p         *v1.Partner
		contract  *v1.DistributorContract
		obs       map[string]NamespaceObservation
		wantHard  int64
		wantUsed  int64
		wantHards []int64
	}{
		{
			name: "spread over two granted namespaces", p: newPartner("acme", []string{"active-a"}, namespaces("a", "b")),
			contract: withQuota, obs: map[string]NamespaceObservation{"a": own(3), "b": own(2)},
			wantHard: 10, wantUsed: 5, wantHards: []int64{8, 7},
		},
		{
			name: "over-limit namespace's usage counts, it gets 0", p: newPartner("acme", []string{"active-a"}, namespaces("a", "b")),
			contract: withQuota1, obs: map[string]NamespaceObservation{"a": own(3), "b": own(4)},
			wantHard: 10, wantUsed: 7, wantHards: []int64{6, 0},
		},
		{
			name: "usage above the limit: never below usage", p: newPartner("acme", []string{"active-a"}, namespaces("a", "b")),
			contract: withQuota, obs: map[string]NamespaceObservation{"a": own(8), "b": own(5)},
			wantHard: 10, wantUsed: 13, wantHards: []int64{8, 5},
		},
		{
			name: "new namespaces get the whole limit each", p: newPartner("acme", []string{"active-a"}, namespaces("a", "b")),
			contract: withQuota, wantHard: 10, wantUsed: 0, wantHards: []int64{10, 10},
		},
		{
			name: "revoked: hard 0 everywhere, usage kept", p: newPartner("acme", []string{"expired"}, namespaces("a", "b")),
			obs:      map[string]NamespaceObservation{"a": own(3), "b": own(1)},
			wantHard: 0, wantUsed: 4, wantHards: []int64{0, 0},
		},
		{
			name: "suspended: hard 0 everywhere", p: newPartner("acme", []string{"active-a"}, namespaces("a"), suspended()),
			obs:      map[string]NamespaceObservation{"a": own(3)},
			wantHard: 0, wantUsed: 3, wantHards: []int64{0},
		},
		{
			name: "a conflicting namespace's usage is not the partner's", p: newPartner("acme", []string{"active-a"}, namespaces("x", "a")),
			contract: withQuota, obs: map[string]NamespaceObservation{"x": {Exists: true, Owner: "globex", Used: 9}, "a": own(2)},
			wantHard: 10, wantUsed: 2, wantHards: []int64{0, 10},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []*v1.DistributorContract
			if tc.contract != nil {
				extra = append(extra, tc.contract)
			}
			plan := planFor(tc.p, observe(tc.obs), extra...)
			if plan.Hard != tc.wantHard || plan.Used != tc.wantUsed {
				t.Errorf("partner hard/used: want %d/%d, got %d/%d", tc.wantHard, tc.wantUsed, plan.Hard, plan.Used)
			}
			var got []int64
			for _, n := range plan.Namespaces {
				got = append(got, n.SubscriptionsHard)
				if n.State == v1.NamespaceGranted || n.State == v1.NamespacePending {
					if tc.contract == nil {
						continue
					}
					if q := n.ExtraQuota[corev1.ResourceRequestsCPU]; q.Cmp(quota[corev1.ResourceRequestsCPU]) != 0 {
						t.Errorf("namespace %s: want extra quota %v, got %v", n.Name, quota, n.ExtraQuota)
					}
				} else if n.ExtraQuota != nil {
					t.Errorf("namespace %s (%s): want no extra quota, got %v", n.Name, n.State, n.ExtraQuota)
				}
			}
			if len(got) != len(tc.wantHards) {
				t.Fatalf("namespace hards: want %v, got %v", tc.wantHards, got)
			}
			for i := range got {
				if got[i] != tc.wantHards[i] {
					t.Errorf("namespace hards (observed %+v): want %v, got %v", tc.obs, tc.wantHards, got)
					break
				}
			}
		})
	}
}

func TestPlanPartnerEvents(t *testing.T) {
	st := func(phase v1.PartnerPhase, contract string) partnerOpt {
		return oldStatus(v1.PartnerStatus{Phase: phase, Contract: contract})
	}
	cases := []struct {
		name     string
		p        *v1.Partner
		want     []string
		wantType string // type of the first event
		wantMsg  []string
	}{
		{"first entitlement", newPartner("acme", []string{"active-a"}), []string{v1.EventGranted}, corev1.EventTypeNormal, []string{"active-a", "Dist-active-a"}},
		{"pending to entitled", newPartner("acme", []string{"active-a"}, st(v1.PartnerPending, "")), []string{v1.EventGranted}, corev1.EventTypeNormal, nil},
		{"revoked to entitled", newPartner("acme", []string{"active-a"}, st(v1.PartnerRevoked, "")), []string{v1.EventGranted}, corev1.EventTypeNormal, nil},
		{"unsuspended", newPartner("acme", []string{"active-a"}, st(v1.PartnerSuspended, "active-a")), []string{v1.EventGranted}, corev1.EventTypeNormal, nil},
		{"still entitled by the same contract", newPartner("acme", []string{"active-a"}, st(v1.PartnerEntitled, "active-a")), nil, "", nil},
		{"failed over", newPartner("acme", []string{"expired", "active-a"}, st(v1.PartnerEntitled, "expired")),
			[]string{v1.EventFailedOver}, corev1.EventTypeNormal, []string{"from contract expired to active-a", "Dist-active-a"}},
		{"entitled to revoked", newPartner("acme", []string{"expired"}, st(v1.PartnerEntitled, "expired")),
			[]string{v1.EventRevoked}, corev1.EventTypeWarning, []string{"contract expired ended at", "kept"}},
		{"entitled to pending", newPartner("acme", []string{"expired", "pending"}, st(v1.PartnerEntitled, "expired")),
			[]string{v1.EventRevoked}, corev1.EventTypeWarning, nil},
		{"still revoked", newPartner("acme", []string{"expired"}, st(v1.PartnerRevoked, "")), nil, "", nil},
		{"new partner, revoked: no event", newPartner("acme", []string{"expired"}), nil, "", nil},
		{"new partner, pending: no event", newPartner("acme", []string{"pending"}), nil, "", nil},
		{"entitled to suspended", newPartner("acme", []string{"active-a"}, suspended(), st(v1.PartnerEntitled, "active-a")),
			[]string{v1.EventSuspended}, corev1.EventTypeWarning, nil},
		{"new partner, suspended", newPartner("acme", []string{"active-a"}, suspended()), []string{v1.EventSuspended}, corev1.EventTypeWarning, nil},
		{"still suspended", newPartner("acme", []string{"active-a"}, suspended(), st(v1.PartnerSuspended, "")), nil, "", nil},
		{"not entitled, missing contract", newPartner("acme", []string{"nope"}),
			[]string{v1.EventContractNotFound}, corev1.EventTypeWarning, []string{"contract nope not found"}},
		{"revoked, with a missing contract", newPartner("acme", []string{"expired", "nope"}, st(v1.PartnerEntitled, "expired")),
			[]string{v1.EventRevoked, v1.EventContractNotFound}, corev1.EventTypeWarning, nil},
		{"not entitled, region mismatch", newPartner("acme", []string{"austria"}),
			[]string{v1.ReasonContractMismatch}, corev1.EventTypeWarning, []string{"region AT"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planFor(tc.p, nil)
			wantEvents(t, plan.Events, tc.want...)
			if len(plan.Events) == 0 || len(tc.want) == 0 {
				return
			}
			e := plan.Events[0]
			if e.Type != tc.wantType {
				t.Errorf("event %s: want type %s, got %s", e.Reason, tc.wantType, e.Type)
			}
			for _, s := range tc.wantMsg {
				if !strings.Contains(e.Message, s) {
					t.Errorf("event %s: want message containing %q, got %q", e.Reason, s, e.Message)
				}
			}
		})
	}

	t.Run("contract problem already reported: no repeated event", func(t *testing.T) {
		p := newPartner("acme", []string{"nope"})
		first := planFor(p, nil)
		p.Status = v1.PartnerStatus{Phase: v1.PartnerRevoked, Conditions: []metav1.Condition{*first.Stalled}}
		wantEvents(t, planFor(p, nil).Events)
	})
}

func TestPlanPartnerStalledForContracts(t *testing.T) {
	cases := []struct {
		name   string
		p      *v1.Partner
		reason string // "" = no Stalled
		msg    []string
	}{
		{"revoked, contract missing", newPartner("acme", []string{"nope", "expired"}), v1.ReasonContractNotFound, []string{"contract nope not found"}},
		{"revoked, region mismatch", newPartner("acme", []string{"austria"}), v1.ReasonContractMismatch, []string{"region AT"}},
		{"revoked, tier not covered", newPartner("acme", []string{"ready-only"}), v1.ReasonContractMismatch, []string{"tier Advanced"}},
		{"revoked, both: not found ranks first", newPartner("acme", []string{"austria", "nope"}), v1.ReasonContractNotFound, []string{"region AT", "nope not found"}},
		{"pending, contract missing", newPartner("acme", []string{"nope", "pending"}), v1.ReasonContractNotFound, nil},
		{"entitled despite a missing earlier contract: not stalled", newPartner("acme", []string{"nope", "active-a"}), "", nil},
		{"entitled despite a mismatched earlier contract: not stalled", newPartner("acme", []string{"austria", "active-a"}), "", nil},
		{"revoked, only expired: not stalled (nothing for a user to fix)", newPartner("acme", []string{"expired"}), "", nil},
		{"suspended, supplied despite a missing earlier contract: not stalled, as when not suspended", newPartner("acme", []string{"nope", "active-a"}, suspended()), "", nil},
		{"suspended, contract missing and none supplies: stalled", newPartner("acme", []string{"nope"}, suspended()), v1.ReasonContractNotFound, []string{"contract nope not found"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planFor(tc.p, nil)
			if tc.reason == "" {
				noCond(t, plan.Conditions, v1.ConditionStalled)
				if plan.Stalled != nil || !contains(plan.Remove, v1.ConditionStalled) {
					t.Errorf("Stalled: want none and removed, got %+v, Remove %v", plan.Stalled, plan.Remove)
				}
				return
			}
			wantCond(t, plan.Conditions, v1.ConditionStalled, metav1.ConditionTrue, tc.reason, tc.msg...)
		})
	}
}

func TestPlanPartnerContractExpiringCondition(t *testing.T) {
	cases := []struct {
		name   string
		list   []string
		status metav1.ConditionStatus
		reason string
		msg    []string
	}{
		{"active supply: not expiring", []string{"active-a"}, metav1.ConditionFalse, v1.ReasonNotExpiring, []string{"not near its end"}},
		{"open-ended supply: not expiring", []string{"open"}, metav1.ConditionFalse, v1.ReasonNotExpiring, nil},
		{"expiring with a successor", []string{"expiring", "active-b"}, metav1.ConditionTrue, v1.ReasonContractExpiring,
			[]string{"contract expiring", "ends at " + formatTime(t0.Add(5*day)), "fail over to active-b"}},
		{"expiring, no successor", []string{"expiring"}, metav1.ConditionTrue, v1.ReasonContractExpiring, []string{"revoked"}},
		{"expiring, successor also ends first", []string{"expiring", "grace"}, metav1.ConditionTrue, v1.ReasonContractExpiring, []string{"revoked"}},
		{"in grace with a successor", []string{"grace", "active-a"}, metav1.ConditionTrue, v1.ReasonContractInGrace,
			[]string{"entitlements until " + formatTime(t0.Add(4*day)), "fail over to active-a"}},
		{"in grace, successor pending then", []string{"grace", "pending"}, metav1.ConditionTrue, v1.ReasonContractInGrace, []string{"revoked"}},
		{"not entitled", []string{"expired"}, metav1.ConditionFalse, v1.ReasonNotExpiring, []string{"no contract supplies"}},
		{"suspended, contract expiring", []string{"expiring"}, metav1.ConditionFalse, v1.ReasonNotExpiring, []string{"suspended"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []partnerOpt
			if strings.HasPrefix(tc.name, "suspended") {
				opts = append(opts, suspended())
			}
			plan := planFor(newPartner("acme", tc.list, opts...), nil)
			wantCond(t, plan.Conditions, v1.ConditionContractExpiring, tc.status, tc.reason, tc.msg...)
			if tc.status == metav1.ConditionTrue {
				c := findCond(plan.Conditions, v1.ConditionContractExpiring)
				if strings.Contains(c.Message, "fail over") == strings.Contains(c.Message, "revoked") {
					t.Errorf("ContractExpiring message: want exactly one of fail over / revoked, got %q", c.Message)
				}
				if strings.Contains(c.Message, "fail over to ") && !strings.HasSuffix(c.Message, "fail over to "+plan.Successor) {
					t.Errorf("ContractExpiring message: want it to name Successor %q, got %q", plan.Successor, c.Message)
				}
			}
		})
	}
}

func TestPlanPartnerRequeueAndSuccessor(t *testing.T) {
	cases := []struct {
		name          string
		list          []string
		wantRequeue   time.Time
		wantSuccessor string
	}{
		{"next boundary of the supply", []string{"active-a"}, t0.Add(90 * day), ""},
		{"a later-listed contract's start comes first", []string{"active-a", "pending"}, t0.Add(5 * day), "pending"},
		{"grace end", []string{"grace", "active-b"}, t0.Add(4 * day), "active-b"},
		{"revoked for good: never", []string{"expired"}, time.Time{}, ""},
		{"pending: its start", []string{"pending"}, t0.Add(5 * day), ""},
		{"open-ended: never", []string{"open"}, time.Time{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planFor(newPartner("acme", tc.list), nil)
			if !plan.RequeueAt.Equal(tc.wantRequeue) || !plan.RequeueAt.Equal(plan.Supply.NextAt) {
				t.Errorf("RequeueAt (%v): want %s (= Supply.NextAt %s), got %s", tc.list, tc.wantRequeue, plan.Supply.NextAt, plan.RequeueAt)
			}
			if plan.Successor != tc.wantSuccessor {
				t.Errorf("Successor (%v): want %q, got %q", tc.list, tc.wantSuccessor, plan.Successor)
			}
		})
	}
}

// The plan must not mutate its input (the reconciler re-plans with the same
// input after a Forbidden binding).
func TestPlanPartnerDoesNotMutateInput(t *testing.T) {
	p := newPartner("acme", []string{"nope", "active-a"}, namespaces("a", "b"))
	in := input(p)
	in.Contracts = supplyFixtures()
	in.Namespaces["a"] = NamespaceObservation{Exists: true, Owner: "globex"}
	before := p.DeepCopy()
	beforeC := in.Contracts["active-a"].DeepCopy()
	PlanPartner(in)
	PlanPartner(in)
	if !reflect.DeepEqual(before, p) || !reflect.DeepEqual(beforeC, in.Contracts["active-a"]) {
		t.Errorf("PlanPartner mutated its input")
	}
}
