// What a partner may sell, as its namespaces show it to the API server's
// admission policy (config/admission): the partner's type and
// specializations as labels, the contract's product rules as annotations.
package entitlement

import (
	"slices"
	"strings"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// ProfileLabels are the labels that show a partner's type and
// specializations on its namespaces.
func ProfileLabels(spec *v1.PartnerSpec) map[string]string {
	l := map[string]string{v1.LabelType: string(spec.Type)}
	if spec.Type == "" {
		l[v1.LabelType] = string(v1.PartnerReseller)
	}
	for _, s := range spec.Specializations {
		l[SpecializationLabel(s)] = "true"
	}
	return l
}

// SpecializationLabel is the namespace label of one specialization.
func SpecializationLabel(s v1.Specialization) string {
	return v1.LabelSpecializationPrefix + strings.ToLower(string(s))
}

// productView is what the namespaces of a partner at tier entitlement ent
// say of its products: nothing when ent restricts none; else the products
// it may sell (one per line) and those withheld for lack of a
// specialization ("Specialization:product" per line), both sorted.
func productView(spec *v1.PartnerSpec, ent *v1.TierEntitlement) map[string]string {
	if ent == nil || len(ent.Products) == 0 {
		return nil
	}
	var allowed, withheld []string
	for _, pr := range ent.Products {
		if pr.Specialization == "" || slices.Contains(spec.Specializations, pr.Specialization) {
			allowed = append(allowed, pr.Name)
		} else {
			withheld = append(withheld, string(pr.Specialization)+":"+pr.Name)
		}
	}
	slices.Sort(allowed)
	slices.Sort(withheld)
	v := map[string]string{v1.AnnotationProducts: strings.Join(allowed, "\n")}
	if len(withheld) > 0 {
		v[v1.AnnotationProductsWithheld] = strings.Join(withheld, "\n")
	}
	return v
}
