package v1alpha1

// Condition types. They follow the Kubernetes API conventions and kstatus:
// Ready is true when the last reconcile applied the desired state;
// Reconciling and Stalled (abnormal-true) say work is in progress or a
// problem only a user can fix. The business state is in Entitled, Active
// and Expiring, so a correctly revoked partner is Ready and not Entitled.
const (
	// ConditionReady: the last reconcile applied the desired state.
	ConditionReady = "Ready"
	// ConditionReconciling: the operator is still converging.
	ConditionReconciling = "Reconciling"
	// ConditionStalled: a problem only a user can fix stops progress.
	ConditionStalled = "Stalled"

	// ConditionEntitled (Partner): a contract supplies the partner now.
	ConditionEntitled = "Entitled"
	// ConditionContractExpiring (Partner): the supplying contract is within
	// its notice period or in grace; the message says what happens at its end.
	ConditionContractExpiring = "ContractExpiring"

	// ConditionRequirementsMet (Partner): the partner meets its tier's
	// requirements on the supplying contract (status.performance). It is
	// informational: it changes nothing the partner is entitled to.
	ConditionRequirementsMet = "RequirementsMet"

	// ConditionActive (DistributorContract): the contract supplies now.
	ConditionActive = "Active"
	// ConditionExpiring (DistributorContract): within notice or grace.
	ConditionExpiring = "Expiring"
)

// Condition reasons (CamelCase, stable: alerts and scripts match them).
const (
	// ReasonReconciled: the desired state was applied.
	ReasonReconciled = "Reconciled"
	// ReasonProgressing: work is still in progress.
	ReasonProgressing = "Progressing"
	// ReasonApplyFailed: writing a child object failed (retried).
	ReasonApplyFailed = "ApplyFailed"

	// ReasonContractPending: the contract has not started yet.
	ReasonContractPending = "ContractPending"
	// ReasonContractActive: the contract supplies and is not near its end.
	ReasonContractActive = "ContractActive"
	// ReasonContractExpiring: the contract is within its notice period.
	ReasonContractExpiring = "ContractExpiring"
	// ReasonContractInGrace: past endsAt, within the grace period.
	ReasonContractInGrace = "ContractInGrace"
	// ReasonContractExpired: past endsAt plus grace; supplies nothing.
	ReasonContractExpired = "ContractExpired"

	// ReasonRequirementsMet: the partner meets its tier's requirements.
	ReasonRequirementsMet = "RequirementsMet"
	// ReasonNoRequirements: its tier has none on the supplying contract.
	ReasonNoRequirements = "NoRequirements"
	// ReasonBelowRequirements: the partner falls short of them.
	ReasonBelowRequirements = "BelowRequirements"

	// ReasonSupplied: a contract supplies the partner.
	ReasonSupplied = "Supplied"
	// ReasonNoActiveContract: no listed contract supplies the partner now.
	ReasonNoActiveContract = "NoActiveContract"
	// ReasonSuspended: spec.suspended is true.
	ReasonSuspended = "Suspended"
	// ReasonDeleting: the Partner is being deleted.
	ReasonDeleting = "Deleting"
	// ReasonContractNotFound: a listed contract does not exist.
	ReasonContractNotFound = "ContractNotFound"
	// ReasonContractMismatch: a listed contract is of another region or
	// does not cover the partner's tier.
	ReasonContractMismatch = "ContractMismatch"
	// ReasonNamespaceConflict: a listed namespace exists without this
	// partner's label; it is left untouched.
	ReasonNamespaceConflict = "NamespaceConflict"
	// ReasonRoleNotBindable: the tier's ClusterRole is missing, not labelled
	// bindable, or the operator may not bind it.
	ReasonRoleNotBindable = "RoleNotBindable"
	// ReasonNamespaceTerminating: a listed namespace is being deleted.
	ReasonNamespaceTerminating = "NamespaceTerminating"
	// ReasonQuotaNotCounted: kube-controller-manager has not counted
	// Subscriptions in a granted namespace's quota yet; until it has, the
	// API server refuses every Subscription there (Reconciling).
	ReasonQuotaNotCounted = "QuotaNotCounted"
	// ReasonCreatingNamespace: the operator has recorded that it creates a
	// namespace and is about to (Reconciling).
	ReasonCreatingNamespace = "CreatingNamespace"
	// ReasonAdmissionPolicyMissing (DistributorContract, Stalled and
	// Ready): an admission policy the operator relies on, or its binding,
	// is missing or no longer denies: products and the contract's end are
	// not enforced when a Subscription is created.
	ReasonAdmissionPolicyMissing = "AdmissionPolicyMissing"
	// ReasonNotExpiring: the supplying contract is not near its end.
	ReasonNotExpiring = "NotExpiring"
)

// Event reasons.
const (
	EventGranted           = "Granted"
	EventFailedOver        = "FailedOver"
	EventRevoked           = "Revoked"
	EventSuspended         = "Suspended"
	EventNamespaceConflict = "NamespaceConflict"
	EventRoleNotBindable   = "RoleNotBindable"
	EventContractNotFound  = "ContractNotFound"
	EventNamespaceDeleted  = "NamespaceDeleted"
	// EventSubscriptionsOverLimit: an entitled partner holds more
	// Subscriptions than its limit (quota admission raced a recount).
	EventSubscriptionsOverLimit = "SubscriptionsOverLimit"
	// EventForeignBindingReplaced: a RoleBinding named partner-access that
	// the operator did not write was in a managed namespace; it was
	// deleted and the partner's own written in its place.
	EventForeignBindingReplaced = "ForeignBindingReplaced"

	EventContractPending  = "ContractPending"
	EventContractActive   = "ContractActive"
	EventContractExpiring = "ContractExpiring"
	EventContractInGrace  = "ContractInGrace"
	EventContractExpired  = "ContractExpired"
)
