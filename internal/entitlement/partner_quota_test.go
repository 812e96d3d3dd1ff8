package entitlement

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

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
			// 3 over: each below its count by 3, so a delete opens no slot.
			name: "usage above the limit: each below its usage by the excess", p: newPartner("acme", []string{"active-a"}, namespaces("a", "b")),
			contract: withQuota, obs: map[string]NamespaceObservation{"a": own(8), "b": own(5)},
			wantHard: 10, wantUsed: 13, wantHards: []int64{5, 2},
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

func TestPlanPartnerOverLimit(t *testing.T) {
	p := newPartner("acme", []string{"active-a"}, namespaces("a"))
	obs := observe(map[string]NamespaceObservation{"a": {Exists: true, Owner: "acme", Used: 12, Subscriptions: 12}})
	plan := planFor(p, obs)
	if plan.OverLimit() != 2 {
		t.Fatalf("OverLimit: want 2 (12 held, limit 10), got %d (used %d hard %d)", plan.OverLimit(), plan.Used, plan.Hard)
	}
	wantCond(t, plan.Conditions, v1.ConditionEntitled, metav1.ConditionTrue, v1.ReasonSupplied, "2 over its limit of 10")
	if e := findEvent(plan.Events, v1.EventSubscriptionsOverLimit); e == nil || e.Type != corev1.EventTypeWarning {
		t.Errorf("want a Warning SubscriptionsOverLimit event when it first happens, got %v", eventReasons(plan.Events))
	}
	// Announced once: the last status already says so.
	p.Status.Phase, p.Status.Subscriptions = v1.PartnerEntitled, v1.SubscriptionUsage{Used: 12, Hard: 10}
	if e := findEvent(planFor(p, obs).Events, v1.EventSubscriptionsOverLimit); e != nil {
		t.Errorf("over the limit already in the last status: want no new event, got %+v", *e)
	}
	// Revoked: holding Subscriptions over a limit of 0 is what revocation means.
	p.Spec.Suspended = true
	if plan := planFor(p, obs); plan.OverLimit() != 0 {
		t.Errorf("suspended: want OverLimit 0, got %d", plan.OverLimit())
	}
}

// TestPlanPartnerProgramme: the plan uses the Strict spread when the
// entitlement says so, measures the partner from the Subscriptions of its
// own namespaces only, shows products and profile labels, and drops the
// measurement when nothing supplies it.
func TestPlanPartnerProgramme(t *testing.T) {
	strict := activeWithMaxNS(2, tierEnt(v1.TierAdvanced, func(e *v1.TierEntitlement) {
		e.QuotaPolicy = v1.QuotaStrict
		e.Requirements = &v1.TierRequirements{MinSubscriptions: 3}
		e.Products = []v1.ProductRule{{Name: "Backup"}}
	}))
	p := newPartner("acme", []string{"active-a"}, namespaces("a", "b", "x"))
	sale := Sale{Created: t0, Units: 1}
	obs := observe(map[string]NamespaceObservation{
		"a": {Exists: true, Owner: "acme", Sales: []Sale{sale}},
		"b": {Exists: true, Owner: "acme"},
		"x": {Exists: true, Owner: "globex", Sales: []Sale{sale, sale, sale}},
	})
	plan := planFor(p, obs, strict)
	if a, b := plan.Namespaces[0].SubscriptionsHard, plan.Namespaces[1].SubscriptionsHard; a+b > 10 || a < 1 {
		t.Errorf("Strict: hards %d + %d, want within the limit of 10", a, b)
	}
	if perf := plan.Performance; perf == nil || perf.Subscriptions != 1 || perf.MeetsRequirements {
		t.Errorf("performance %+v: want 1 Subscription counted (globex's namespace is not acme's), below", perf)
	}
	wantCond(t, plan.Conditions, v1.ConditionRequirementsMet, metav1.ConditionFalse, v1.ReasonBelowRequirements, "short by 2 Subscriptions")
	if v := plan.Namespaces[0].View[v1.AnnotationProducts]; v != "Backup" {
		t.Errorf("products annotation %q, want Backup", v)
	}
	if l := plan.Namespaces[0].Labels[v1.LabelType]; l != string(v1.PartnerReseller) {
		t.Errorf("type label %q", l)
	}
	revoked := planFor(newPartner("acme", []string{"expired"}, namespaces("a")), obs)
	if revoked.Performance != nil || !slices.Contains(revoked.Remove, v1.ConditionRequirementsMet) {
		t.Errorf("revoked: performance %+v, removed %v; want none and RequirementsMet removed", revoked.Performance, revoked.Remove)
	}
}

// TestPlanPartnerConfirmsRoomLive: a Strict spread that adds room to a
// namespace is only written from the API server's counts; one that only
// keeps or lowers limits, and the Shared spread, go by the cache.
func TestPlanPartnerConfirmsRoomLive(t *testing.T) {
	full := NamespaceObservation{Exists: true, Owner: "acme", Used: 5, Subscriptions: 5,
		Quota: QuotaObservation{Exists: true, Synced: true, Counted: true, SpecHard: 5, StatusHard: 5}}
	lowered := NamespaceObservation{Exists: true, Owner: "acme", Used: 2, Subscriptions: 2,
		Quota: QuotaObservation{Exists: true, Synced: true, Counted: true, SpecHard: 3, StatusHard: 3}}
	even := NamespaceObservation{Exists: true, Owner: "acme", Used: 2, Subscriptions: 2,
		Quota: QuotaObservation{Exists: true, Synced: true, Counted: true, SpecHard: 5, StatusHard: 5}}
	policy := func(q v1.QuotaPolicy) *v1.DistributorContract {
		return activeWithMaxNS(2, tierEnt(v1.TierAdvanced, func(e *v1.TierEntitlement) { e.QuotaPolicy = q }))
	}
	cases := []struct {
		name   string
		policy v1.QuotaPolicy
		b      NamespaceObservation
		live   bool
		want   bool
	}{
		{"Strict, room moves to the full namespace: confirm live", v1.QuotaStrict, lowered, false, true},
		{"Strict, already read live: write", v1.QuotaStrict, lowered, true, false},
		{"Strict, only lowering (room not yet freed): from the cache", v1.QuotaStrict, even, false, false},
		{"Shared: from the cache", v1.QuotaShared, lowered, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPartner("acme", []string{"active-a"}, namespaces("a", "b"))
			plan := planFor(p, func(in *PartnerInput) {
				observe(map[string]NamespaceObservation{"a": full, "b": tc.b})(in)
				in.Live = tc.live
			}, policy(tc.policy))
			if plan.ConfirmLive != tc.want {
				t.Errorf("ConfirmLive: want %v, got %v (hards %d, %d)", tc.want, plan.ConfirmLive,
					plan.Namespaces[0].SubscriptionsHard, plan.Namespaces[1].SubscriptionsHard)
			}
		})
	}
}
