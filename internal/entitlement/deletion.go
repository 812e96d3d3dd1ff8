package entitlement

import v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"

// ShouldDeleteNamespace is the only place that decides to delete a
// namespace. It defaults to no: only when the policy asks for deletion, the
// namespace is labelled for this partner, and the operator created it for
// this partner (annotation) — never an adopted or foreign one.
func ShouldDeleteNamespace(policyDelete bool, partner string, labels, annotations map[string]string) bool {
	if !policyDelete || partner == "" {
		return false
	}
	return labels[v1.LabelPartner] == partner &&
		labels[v1.LabelManagedBy] == v1.ManagedByValue &&
		annotations[v1.AnnotationCreatedBy] == partner
}
