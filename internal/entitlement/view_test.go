package entitlement

import (
	"maps"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// TestViewAtEveryTransition: what a namespace shows the admission
// policies, for each state a partner can be in.
func TestViewAtEveryTransition(t *testing.T) {
	products := func(names ...string) func(*v1.TierEntitlement) {
		return func(e *v1.TierEntitlement) {
			for _, n := range names {
				e.Products = append(e.Products, v1.ProductRule{Name: n})
			}
		}
	}
	ending := newContract("ending", starts(t0.Add(-day)), ends(t0.Add(day)), notice(day), tierEnt(v1.TierAdvanced, products("Premium", "Basic")))
	next := newContract("next", starts(t0.Add(-day)), tierEnt(v1.TierAdvanced, products("Basic")))
	open := newContract("open", starts(t0.Add(-day)))
	nothing := newContract("nothing", starts(t0.Add(-day)), tierEnt(v1.TierAdvanced, func(e *v1.TierEntitlement) {
		e.Products = []v1.ProductRule{{Name: "Virt Pack", Specialization: v1.SpecializationVirtualization}}
	}))
	phase, contract, successor, succProducts := v1.AnnotationPrefix+"phase", v1.AnnotationPrefix+"contract", v1.AnnotationSuccessor, v1.AnnotationSuccessorProducts
	cases := []struct {
		name      string
		p         *v1.Partner
		contracts []*v1.DistributorContract
		want      map[string]string // keys that must have these values
		absent    []string          // keys that must not be there
	}{
		{"entitled, ends, fails over to a contract with fewer products",
			newPartner("acme", []string{"ending", "next"}), []*v1.DistributorContract{ending, next},
			map[string]string{phase: "Entitled", contract: "ending", successor: "next", succProducts: "Basic", v1.AnnotationProducts: "Basic\nPremium"}, nil},
		{"entitled, ends, fails over to a contract without product rules",
			newPartner("acme", []string{"ending", "open"}), []*v1.DistributorContract{ending, open},
			map[string]string{phase: "Entitled", successor: "open"}, []string{succProducts}},
		{"entitled, ends, nothing after: revoked then",
			newPartner("acme", []string{"ending"}), []*v1.DistributorContract{ending},
			map[string]string{phase: "Entitled", contract: "ending"}, []string{successor, succProducts}},
		{"entitled on an open-ended contract without rules",
			newPartner("acme", []string{"open"}), []*v1.DistributorContract{open},
			map[string]string{phase: "Entitled", contract: "open"}, []string{successor, v1.AnnotationProducts, v1.AnnotationPrefix + "entitled-until"}},
		{"every product withheld: a products list that allows nothing, not none",
			newPartner("acme", []string{"nothing"}), []*v1.DistributorContract{nothing},
			map[string]string{v1.AnnotationProducts: "", v1.AnnotationProductsWithheld: "Virtualization:Virt Pack"}, nil},
		{"suspended: no contract, nothing to sell",
			newPartner("acme", []string{"open"}, suspended()), []*v1.DistributorContract{open},
			map[string]string{phase: "Suspended", v1.AnnotationPrefix + "subscriptions-limit": "0"}, []string{contract, successor, v1.AnnotationProducts}},
		{"revoked",
			newPartner("acme", []string{"gone"}, oldStatus(v1.PartnerStatus{Phase: v1.PartnerEntitled})), nil,
			map[string]string{phase: "Revoked"}, []string{contract, successor}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tc.p, tc.contracts...)
			in.Namespaces["acme-prod"] = NamespaceObservation{Exists: true, Owner: "acme"}
			plan := PlanPartner(settled(in))
			var view map[string]string
			for _, np := range plan.Namespaces {
				if np.Name == "acme-prod" {
					view = np.View
				}
			}
			if view == nil {
				t.Fatalf("no view planned for acme-prod: %+v", plan.Namespaces)
			}
			for k, v := range tc.want {
				if got, ok := view[k]; !ok || got != v {
					t.Errorf("%s: want %q, got %q (present %v)", k, v, got, ok)
				}
			}
			for _, k := range tc.absent {
				if got, ok := view[k]; ok {
					t.Errorf("%s: want absent, got %q", k, got)
				}
			}
			for k := range view {
				if !contains(viewKeys, k) {
					t.Errorf("view key %s is not in viewKeys: it would never be removed", k)
				}
			}
		})
	}
}

func TestMetadataPatch(t *testing.T) {
	s := func(v string) *string { return &v }
	labels := map[string]string{v1.LabelPartner: "acme", v1.LabelState: "Granted", v1.LabelSpecializationPrefix + "storage": "true"}
	view := map[string]string{v1.AnnotationPrefix + "phase": "Entitled", v1.AnnotationProducts: ""}
	cases := []struct {
		name             string
		haveL, haveA     map[string]string
		consume          bool
		wantL, wantA     map[string]*string
		wantEmpty        bool
		otherKeysUntouch bool
	}{
		{name: "already shown: nothing to write", haveL: labels, haveA: map[string]string{v1.AnnotationPrefix + "phase": "Entitled", v1.AnnotationProducts: "", "team": "x"}, wantEmpty: true},
		{name: "new namespace metadata", haveL: nil, haveA: nil,
			wantL: map[string]*string{v1.LabelPartner: s("acme"), v1.LabelState: s("Granted"), v1.LabelSpecializationPrefix + "storage": s("true")},
			wantA: map[string]*string{v1.AnnotationPrefix + "phase": s("Entitled"), v1.AnnotationProducts: s("")}},
		{name: "a view key the plan no longer has goes; others' keys stay",
			haveL: labels, haveA: map[string]string{v1.AnnotationPrefix + "phase": "Entitled", v1.AnnotationProducts: "", v1.AnnotationSuccessor: "next", "team": "x"},
			wantA: map[string]*string{v1.AnnotationSuccessor: nil}},
		{name: "a specialization no longer held goes",
			haveL: map[string]string{v1.LabelPartner: "acme", v1.LabelState: "Granted", v1.LabelSpecializationPrefix + "storage": "true", v1.LabelSpecializationPrefix + "desktop": "true"},
			haveA: map[string]string{v1.AnnotationPrefix + "phase": "Entitled", v1.AnnotationProducts: ""},
			wantL: map[string]*string{v1.LabelSpecializationPrefix + "desktop": nil}},
		{name: "a recorded hand-over's consent is consumed", consume: true,
			haveL: labels, haveA: map[string]string{v1.AnnotationPrefix + "phase": "Entitled", v1.AnnotationProducts: "", v1.AnnotationHandOverTo: "acme"},
			wantA: map[string]*string{v1.AnnotationHandOverTo: nil}},
	}
	eq := func(a, b map[string]*string) bool {
		return maps.EqualFunc(a, b, func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) })
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := metadataPatch(tc.haveL, tc.haveA, labels, view, tc.consume)
			if got.Empty() != tc.wantEmpty || !eq(got.Labels, tc.wantL) || !eq(got.Annotations, tc.wantA) {
				t.Errorf("want labels %v annotations %v (empty %v), got %+v", tc.wantL, tc.wantA, tc.wantEmpty, got)
			}
		})
	}
}

func TestRevokedNamespacesKeepTheirOtherLimits(t *testing.T) {
	extra := corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("4")}
	p := newPartner("acme", []string{"gone"}, oldStatus(v1.PartnerStatus{Phase: v1.PartnerEntitled}))
	in := input(p)
	in.Namespaces["acme-prod"] = NamespaceObservation{Exists: true, Owner: "acme", Quota: QuotaObservation{Exists: true, SpecHard: 5, Extra: extra}}
	plan := PlanPartner(settled(in))
	np := nsPlan(t, plan, "acme-prod")
	cpu := np.ExtraQuota[corev1.ResourceRequestsCPU]
	if np.State != v1.NamespaceRevoked || np.SubscriptionsHard != 0 || cpu.Cmp(resource.MustParse("4")) != 0 {
		t.Errorf("revoked: want no Subscriptions and requests.cpu 4 kept, got %+v", np)
	}
	obs := ObserveQuota(&corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
		v1.SubscriptionQuotaResource: resource.MustParse("5"), v1.QuotaRecountResource: resource.MustParse("1767225600"),
		corev1.ResourceRequestsCPU: resource.MustParse("4")}}})
	if obs.SpecHard != 5 || obs.RecountAt.IsZero() || len(obs.Extra) != 1 {
		t.Errorf("ObserveQuota: want hard 5, a recount, one other limit; got %+v", obs)
	}
}

func TestPhaseAfterARevocationWhileAContractIsPending(t *testing.T) {
	fix := supplyFixtures()
	wasEntitled := newPartner("acme", []string{"expired", "pending"}, oldStatus(v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "expired"}))
	if got := PlanPartner(input(wasEntitled, fix["expired"], fix["pending"])).Phase; got != v1.PartnerRevoked {
		t.Errorf("entitled before, a listed contract pending: want Revoked until granted again, got %s", got)
	}
	never := newPartner("acme", []string{"expired", "pending"})
	if got := PlanPartner(input(never, fix["expired"], fix["pending"])).Phase; got != v1.PartnerPending {
		t.Errorf("never entitled, a listed contract pending: want Pending, got %s", got)
	}
}

func TestForeignNamespacesAreBoundedInStatus(t *testing.T) {
	p := newPartner("acme", []string{"open"})
	in := input(p, newContract("open", starts(t0.Add(-day))))
	for i := range 50 {
		name := "foreign-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		in.Unlisted = append(in.Unlisted, name)
		in.Namespaces[name] = NamespaceObservation{Exists: true, Owner: "acme", UID: "x", Children: i == 49}
	}
	plan := PlanPartner(in)
	conflicts := 0
	for _, np := range plan.Namespaces {
		if np.State == v1.NamespaceConflict {
			conflicts++
		}
	}
	if conflicts != MaxForeignNamespaces {
		t.Errorf("want %d foreign namespaces listed, got %d", MaxForeignNamespaces, conflicts)
	}
	if !contains(plan.Strays, "foreign-bx") {
		t.Errorf("a foreign namespace beyond the listed ones that holds the partner's children: want it among the strays (revoked), got %v", plan.Strays)
	}
}

func TestAdmissionProblems(t *testing.T) {
	policy := func(fp admissionv1.FailurePolicyType) *admissionv1.ValidatingAdmissionPolicy {
		return &admissionv1.ValidatingAdmissionPolicy{Spec: admissionv1.ValidatingAdmissionPolicySpec{FailurePolicy: ptr.To(fp)}}
	}
	binding := func(actions ...admissionv1.ValidationAction) []admissionv1.ValidatingAdmissionPolicyBinding {
		return []admissionv1.ValidatingAdmissionPolicyBinding{{Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{ValidationActions: actions}}}
	}
	ok := PolicyObservation{Policy: policy(admissionv1.Fail), Bindings: binding(admissionv1.Deny)}
	cases := []struct {
		name     string
		products PolicyObservation
		want     string
	}{
		{"as shipped", ok, ""},
		{"policy deleted", PolicyObservation{Bindings: binding(admissionv1.Deny)}, "is missing"},
		{"binding deleted", PolicyObservation{Policy: policy(admissionv1.Fail)}, "no binding"},
		{"binding only warns", PolicyObservation{Policy: policy(admissionv1.Fail), Bindings: binding(admissionv1.Warn, admissionv1.Audit)}, "no binding"},
		{"fails open", PolicyObservation{Policy: policy(admissionv1.Ignore), Bindings: binding(admissionv1.Deny)}, "does not fail closed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := AdmissionProblems(map[string]PolicyObservation{v1.PolicyProducts: tc.products, v1.PolicyContractEnd: ok})
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("want none, got %v", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want) || !strings.Contains(got[0], v1.PolicyProducts)):
				t.Errorf("want one problem naming %s: %q, got %v", v1.PolicyProducts, tc.want, got)
			}
		})
	}
}
