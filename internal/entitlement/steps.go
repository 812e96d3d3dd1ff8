package entitlement

import (
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

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
// deletes the binding before it lowers the quota.
func Steps(np NamespacePlan) []Step {
	if np.Bind {
		return []Step{StepNamespace, StepQuota, StepBinding}
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
// grant whose quota is absent must not bind (nothing would limit
// Subscriptions); one whose quota write failed keeps at most what is bound.
func BindAfter(np NamespacePlan, namespaceFailed bool, quota QuotaOutcome) BindMode {
	switch {
	case namespaceFailed && np.Create:
		return BindSkip
	case !np.Bind:
		return BindAsPlanned
	case quota == QuotaFailedAbsent:
		return BindRemove
	case quota == QuotaFailedPresent, quota == QuotaFailedUnknown:
		return BindNarrowOnly
	}
	return BindAsPlanned
}

// QuotaAfter reports whether the quota step runs after the steps before it:
// not in a namespace that could not be created.
func QuotaAfter(np NamespacePlan, namespaceFailed bool) bool {
	return !(namespaceFailed && np.Create)
}

// DeferViews reports whether this pass is a transition (the partner's
// phase or supplying contract changes) of a partner already decided
// before: its existing namespaces' labels and view annotations are then
// written in the next pass, at a lower priority, so that at an instant
// when many partners change the writes that grant or take away access
// (RoleBinding, quota) and the status of every partner come first. A
// namespace to be created is never deferred.
func (p PartnerPlan) DeferViews(old *v1.PartnerStatus) bool {
	if old.Phase == "" {
		return false
	}
	return p.Phase != old.Phase || (p.Phase == v1.PartnerEntitled && p.Supply.Contract != old.Contract)
}

// StatusAfterAccess reports whether a pass should leave its status for a
// pass of its own: at a transition, so that when many partners change at one
// instant the access of every one of them is taken away (or moved) before
// any of their statuses, the dearest writes, are made. That holds for a
// transition that wrote no access too (a failover to a contract with the
// same role and limits): its status written at once would be one more
// Partner write ahead of other partners' RoleBinding deletions. A lone
// transition pays one more pass through the queue.
func (p PartnerPlan) StatusAfterAccess(old *v1.PartnerStatus) bool {
	return p.DeferViews(old)
}

// SameWrites reports whether two plans write the same children: the same
// role, strays and, namespace by namespace, the same labels, view,
// RoleBinding and quota. What only the status shows (counts, messages) is
// not compared.
func (p *PartnerPlan) SameWrites(o *PartnerPlan) bool {
	return p.ClusterRole == o.ClusterRole &&
		slices.Equal(p.Strays, o.Strays) &&
		slices.EqualFunc(p.Namespaces, o.Namespaces, sameNamespaceWrites)
}

// Writes is the part of the plan SameWrites compares: what to keep of a
// plan to compare it later, without its history, conditions and events.
func (p *PartnerPlan) Writes() PartnerPlan {
	return PartnerPlan{ClusterRole: p.ClusterRole, Namespaces: p.Namespaces, Strays: p.Strays}
}

// sameNamespaceWrites compares field by field: a NamespacePlan holds a
// time.Time, which equality.Semantic cannot walk.
func sameNamespaceWrites(a, b NamespacePlan) bool {
	return a.Name == b.Name && a.State == b.State &&
		a.Create == b.Create && a.Manage == b.Manage && a.Bind == b.Bind &&
		a.UID == b.UID && a.Adopted == b.Adopted &&
		a.RevokeChildren == b.RevokeChildren &&
		maps.Equal(a.View, b.View) && maps.Equal(a.Labels, b.Labels) &&
		a.Recount.Equal(b.Recount) &&
		a.SubscriptionsHard == b.SubscriptionsHard &&
		equality.Semantic.DeepEqual(a.ExtraQuota, b.ExtraQuota)
}
