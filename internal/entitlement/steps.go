package entitlement

// Step is one write in a namespace.
type Step int

// Steps in a namespace.
const (
	// StepNamespace creates the namespace or sets its labels.
	StepNamespace Step = iota
	// StepQuota writes the ResourceQuota.
	StepQuota
	// StepBinding writes the RoleBinding, or deletes it when the plan does
	// not bind.
	StepBinding
)

// Steps is the order of a namespace's writes. The order is the safety
// rule "never grant access the quota does not cover, never keep access the
// plan takes away": granting writes the quota before the binding; revoking
// deletes the binding before it lowers the quota. The namespace's labels
// and view come first: the admission policies read them and fail closed,
// so a grant is judged by its new view from its first Subscription. A
// revocation may leave them to its next pass (PartnerPlan.ViewLater), and
// a pass that only takes access away (PartnerPlan.AccessOnly) writes the
// binding and the quota alone.
func Steps(np NamespacePlan, plan *PartnerPlan) []Step {
	switch {
	case plan.AccessOnly:
		return []Step{StepBinding, StepQuota}
	case np.Bind:
		return []Step{StepNamespace, StepQuota, StepBinding}
	case plan.ViewLater && !np.Create:
		return []Step{StepBinding, StepQuota}
	}
	return []Step{StepNamespace, StepBinding, StepQuota}
}

// BindMode is what the binding step may do.
type BindMode int

// Binding modes.
const (
	// BindAsPlanned: create or update the binding as planned (or delete it
	// when the plan does not bind).
	BindAsPlanned BindMode = iota
	// BindNarrowOnly: keep an existing binding of the same role, removing
	// subjects only; never create one, add subjects or change the role.
	BindNarrowOnly
	// BindRemove: delete the binding.
	BindRemove
	// BindSkip: do nothing (the namespace could not be created).
	BindSkip
)

// QuotaOutcome is what the quota step left.
type QuotaOutcome int

// Quota outcomes.
const (
	// QuotaWritten: the planned quota is in place.
	QuotaWritten QuotaOutcome = iota
	// QuotaFailedPresent: the write failed; the previous quota stays.
	QuotaFailedPresent
	// QuotaFailedAbsent: the write failed and there is no quota.
	QuotaFailedAbsent
	// QuotaFailedUnknown: reading the quota failed.
	QuotaFailedUnknown
)

// BindAfter decides what the binding step may do given how the steps
// before it went. A namespace that could not be created holds nothing; a
// grant whose view could not be written grants nothing new (the admission
// policies would judge its Subscriptions by the old view) and keeps at
// most what is bound; a grant whose quota is absent must not bind (nothing
// would limit Subscriptions); one whose quota write failed keeps at most
// what is bound.
func BindAfter(np NamespacePlan, namespaceFailed bool, quota QuotaOutcome) BindMode {
	switch {
	case namespaceFailed && np.Create:
		return BindSkip
	case !np.Bind:
		return BindAsPlanned
	case namespaceFailed:
		return BindNarrowOnly
	case quota == QuotaFailedAbsent:
		return BindRemove
	case quota == QuotaFailedPresent, quota == QuotaFailedUnknown:
		return BindNarrowOnly
	}
	return BindAsPlanned
}

// QuotaAfter reports whether the quota step runs after the namespace
// step: not in a namespace that could not be created, nor for a grant
// whose view could not be written (no more Subscriptions ahead of the view
// that judges them); a revocation lowers the quota whatever the view.
func QuotaAfter(np NamespacePlan, namespaceFailed bool) bool {
	return !namespaceFailed || (!np.Create && !np.Bind)
}
