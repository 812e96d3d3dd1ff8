package entitlement

import (
	"fmt"
	"maps"
	"strings"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// What the operator keeps on each of a partner's namespaces: labels that
// say whose it is and what the partner is, and the view — annotations the
// partner's own people read (they may read their namespace, not the
// cluster-scoped Partner) and the admission policies of config/admission
// judge Subscriptions by. Those policies fail closed: a namespace whose
// view does not say Entitled refuses every new Subscription. So the
// view is written before the access it guards, in the same pass: with the
// namespace when it is created, and before the RoleBinding and the quota
// at every transition (entitlement.Steps).

// View annotation keys: one a view does not have is removed from the
// namespace, so a key added here needs no second list to keep in step.
var viewKeys = []string{
	v1.AnnotationPrefix + "phase",
	v1.AnnotationPrefix + "contract",
	v1.AnnotationPrefix + "entitled-until",
	v1.AnnotationPrefix + "next",
	v1.AnnotationPrefix + "subscriptions-limit",
	v1.AnnotationProducts,
	v1.AnnotationProductsWithheld,
	v1.AnnotationSuccessor,
	v1.AnnotationSuccessorProducts,
}

// partnerView is the partner's entitlement as its namespaces show it: phase,
// supplying contract, until when, what happens then (and, for the
// contract-end policy, the successor and what it lets the partner sell),
// the partner-wide Subscription limit and the products it may sell. Keys
// of viewKeys it leaves out must not be on the namespace; a present key may
// be empty (a products list that allows nothing).
func partnerView(p *v1.Partner, plan PartnerPlan, successor *v1.TierEntitlement) map[string]string {
	v := make(map[string]string, len(viewKeys))
	v[v1.AnnotationPrefix+"phase"] = string(plan.Phase)
	v[v1.AnnotationPrefix+"subscriptions-limit"] = fmt.Sprint(plan.Hard)
	if plan.Phase != v1.PartnerEntitled {
		return v
	}
	v[v1.AnnotationPrefix+"contract"] = plan.Supply.Contract
	if end := plan.Supply.Schedule.SupplyEndsAt(); !end.IsZero() {
		v[v1.AnnotationPrefix+"entitled-until"] = formatTime(end)
		v[v1.AnnotationPrefix+"next"] = "revoke at " + formatTime(end)
		if plan.Successor != "" {
			v[v1.AnnotationPrefix+"next"] = "fail over to " + plan.Successor + " at " + formatTime(end)
			v[v1.AnnotationSuccessor] = plan.Successor
			if products, restricted := productView(&p.Spec, successor)[v1.AnnotationProducts]; restricted {
				v[v1.AnnotationSuccessorProducts] = products
			}
		}
	}
	maps.Copy(v, productView(&p.Spec, plan.Supply.Entitlement))
	return v
}

// namespaceLabels are the labels of a namespace of the partner's: whose it
// is, whether it is granted, and the partner's type and specializations.
func namespaceLabels(spec *v1.PartnerSpec, partner string, state v1.NamespaceState) map[string]string {
	l := ProfileLabels(spec)
	l[v1.LabelManagedBy] = v1.ManagedByValue
	l[v1.LabelPartner] = partner
	l[v1.LabelState] = StateLabel(state)
	return l
}

// StateLabel is the value of v1.LabelState for a namespace state.
func StateLabel(s v1.NamespaceState) string {
	if s == v1.NamespaceGranted || s == v1.NamespacePending {
		return string(v1.NamespaceGranted)
	}
	return string(v1.NamespaceRevoked)
}

// MetadataPatch is the change to a namespace's labels and annotations that
// makes it show a plan: key → new value, nil to remove. Empty when the
// namespace already shows it.
type MetadataPatch struct {
	Labels, Annotations map[string]*string
}

// Empty reports whether the patch changes nothing.
func (m MetadataPatch) Empty() bool { return len(m.Labels) == 0 && len(m.Annotations) == 0 }

// metadataPatch compares what a namespace has with what the plan wants on
// it: labels (a specialization label the partner no longer holds goes),
// the view (a view key it does not have goes), and the hand-over
// annotation once the hand-over is recorded.
func metadataPatch(haveLabels, haveAnnotations, wantLabels, view map[string]string, consumeHandOver bool) MetadataPatch {
	m := MetadataPatch{Labels: map[string]*string{}, Annotations: map[string]*string{}}
	set := func(into map[string]*string, have map[string]string, k, want string) {
		if cur, ok := have[k]; !ok || cur != want {
			into[k] = &want
		}
	}
	remove := func(into map[string]*string, have map[string]string, k string) {
		if _, ok := have[k]; ok {
			into[k] = nil
		}
	}
	for k, v := range wantLabels {
		set(m.Labels, haveLabels, k, v)
	}
	for k := range haveLabels {
		if _, want := wantLabels[k]; !want && strings.HasPrefix(k, v1.LabelSpecializationPrefix) {
			remove(m.Labels, haveLabels, k)
		}
	}
	for _, k := range viewKeys {
		if v, want := view[k]; want {
			set(m.Annotations, haveAnnotations, k, v)
		} else {
			remove(m.Annotations, haveAnnotations, k)
		}
	}
	if consumeHandOver {
		remove(m.Annotations, haveAnnotations, v1.AnnotationHandOverTo)
	}
	if len(m.Labels) == 0 {
		m.Labels = nil
	}
	if len(m.Annotations) == 0 {
		m.Annotations = nil
	}
	return m
}
