package entitlement

import (
	"fmt"
	"slices"

	admissionv1 "k8s.io/api/admissionregistration/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// ReliedPolicies are the ValidatingAdmissionPolicies the operator relies on
// to refuse Subscriptions: without them the API server admits forbidden
// products, and a contract's end takes effect only as fast as the
// operator revokes partner by partner.
var ReliedPolicies = []string{v1.PolicyProducts, v1.PolicyContractEnd}

// PolicyObservation is what the operator saw of one policy it relies on.
type PolicyObservation struct {
	// Policy is nil when it does not exist.
	Policy *admissionv1.ValidatingAdmissionPolicy
	// Bindings are the bindings whose policyName is the policy's.
	Bindings []admissionv1.ValidatingAdmissionPolicyBinding
}

// AdmissionProblems says, per policy the operator relies on (name →
// observation), what keeps it from refusing as shipped: missing, not
// failing closed, unbound, or bound without Deny. Sorted; none when all
// hold.
func AdmissionProblems(obs map[string]PolicyObservation) []string {
	var out []string
	for _, name := range ReliedPolicies {
		o := obs[name]
		switch {
		case o.Policy == nil:
			out = append(out, fmt.Sprintf("ValidatingAdmissionPolicy %s is missing", name))
		case o.Policy.Spec.FailurePolicy != nil && *o.Policy.Spec.FailurePolicy != admissionv1.Fail:
			out = append(out, fmt.Sprintf("ValidatingAdmissionPolicy %s does not fail closed (failurePolicy %s)", name, *o.Policy.Spec.FailurePolicy))
		case !slices.ContainsFunc(o.Bindings, denies):
			out = append(out, fmt.Sprintf("ValidatingAdmissionPolicy %s has no binding with validationActions [Deny]", name))
		}
	}
	return out
}

func denies(b admissionv1.ValidatingAdmissionPolicyBinding) bool {
	return slices.Contains(b.Spec.ValidationActions, admissionv1.Deny)
}
