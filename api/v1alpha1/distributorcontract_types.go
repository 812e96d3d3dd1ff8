package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ContractPhase is where a contract is in its lifecycle, a pure function of
// its spec and the time.
// +kubebuilder:validation:Enum=Pending;Active;Expiring;Grace;Expired
type ContractPhase string

// Contract phases, in the order a contract passes through them.
const (
	// ContractPending: startsAt is in the future; supplies nothing yet.
	ContractPending ContractPhase = "Pending"
	// ContractActive: started, and endsAt is further away than noticePeriod.
	ContractActive ContractPhase = "Active"
	// ContractExpiring: within noticePeriod of endsAt; still supplies.
	ContractExpiring ContractPhase = "Expiring"
	// ContractGrace: past endsAt but within gracePeriod; still supplies.
	ContractGrace ContractPhase = "Grace"
	// ContractExpired: past endsAt + gracePeriod; supplies nothing.
	ContractExpired ContractPhase = "Expired"
)

// DistributorContractSpec is the contract between the vendor and a regional
// distributor: when it supplies entitlements and what each tier gets.
// +kubebuilder:validation:XValidation:rule="!has(self.endsAt) || self.endsAt > self.startsAt",message="endsAt must be after startsAt",fieldPath=".endsAt"
type DistributorContractSpec struct {
	// Distributor is the display name of the distributor, such as Bytec.
	// Immutable: a different distributor is a different contract.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="distributor is immutable; create a new contract instead"
	Distributor string `json:"distributor"`

	// Region is the ISO 3166-1 alpha-2 code (upper case, such as DE) of the
	// country the contract covers. Only partners of the same region are
	// supplied by it. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="region is immutable; create a new contract instead"
	Region Region `json:"region"`

	// StartsAt is the instant (RFC 3339, such as 2025-12-01T00:00:00Z, with
	// an upper-case T and Z or a +hh:mm offset) from which the contract
	// supplies entitlements. Times are used to the second.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=date-time
	// +kubebuilder:validation:Pattern=`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`
	StartsAt metav1.Time `json:"startsAt"`

	// EndsAt is the instant (RFC 3339, such as 2026-11-30T23:59:59Z) at which
	// the contract ends; it must be after startsAt. Absent means open-ended.
	// Moving it (earlier or later) re-plans at once.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=date-time
	// +kubebuilder:validation:Pattern=`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`
	EndsAt *metav1.Time `json:"endsAt,omitempty"`

	// NoticePeriod is how long before endsAt the contract turns Expiring, so
	// that dashboards and alerts show the coming end. Default 720h (30 days).
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="noticePeriod must be a non-negative duration such as 720h, 90m or 0s"
	NoticePeriod *metav1.Duration `json:"noticePeriod,omitempty"`

	// GracePeriod is how long after endsAt partners keep their entitlements
	// (phase Grace). Default 0s: entitlements end at endsAt.
	// +optional
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="gracePeriod must be a non-negative duration such as 24h, 90m or 0s"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`

	// Entitlements says, per partner tier the contract covers, what a
	// partner of that tier gets. One entry per tier.
	// +required
	// +listType=map
	// +listMapKey=tier
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	Entitlements []TierEntitlement `json:"entitlements"`
}

// TierEntitlement is what a partner of one tier gets through a contract.
type TierEntitlement struct {
	// Tier is the partner tier this entry covers: Ready, Advanced or Premier.
	// +required
	Tier Tier `json:"tier"`

	// Subscriptions is how many Subscription objects a partner of this tier
	// may hold in total, across all its namespaces.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	Subscriptions int32 `json:"subscriptions"`

	// MaxNamespaces is how many of its listed namespaces a partner of this
	// tier is granted (the first ones in spec.namespaces). Default 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxNamespaces int32 `json:"maxNamespaces,omitempty"`

	// ClusterRole is the ClusterRole bound to the partner's access subjects
	// in each granted namespace. Default entitlements-partner-<tier in lower
	// case>. The role must carry the label
	// entitlements.partnerops.io/bindable: "true", or nothing is bound.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$`
	ClusterRole string `json:"clusterRole,omitempty"`

	// NamespaceQuota adds hard limits (such as requests.cpu, requests.memory)
	// to the ResourceQuota of each granted namespace. Keys are ResourceQuota
	// resource names: a standard one (pods, cpu, requests.cpu,
	// limits.memory, requests.storage, ...), a hugepages- one, or a
	// qualified one such as count/deployments.apps or
	// requests.nvidia.com/gpu. The subscription count is the operator's and
	// cannot be set here. Values must not be negative.
	// +optional
	// +kubebuilder:validation:MaxProperties=10
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && (k in ['pods', 'services', 'replicationcontrollers', 'resourcequotas', 'secrets', 'configmaps', 'persistentvolumeclaims', 'services.nodeports', 'services.loadbalancers', 'cpu', 'memory', 'ephemeral-storage', 'requests.cpu', 'requests.memory', 'requests.storage', 'requests.ephemeral-storage', 'limits.cpu', 'limits.memory', 'limits.ephemeral-storage'] || k.startsWith('hugepages-') || k.startsWith('requests.hugepages-') || k.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')))",message="namespaceQuota keys must be ResourceQuota resource names: a standard one such as requests.cpu, limits.memory or pods, or a qualified one such as count/deployments.apps"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !string(self[k]).startsWith('-'))",message="namespaceQuota values must not be negative"
	// +kubebuilder:validation:XValidation:rule="!('count/subscriptions.entitlements.partnerops.io' in self) && !('entitlements.partnerops.io/recount' in self)",message="namespaceQuota must not set count/subscriptions.entitlements.partnerops.io or entitlements.partnerops.io/recount: the operator sets them"
	NamespaceQuota corev1.ResourceList `json:"namespaceQuota,omitempty"`

	// QuotaPolicy is how the subscription limit is spread over a partner's
	// granted namespaces. Shared (default): each namespace may use all the
	// partner has left, so a simultaneous burst in k namespaces can exceed
	// the limit by up to left × (k−1) until the operator rebalances. Strict:
	// the namespaces' hard limits never sum above the limit, so the API
	// server's quota admission never admits more than the limit in total;
	// headroom moves to a namespace that has used its share within one
	// rebalance (a lower hard confirmed before another is raised).
	// +optional
	// +kubebuilder:default=Shared
	QuotaPolicy QuotaPolicy `json:"quotaPolicy,omitempty"`

	// Requirements a partner of this tier is measured against
	// (status.performance, condition RequirementsMet). The operator reports;
	// it never changes a partner's tier.
	// +optional
	Requirements *TierRequirements `json:"requirements,omitempty"`

	// Products restricts what partners of this tier may sell through this
	// contract: a Subscription whose spec.product is not listed, or whose
	// entry names a specialization the partner does not hold, is refused by
	// the API server (the ValidatingAdmissionPolicy
	// entitlements-subscription-products). Absent: any product.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Products []ProductRule `json:"products,omitempty"`
}

// QuotaPolicy is how a partner's subscription limit is spread over its
// namespaces.
// +kubebuilder:validation:Enum=Shared;Strict
type QuotaPolicy string

// Quota policies.
const (
	QuotaShared QuotaPolicy = "Shared"
	QuotaStrict QuotaPolicy = "Strict"
)

// TierRequirements are what a partner of a tier must achieve.
// +kubebuilder:validation:MinProperties=1
type TierRequirements struct {
	// MinSubscriptions is how many Subscriptions the partner must hold
	// (created within period, when set).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	MinSubscriptions int32 `json:"minSubscriptions,omitempty"`

	// MinUnits is the sum of spec.units over those Subscriptions the
	// partner must reach.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000000
	MinUnits int64 `json:"minUnits,omitempty"`

	// Specializations is how many specializations a partner of the tier
	// must hold.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=5
	Specializations int32 `json:"specializations,omitempty"`

	// Period, when set, counts only the Subscriptions created within it
	// (a sliding window ending now, such as 2160h for 90 days); absent,
	// everything the partner holds counts.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h') && duration(self) <= duration('87600h')",message="period must be between 1h and 87600h (10 years)"
	Period *metav1.Duration `json:"period,omitempty"`
}

// ProductRule is one product partners of a tier may sell.
type ProductRule struct {
	// Name is the product, as in a Subscription's spec.product.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="!self.contains('\\n') && !self.contains('\\r')",message="product names must be on one line"
	Name string `json:"name"`

	// Specialization a partner must hold to sell it; absent: any partner
	// of the tier.
	// +optional
	Specialization Specialization `json:"specialization,omitempty"`
}

// ContractForecast is what the end of a contract's supply does.
type ContractForecast struct {
	// At is the end of its supply: endsAt plus gracePeriod.
	At metav1.Time `json:"at"`
	// FailOver and Revoke count the partners it supplies now by what
	// happens to them then.
	FailOver int32 `json:"failOver"`
	Revoke   int32 `json:"revoke"`
	// Subscriptions held by the partners to be revoked (kept, but no new
	// ones can be created).
	Subscriptions int32 `json:"subscriptions"`
	// Partners lists up to 100 of them, by name; the counts stay exact.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Partners []ForecastPartner `json:"partners,omitempty"`
}

// ForecastPartner is one partner in a forecast.
type ForecastPartner struct {
	Name string `json:"name"`
	// Outcome: FailOver or Revoke.
	Outcome NextOutcome `json:"outcome"`
	// Contract it fails over to (empty for Revoke).
	// +optional
	Contract string `json:"contract,omitempty"`
}

// DistributorContractStatus is what the operator observed and decided.
type DistributorContractStatus struct {
	// Phase is the contract's lifecycle phase: Pending, Active, Expiring,
	// Grace or Expired. Active, Expiring and Grace supply entitlements.
	// +optional
	Phase ContractPhase `json:"phase,omitempty"`

	// NextTransitionAt is when the phase changes next; empty when it never
	// will (Expired, or Active and open-ended).
	// +optional
	NextTransitionAt *metav1.Time `json:"nextTransitionAt,omitempty"`

	// EntitledUntil is endsAt + gracePeriod: when the contract stops
	// supplying. Empty when open-ended.
	// +optional
	EntitledUntil *metav1.Time `json:"entitledUntil,omitempty"`

	// Partners is how many partners this contract currently supplies. It
	// is counted again after partners change, within a second for each
	// thousand partners supplied.
	// +optional
	Partners int32 `json:"partners"`

	// Forecast is what the end of this contract's supply does to the
	// partners it supplies now, from the contracts and partners as they are;
	// absent for an open-ended contract.
	// +optional
	Forecast *ContractForecast `json:"forecast,omitempty"`

	// ObservedGeneration is the spec generation the status was computed for;
	// -1 until the operator first reconciled the object.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Active (supplies entitlements now) and Expiring
	// (within notice or grace of its end).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// DistributorContract is a contract with a regional distributor through
// which partners are entitled, from startsAt until endsAt plus gracePeriod.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=dc,categories=entitlements
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Distributor",type=string,JSONPath=`.spec.distributor`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ends",type=string,JSONPath=`.spec.endsAt`
// +kubebuilder:printcolumn:name="Partners",type=integer,JSONPath=`.status.partners`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Starts",type=string,JSONPath=`.spec.startsAt`,priority=1
// +kubebuilder:printcolumn:name="Next",type=string,JSONPath=`.status.nextTransitionAt`,priority=1
// +kubebuilder:printcolumn:name="FailOver",type=integer,JSONPath=`.status.forecast.failOver`,priority=1
// +kubebuilder:printcolumn:name="Revoke",type=integer,JSONPath=`.status.forecast.revoke`,priority=1
type DistributorContract struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the contract as agreed.
	// +required
	Spec DistributorContractSpec `json:"spec"`

	// Status is observed by the operator. Until its first reconcile it reads
	// observedGeneration -1, so kstatus (Flux, Argo CD) reports InProgress
	// rather than Current. Only the operator writes it, as one atomic field
	// for server-side apply (its managedFields list no field of it).
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	// +structType=atomic
	Status DistributorContractStatus `json:"status,omitempty"`
}

// DistributorContractList is a list of DistributorContracts.
//
// +kubebuilder:object:root=true
type DistributorContractList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DistributorContract `json:"items"`
}

func init() {
	SchemeBuilder.Register(&DistributorContract{}, &DistributorContractList{})
}
