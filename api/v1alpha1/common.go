package v1alpha1

import "strings"

// Labels, annotations and names the operator writes. They are part of the
// user-facing contract: selectors, policies and tests rely on them.
const (
	// LabelManagedBy marks every object the operator manages.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on the operator's objects.
	ManagedByValue = "entitlement-operator"
	// LabelPartner names the Partner a namespace or child belongs to.
	LabelPartner = "entitlements.partnerops.io/partner"
	// LabelState shows on a partner namespace whether its entitlements are
	// currently granted (Granted) or revoked (Revoked).
	LabelState = "entitlements.partnerops.io/state"
	// LabelBindable marks a ClusterRole the operator may bind. Roles without
	// it ("true") are never bound, whatever a contract says.
	LabelBindable = "entitlements.partnerops.io/bindable"
	// AnnotationCreatedBy is set on namespaces the operator created itself;
	// only those are deleted by deletionPolicy Delete.
	AnnotationCreatedBy = "entitlements.partnerops.io/created-by"
	// AnnotationPrefix starts the annotations the operator keeps on a
	// partner's namespaces so that the partner's own people, who may read
	// their namespace but not the cluster-scoped Partner, see their
	// entitlement: <prefix>phase, contract, entitled-until, next and
	// subscriptions-limit (their usage is in the ResourceQuota's status).
	AnnotationPrefix = "entitlements.partnerops.io/"
	// LabelType shows a partner namespace's partner type (spec.type).
	LabelType = "entitlements.partnerops.io/type"
	// LabelSpecializationPrefix starts one label per specialization the
	// partner holds, in lower case, valued "true"
	// (specialization.entitlements.partnerops.io/storage: "true").
	LabelSpecializationPrefix = "specialization.entitlements.partnerops.io/"
	// AnnotationProducts, on a granted namespace whose tier entitlement
	// restricts products, lists one per line the products the partner may
	// sell there. The ValidatingAdmissionPolicy
	// entitlements-subscription-products refuses any other product.
	AnnotationProducts = "entitlements.partnerops.io/products"
	// AnnotationProductsWithheld lists, one "Specialization:product" per
	// line, the contract's products the partner may not sell for lack of a
	// specialization (the policy's message names it).
	AnnotationProductsWithheld = "entitlements.partnerops.io/products-withheld"
	// AnnotationSuccessor, on an entitled namespace whose supply ends,
	// names the contract the partner fails over to then; absent, the
	// partner is revoked then. The ValidatingAdmissionPolicy
	// entitlements-subscription-contract-end reads it with the supplying
	// contract's status: when that contract stops supplying, a namespace
	// without a successor refuses new Subscriptions at once, before the
	// operator has written anything for the partner.
	AnnotationSuccessor = "entitlements.partnerops.io/successor"
	// AnnotationSuccessorProducts lists, one per line, the products the
	// partner may sell through the successor (absent: the successor
	// restricts none). The contract-end policy applies it from the instant
	// the supplying contract stops supplying.
	AnnotationSuccessorProducts = "entitlements.partnerops.io/successor-products"
	// AnnotationAdopt, on a Partner, lists (comma-separated) existing
	// namespaces the operator did not create that the partner takes over.
	// The hand-over also needs the consent of someone who may write the
	// namespace itself: its partner label and AnnotationHandOverTo naming
	// the partner (the Partner's editors cannot write namespaces).
	AnnotationAdopt = "entitlements.partnerops.io/adopt"
	// AnnotationHandOverTo, on a namespace, names the partner it is handed
	// over to (see AnnotationAdopt). The operator removes it once it has
	// recorded the namespace as the partner's: consent is given once, so a
	// Partner deleted and created again under the same name does not
	// inherit the namespaces of the old one.
	AnnotationHandOverTo = "entitlements.partnerops.io/hand-over-to"
	// AnnotationCreationToken is a one-time random token the operator puts
	// on a namespace it creates; the SHA-256 of it is recorded in the
	// partner's status before the create (status.namespaces[].creationDigest).
	// Someone who creates the namespace first, in the moment between the
	// record and the create, cannot know the token: the operator's create
	// fails and the namespace is a Conflict. After a crash between its
	// create and recording the UID, the token proves the namespace its own.
	AnnotationCreationToken = "entitlements.partnerops.io/creation-token"

	// PolicyProducts is the ValidatingAdmissionPolicy (and its binding)
	// that refuses a Subscription in a namespace whose view does not say
	// Entitled, or for a product the partner may not sell
	// (config/admission).
	PolicyProducts = "entitlements-subscription-products"
	// PolicyContractEnd is the ValidatingAdmissionPolicy (and its binding)
	// that refuses a Subscription from the instant the contract supplying
	// the namespace stops supplying, unless the partner fails over then
	// (config/admission).
	PolicyContractEnd = "entitlements-subscription-contract-end"

	// Finalizer keeps a Partner until its entitlements are revoked.
	Finalizer = "entitlements.partnerops.io/revoke"

	// RoleBindingName is the RoleBinding in each partner namespace.
	RoleBindingName = "partner-access"
	// ResourceQuotaName is the ResourceQuota in each partner namespace.
	ResourceQuotaName = "partner-entitlements"
	// SubscriptionQuotaResource is the object-count quota over Subscriptions.
	SubscriptionQuotaResource = "count/subscriptions.entitlements.partnerops.io"
	// QuotaRecountResource is a hard limit the operator sets on its quota
	// only while kube-controller-manager has not counted Subscriptions
	// there: a change of spec.hard is what makes kube-controller-manager
	// recount a quota at once (otherwise it waits for its full resync, 5
	// minutes by default). Its value is the Unix time of the request; no
	// object is ever counted against it, and the operator removes it once
	// the quota is counted.
	QuotaRecountResource = "entitlements.partnerops.io/recount"
	// DefaultClusterRolePrefix + lower-case tier is a tier's default ClusterRole.
	DefaultClusterRolePrefix = "entitlements-partner-"
)

// Tier is a partner programme level.
// +kubebuilder:validation:Enum=Ready;Advanced;Premier
type Tier string

// Partner tiers.
const (
	TierReady    Tier = "Ready"
	TierAdvanced Tier = "Advanced"
	TierPremier  Tier = "Premier"
)

// Tiers are the programme's tiers, lowest first.
var Tiers = []Tier{TierReady, TierAdvanced, TierPremier}

// DefaultClusterRole is the ClusterRole a tier binds unless its contract
// entitlement names another: entitlements-partner-<tier in lower case>.
func DefaultClusterRole(t Tier) string {
	return DefaultClusterRolePrefix + strings.ToLower(string(t))
}

// Region is an ISO 3166-1 alpha-2 country code in upper case, such as DE.
// +kubebuilder:validation:Pattern=`^[A-Z]{2}$`
type Region string
