package entitlement

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestMeasure(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	sale := func(ago time.Duration, units int64) Sale { return Sale{Created: now.Add(-ago), Units: units} }
	quarter := &metav1.Duration{Duration: 90 * day}
	contract := func(ents ...v1.TierEntitlement) *v1.DistributorContract {
		return &v1.DistributorContract{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1.DistributorContractSpec{Entitlements: ents}}
	}
	req := func(tier v1.Tier, r *v1.TierRequirements) v1.TierEntitlement {
		return v1.TierEntitlement{Tier: tier, Subscriptions: 100, Requirements: r}
	}
	ready := req(v1.TierReady, nil)
	advanced := req(v1.TierAdvanced, &v1.TierRequirements{MinSubscriptions: 3, MinUnits: 10, Period: quarter})
	premier := req(v1.TierPremier, &v1.TierRequirements{MinSubscriptions: 5, MinUnits: 50, Specializations: 2})
	all := contract(ready, advanced, premier)

	cases := []struct {
		name      string
		tier      v1.Tier
		specs     []v1.Specialization
		c         *v1.DistributorContract
		sales     []Sale
		meets     bool
		short     *v1.Shortfall
		qualifies v1.Tier
		reason    string
		subs      int32
		units     int64
		changesAt time.Time
	}{
		{name: "no requirements: met, qualifies for its own tier", tier: v1.TierReady, c: contract(ready),
			meets: true, qualifies: v1.TierReady, reason: v1.ReasonNoRequirements},
		{name: "below: the shortfall of each requirement", tier: v1.TierAdvanced, c: all,
			sales: []Sale{sale(day, 2)}, meets: false, short: &v1.Shortfall{Subscriptions: 2, Units: 8},
			qualifies: v1.TierReady, reason: v1.ReasonBelowRequirements, subs: 1, units: 2, changesAt: now.Add(89 * day)},
		{name: "met within the period; old sales do not count", tier: v1.TierAdvanced, c: all,
			sales: []Sale{sale(day, 4), sale(2*day, 4), sale(3*day, 4), sale(100*day, 40)}, meets: true,
			qualifies: v1.TierAdvanced, reason: v1.ReasonRequirementsMet, subs: 3, units: 12, changesAt: now.Add(87 * day)},
		{name: "qualifies for more: Premier counts everything held and needs two specializations", tier: v1.TierAdvanced,
			specs: []v1.Specialization{v1.SpecializationStorage, v1.SpecializationVirtualization}, c: all,
			sales: []Sale{sale(day, 10), sale(day, 10), sale(day, 10), sale(200*day, 10), sale(300*day, 10)}, meets: true,
			qualifies: v1.TierPremier, reason: v1.ReasonRequirementsMet, subs: 3, units: 30, changesAt: now.Add(89 * day)},
		{name: "specializations short", tier: v1.TierPremier, specs: []v1.Specialization{v1.SpecializationStorage}, c: all,
			sales: []Sale{sale(day, 10), sale(day, 10), sale(day, 10), sale(day, 10), sale(day, 10)}, meets: false,
			short: &v1.Shortfall{Specializations: 1}, qualifies: v1.TierAdvanced, reason: v1.ReasonBelowRequirements,
			subs: 5, units: 50, changesAt: now.Add(89 * day)},
		{name: "meets none the contract covers: qualifies for nothing", tier: v1.TierAdvanced, c: contract(advanced),
			meets: false, short: &v1.Shortfall{Subscriptions: 3, Units: 10}, reason: v1.ReasonBelowRequirements},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &v1.PartnerSpec{Tier: tc.tier, Specializations: tc.specs}
			m := Measure(spec, tc.c, EntitlementFor(tc.c, tc.tier), tc.sales, now)
			p := m.Performance
			if p.MeetsRequirements != tc.meets || p.QualifiesFor != tc.qualifies || p.Subscriptions != tc.subs || p.Units != tc.units {
				t.Errorf("performance %+v: want meets %v, qualifies %q, %d subscriptions, %d units", p, tc.meets, tc.qualifies, tc.subs, tc.units)
			}
			if (p.Shortfall == nil) != (tc.short == nil) || (p.Shortfall != nil && *p.Shortfall != *tc.short) {
				t.Errorf("shortfall %+v, want %+v", p.Shortfall, tc.short)
			}
			wantStatus := metav1.ConditionTrue
			if !tc.meets {
				wantStatus = metav1.ConditionFalse
			}
			if m.Condition.Type != v1.ConditionRequirementsMet || m.Condition.Status != wantStatus || m.Condition.Reason != tc.reason || m.Condition.Message == "" {
				t.Errorf("condition %+v, want %s %s with a message", m.Condition, wantStatus, tc.reason)
			}
			if !m.ChangesAt.Equal(tc.changesAt) {
				t.Errorf("changes at %s, want %s", m.ChangesAt, tc.changesAt)
			}
		})
	}
}

func TestRequirementsEvent(t *testing.T) {
	met := metav1.Condition{Type: v1.ConditionRequirementsMet, Status: metav1.ConditionTrue, Reason: v1.ReasonRequirementsMet, Message: "meets"}
	below := metav1.Condition{Type: v1.ConditionRequirementsMet, Status: metav1.ConditionFalse, Reason: v1.ReasonBelowRequirements, Message: "below"}
	cases := []struct {
		name   string
		old    []metav1.Condition
		cur    metav1.Condition
		reason string // "" for no event
	}{
		{"first measured, met: no news", nil, met, ""},
		{"first measured, below: announced", nil, below, v1.ReasonBelowRequirements},
		{"unchanged: nothing", []metav1.Condition{below}, below, ""},
		{"falls below", []metav1.Condition{met}, below, v1.ReasonBelowRequirements},
		{"meets again", []metav1.Condition{below}, met, v1.ReasonRequirementsMet},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := requirementsEvent(tc.old, tc.cur)
			if ok != (tc.reason != "") || e.Reason != tc.reason {
				t.Errorf("event %+v (%v), want reason %q", e, ok, tc.reason)
			}
		})
	}
}

func TestProductView(t *testing.T) {
	ent := &v1.TierEntitlement{Products: []v1.ProductRule{
		{Name: "Directory Server", Specialization: v1.SpecializationDirectoryServices},
		{Name: "Backup"},
		{Name: "Hypervisor", Specialization: v1.SpecializationVirtualization},
	}}
	spec := &v1.PartnerSpec{Specializations: []v1.Specialization{v1.SpecializationVirtualization}}
	v := productView(spec, ent)
	if got, want := v[v1.AnnotationProducts], "Backup\nHypervisor"; got != want {
		t.Errorf("products %q, want %q", got, want)
	}
	if got, want := v[v1.AnnotationProductsWithheld], "DirectoryServices:Directory Server"; got != want {
		t.Errorf("withheld %q, want %q", got, want)
	}
	if v := productView(spec, &v1.TierEntitlement{}); v != nil {
		t.Errorf("no product rules: want no annotations, got %v", v)
	}
	if l := ProfileLabels(&v1.PartnerSpec{Specializations: []v1.Specialization{v1.SpecializationDirectoryServices}}); l[v1.LabelType] != "Reseller" || l[v1.LabelSpecializationPrefix+"directoryservices"] != "true" || len(l) != 2 {
		t.Errorf("profile labels %v", l)
	}
}
