package entitlement

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	corev1 "k8s.io/api/core/v1"
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
		if !obs.Quota.Exists && obs.Quota.Extra == nil && obs.Quota.SpecHard == 0 && obs.Quota.StatusHard == 0 {
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
