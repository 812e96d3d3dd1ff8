package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PartnerType is the partner's business model.
// +kubebuilder:validation:Enum=Reseller;SystemIntegrator;ApplicationDeveloper;ServiceProvider
type PartnerType string

// Partner types.
const (
	PartnerReseller             PartnerType = "Reseller"
	PartnerSystemIntegrator     PartnerType = "SystemIntegrator"
	PartnerApplicationDeveloper PartnerType = "ApplicationDeveloper"
	PartnerServiceProvider      PartnerType = "ServiceProvider"
)

// Specialization is a competency a partner is certified for.
// +kubebuilder:validation:Enum=Virtualization;Storage;DirectoryServices;Desktop;Middleware
type Specialization string

// Specializations.
const (
	SpecializationVirtualization    Specialization = "Virtualization"
	SpecializationStorage           Specialization = "Storage"
	SpecializationDirectoryServices Specialization = "DirectoryServices"
	SpecializationDesktop           Specialization = "Desktop"
	SpecializationMiddleware        Specialization = "Middleware"
)

// DeletionPolicy says what happens to a partner's namespaces when the
// Partner is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

// Deletion policies.
const (
	// DeletionRetain keeps namespaces and their content; access is revoked.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionDelete deletes the namespaces the operator created (never ones
	// it adopted) with everything in them.
	DeletionDelete DeletionPolicy = "Delete"
)

// SubjectKind is the kind of an access subject.
// +kubebuilder:validation:Enum=User;Group;ServiceAccount
type SubjectKind string

// Subject kinds.
const (
	SubjectUser           SubjectKind = "User"
	SubjectGroup          SubjectKind = "Group"
	SubjectServiceAccount SubjectKind = "ServiceAccount"
)

// NamespaceName is a namespace a partner works in: a DNS label (lower-case
// letters, digits and '-', at most 63 characters), never default or kube-*.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
// +kubebuilder:validation:XValidation:rule="self != 'default' && !self.startsWith('kube-')",message="a partner namespace must not be default or start with kube-"
type NamespaceName string

// Subject is someone who gets the tier's ClusterRole in the partner's
// namespaces.
// +kubebuilder:validation:XValidation:rule="self.kind != 'ServiceAccount' || (has(self.namespace) && size(self.namespace) > 0)",message="a ServiceAccount subject needs a namespace"
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' || !has(self.namespace)",message="only a ServiceAccount subject may have a namespace"
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' || !self.name.startsWith('system:')",message="a User or Group named system:... is one of Kubernetes' own (system:authenticated is every user of the cluster): name the partner's people or groups"
type Subject struct {
	// Kind is User, Group or ServiceAccount.
	// +required
	Kind SubjectKind `json:"kind"`

	// Name of the user, group or service account.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of a ServiceAccount subject; must be empty for other kinds.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// PartnerSpec is who the partner is and what it may be supplied through.
type PartnerSpec struct {
	// DisplayName is the partner's legal or display name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName,omitempty"`

	// Tier is the partner's programme level: Ready, Advanced or Premier. It
	// selects the contract entitlement and the ClusterRole.
	// +required
	Tier Tier `json:"tier"`

	// Type is the partner's business model. Default Reseller.
	// +optional
	// +kubebuilder:default=Reseller
	Type PartnerType `json:"type,omitempty"`

	// Specializations the partner is certified for, each at most once.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5
	Specializations []Specialization `json:"specializations,omitempty"`

	// Region is the partner's ISO 3166-1 alpha-2 country code (upper case,
	// such as DE). Only contracts of the same region supply it.
	// +required
	Region Region `json:"region"`

	// Contracts are DistributorContract names in order of preference. The
	// first that exists, is of the partner's region, covers its tier and
	// supplies now (Active, Expiring or Grace) supplies the partner; when it
	// stops, the partner fails over to the next one, or is revoked.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(c, self.exists_one(d, d == c))",message="contracts must not list a contract twice"
	Contracts []string `json:"contracts"`

	// Namespaces the partner works in, each at most once. The first
	// maxNamespaces of them (from the supplying contract's tier entitlement)
	// are granted. The operator creates missing ones; it never adopts one that
	// exists without this partner's label.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Namespaces []NamespaceName `json:"namespaces"`

	// Access lists who gets the tier's ClusterRole in the granted namespaces.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Access []Subject `json:"access"`

	// Suspended revokes the partner's entitlements now (RoleBindings removed,
	// no new Subscriptions) and keeps everything else; false restores them.
	// +optional
	Suspended bool `json:"suspended,omitempty"`

	// DeletionPolicy is what deleting the Partner does to its namespaces:
	// Retain (default) keeps them with their content, revoked; Delete deletes
	// the namespaces the operator created (never adopted ones).
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// PartnerPhase is the partner's entitlement state.
// +kubebuilder:validation:Enum=Pending;Entitled;Revoked;Suspended
type PartnerPhase string

// Partner phases.
const (
	// PartnerPending: no contract supplies it now, but one listed will start;
	// access is revoked until then (also between two contracts).
	PartnerPending PartnerPhase = "Pending"
	// PartnerEntitled: a contract supplies it; its namespaces are granted.
	PartnerEntitled PartnerPhase = "Entitled"
	// PartnerRevoked: no listed contract supplies it; access revoked.
	PartnerRevoked PartnerPhase = "Revoked"
	// PartnerSuspended: spec.suspended is true; access revoked.
	PartnerSuspended PartnerPhase = "Suspended"
)

// NamespaceState is what the operator did with one listed namespace.
// +kubebuilder:validation:Enum=Granted;Pending;Revoked;Conflict;OverLimit
type NamespaceState string

// Namespace states.
const (
	// NamespaceGranted: namespace, RoleBinding and quota in place, and the
	// quota counted, so that the API server admits a Subscription within
	// the limit.
	NamespaceGranted NamespaceState = "Granted"
	// NamespacePending: to be granted, not usable yet: the operator is about
	// to create the namespace, or kube-controller-manager has not counted
	// Subscriptions in its quota yet (the API server refuses every
	// Subscription until it has). The message says which.
	NamespacePending NamespaceState = "Pending"
	// NamespaceRevoked: no RoleBinding, subscription quota 0, content kept.
	NamespaceRevoked NamespaceState = "Revoked"
	// NamespaceConflict: exists, but the operator did not create it for this
	// partner (another partner's, unlabelled, or labelled for this partner
	// by someone else); left untouched, except that anything the operator
	// itself put there for this partner is revoked.
	NamespaceConflict NamespaceState = "Conflict"
	// NamespaceOverLimit: beyond the tier's maxNamespaces; not granted.
	NamespaceOverLimit NamespaceState = "OverLimit"
)

// SubscriptionUsage is a partner's subscription count against its limit.
type SubscriptionUsage struct {
	// Used is how many Subscriptions the partner holds across its namespaces,
	// including those it no longer lists (they still count against Hard).
	// +optional
	Used int32 `json:"used"`
	// Hard is how many it may hold (0 when revoked).
	// +optional
	Hard int32 `json:"hard"`
	// Summary is "used/hard", for display.
	// +optional
	Summary string `json:"summary,omitempty"`
}

// Performance is a partner measured against its tier's requirements.
type Performance struct {
	// Subscriptions counted: those created within the requirements'
	// period when it is set (a sliding window ending now), else all held.
	Subscriptions int32 `json:"subscriptions"`
	// Units is the sum of their spec.units.
	Units int64 `json:"units"`
	// MeetsRequirements: the partner meets its tier's requirements (true
	// when the tier has none).
	MeetsRequirements bool `json:"meetsRequirements"`
	// Shortfall is what it lacks for its tier (absent when it meets them).
	// +optional
	Shortfall *Shortfall `json:"shortfall,omitempty"`
	// QualifiesFor is the highest tier the supplying contract covers whose
	// requirements the partner meets (empty if none). The vendor decides
	// whether to change spec.tier; the operator never does.
	// +optional
	QualifiesFor Tier `json:"qualifiesFor,omitempty"`
}

// Shortfall is how far a partner is below its tier's requirements.
type Shortfall struct {
	// +optional
	Subscriptions int32 `json:"subscriptions,omitempty"`
	// +optional
	Units int64 `json:"units,omitempty"`
	// +optional
	Specializations int32 `json:"specializations,omitempty"`
}

// NamespaceStatus is the state of one listed namespace.
type NamespaceStatus struct {
	// Name of the namespace.
	Name string `json:"name"`
	// State: Granted, Pending, Revoked, Conflict or OverLimit.
	State NamespaceState `json:"state"`
	// UID of the namespace the operator created for the partner. It is the
	// operator's record of which namespaces are the partner's: labels and
	// annotations can be written by anyone who may write namespaces, this
	// status only by the operator. A namespace of the listed name with
	// another UID is never adopted, and deletionPolicy Delete deletes only
	// namespaces whose UID is recorded here.
	// +optional
	UID types.UID `json:"uid,omitempty"`
	// Adopted: the operator did not create the namespace; it was handed
	// over (annotation entitlements.partnerops.io/adopt on the Partner and
	// entitlements.partnerops.io/hand-over-to on the namespace) or managed
	// before UIDs were recorded. deletionPolicy Delete never deletes an
	// adopted namespace.
	// +optional
	Adopted bool `json:"adopted,omitempty"`
	// CreationDigest is the SHA-256 (hex) of the one-time token the
	// operator puts on the namespace it is about to create (annotation
	// entitlements.partnerops.io/creation-token), recorded before the
	// create; empty once the UID is recorded.
	// +optional
	CreationDigest string `json:"creationDigest,omitempty"`
	// SubscriptionsUsed is how many Subscriptions are in the namespace.
	// +optional
	SubscriptionsUsed int32 `json:"subscriptionsUsed"`
	// SubscriptionsHard is the namespace's current share of the partner's
	// subscription limit.
	// +optional
	SubscriptionsHard int32 `json:"subscriptionsHard"`
	// Message explains a state other than Granted.
	// +optional
	Message string `json:"message,omitempty"`
}

// NextOutcome is what the next scheduled change does.
// +kubebuilder:validation:Enum=FailOver;Revoke;Grant
type NextOutcome string

// Next outcomes.
const (
	// NextFailOver: the supply ends and another listed contract takes over.
	NextFailOver NextOutcome = "FailOver"
	// NextRevoke: the supply ends and no listed contract is left.
	NextRevoke NextOutcome = "Revoke"
	// NextGrant: a listed contract starts supplying a partner not entitled now.
	NextGrant NextOutcome = "Grant"
)

// NextChange is a scheduled change of a partner's entitlement.
type NextChange struct {
	// At is when it happens (a contract's startsAt, or endsAt plus grace).
	At metav1.Time `json:"at"`
	// Outcome: FailOver, Revoke or Grant.
	Outcome NextOutcome `json:"outcome"`
	// Contract supplying the partner after the change; empty for Revoke.
	// +optional
	Contract string `json:"contract,omitempty"`
}

// HistoryOutcome is what an entitlement change did.
// +kubebuilder:validation:Enum=Granted;FailedOver;Revoked;Suspended;Resumed;Regranted
type HistoryOutcome string

// History outcomes.
const (
	HistoryGranted    HistoryOutcome = "Granted"
	HistoryFailedOver HistoryOutcome = "FailedOver"
	HistoryRevoked    HistoryOutcome = "Revoked"
	HistorySuspended  HistoryOutcome = "Suspended"
	// HistoryResumed: entitled again when spec.suspended went false.
	HistoryResumed HistoryOutcome = "Resumed"
	// HistoryRegranted: entitled again after a revocation.
	HistoryRegranted HistoryOutcome = "Regranted"
)

// HistoryEntry is one entitlement change of a partner.
type HistoryEntry struct {
	// Time the operator applied the change.
	Time metav1.Time `json:"time"`
	// Outcome: Granted, FailedOver, Revoked, Suspended, Resumed, Regranted.
	Outcome HistoryOutcome `json:"outcome"`
	// Contract supplying the partner after the change (empty if none).
	// +optional
	Contract string `json:"contract,omitempty"`
	// PreviousContract supplying it before (empty if none).
	// +optional
	PreviousContract string `json:"previousContract,omitempty"`
	// Message says why.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// PartnerStatus is what the operator observed and did.
type PartnerStatus struct {
	// Phase: Entitled (a listed contract supplies the partner), Pending (none
	// does now, but a listed one will start: access revoked until then, also
	// in a gap between two contracts), Revoked (none does and none will) or
	// Suspended (spec.suspended).
	// +optional
	Phase PartnerPhase `json:"phase,omitempty"`

	// Contract is the DistributorContract supplying the partner now; empty
	// when none does.
	// +optional
	Contract string `json:"contract,omitempty"`

	// EntitledUntil is when the current supply ends (the contract's endsAt
	// plus gracePeriod); empty when open-ended or not entitled. At that
	// instant the partner fails over to its next contract or is revoked.
	// +optional
	EntitledUntil *metav1.Time `json:"entitledUntil,omitempty"`

	// Subscriptions is the partner's Subscription count and limit.
	// +optional
	Subscriptions SubscriptionUsage `json:"subscriptions,omitempty"`

	// Performance measures the partner against its tier's requirements on
	// the supplying contract (absent while no contract supplies it).
	// +optional
	Performance *Performance `json:"performance,omitempty"`

	// Namespaces is the state of each listed namespace, then of each
	// namespace still labelled for the partner that it no longer lists
	// (Revoked, content kept).
	// +optional
	// +listType=map
	// +listMapKey=name
	Namespaces []NamespaceStatus `json:"namespaces,omitempty"`

	// ObservedGeneration is the spec generation the status was computed for;
	// -1 until the operator first reconciled the object.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Next is the next scheduled change of the partner's entitlement, from
	// the contracts as they are now; absent when none is scheduled (an
	// open-ended supply, a suspended partner, no listed contract to come).
	// +optional
	Next *NextChange `json:"next,omitempty"`
	// History is the partner's last entitlement changes, newest first (at
	// most 20), each written in the same status write as the change itself:
	// it survives restarts and event expiry, and a retry cannot add an
	// entry twice.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	History []HistoryEntry `json:"history,omitempty"`

	// Conditions: Ready, Entitled, ContractExpiring, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// Partner is a channel partner: its tier, the contracts it buys through and
// the namespaces and people it is entitled to while one of them supplies it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName={partner,ptr},categories=entitlements
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Tier",type=string,JSONPath=`.spec.tier`
// +kubebuilder:printcolumn:name="Contract",type=string,JSONPath=`.status.contract`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Subscriptions",type=string,JSONPath=`.status.subscriptions.summary`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.entitledUntil`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`,priority=1
// +kubebuilder:printcolumn:name="Specializations",type=string,JSONPath=`.spec.specializations`,priority=1
// +kubebuilder:printcolumn:name="Meets",type=boolean,JSONPath=`.status.performance.meetsRequirements`,priority=1
// +kubebuilder:printcolumn:name="Qualifies",type=string,JSONPath=`.status.performance.qualifiesFor`,priority=1
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Entitled")].reason`,priority=1
// +kubebuilder:printcolumn:name="Next",type=string,JSONPath=`.status.next.outcome`,priority=1
// +kubebuilder:printcolumn:name="Next-At",type=string,JSONPath=`.status.next.at`,priority=1
// +kubebuilder:validation:XValidation:rule="oldSelf.hasValue() || size(self.metadata.name) <= 63",optionalOldSelf=true,message="metadata.name of a Partner must be at most 63 characters: it is the value of the entitlements.partnerops.io/partner label on its namespaces"
type Partner struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the partner as the vendor registered it.
	// +required
	Spec PartnerSpec `json:"spec"`

	// Status is observed by the operator. Until its first reconcile it reads
	// observedGeneration -1, so kstatus (Flux, Argo CD) reports InProgress
	// rather than Current. Only the operator writes it, as one atomic field
	// for server-side apply (its managedFields list no field of it).
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	// +structType=atomic
	Status PartnerStatus `json:"status,omitempty"`
}

// PartnerList is a list of Partners.
//
// +kubebuilder:object:root=true
type PartnerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Partner `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Partner{}, &PartnerList{})
}
