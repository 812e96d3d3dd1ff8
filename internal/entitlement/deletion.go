package entitlement

import (
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// ShouldDeleteNamespace is the only place that decides to delete a
// namespace. It defaults to no: only when the policy asks for deletion, the
// namespace is labelled for this partner, the operator created it for this
// partner (annotation), and its UID is the one the operator recorded in the
// partner's status when it created it. Labels and annotations can be forged
// by anyone who may write namespaces; the record cannot, so a namespace
// someone else created (adopted, forged, or deleted and created again) is
// never deleted.
func ShouldDeleteNamespace(policyDelete bool, partner string, recorded, uid types.UID, labels, annotations map[string]string) bool {
	if !policyDelete || partner == "" || recorded == "" || recorded != uid {
		return false
	}
	return labels[v1.LabelPartner] == partner &&
		labels[v1.LabelManagedBy] == v1.ManagedByValue &&
		annotations[v1.AnnotationCreatedBy] == partner
}

// RecordedUID is the UID status records for a namespace the operator
// created for the partner ("" when none is recorded, or it was adopted).
func RecordedUID(p *v1.Partner, name string) types.UID {
	rec, _ := recordOf(p, name)
	if rec.Adopted {
		return ""
	}
	return rec.UID
}

// RetainPlan is the plan for a namespace a deleted Partner leaves behind
// (deletionPolicy Retain, or not created by the operator): labelled
// Revoked, its view saying so (the admission policies refuse new
// Subscriptions there), no RoleBinding, a quota that admits no
// Subscription, keeps its other limits and is no longer owned by the
// Partner (the garbage collector would delete it with the Partner).
func RetainPlan(p *v1.Partner, obs NamespaceObservation) NamespacePlan {
	np := NamespacePlan{Name: obs.Name, State: v1.NamespaceRevoked, Manage: true, UID: obs.UID, ExtraQuota: obs.Quota.Extra}
	np.Labels = namespaceLabels(&p.Spec, p.Name, v1.NamespaceRevoked)
	np.View = partnerView(p, PartnerPlan{Phase: v1.PartnerRevoked}, nil)
	np.Metadata = metadataPatch(obs.Labels, obs.Annotations, np.Labels, np.View, false)
	return np
}
