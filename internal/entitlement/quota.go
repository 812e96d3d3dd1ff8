package entitlement

// NamespaceUsage is how many of a partner's Subscriptions one namespace
// holds, seen two ways.
type NamespaceUsage struct {
	// Charged is what the namespace's ResourceQuota status counts: quota
	// admission lets hard - Charged more Subscriptions in.
	Charged int64
	// Present is how many Subscription objects exist there (the operator's
	// watch-fed metadata cache of Subscriptions, which creation events reach
	// without waiting for kube-controller-manager).
	// It is the truth when the quota's count lags: kube-controller-manager
	// recalculates usage from its own cache whenever the hard limit changes,
	// and under load that cache can miss objects just created, leaving the
	// count low until its next full resync (minutes).
	Present int64
	// Granted: the namespace gets a share of the limit.
	Granted bool
}

// Used is the namespace's usage: the larger of the two views.
func (u NamespaceUsage) Used() int64 { return max(u.Charged, u.Present, 0) }

// SpreadQuota spreads a partner's subscription limit over its granted
// namespaces so the partner can use what it has left in any of them: each
// granted namespace's hard limit is what its quota charges plus what the
// partner has left overall (the limit minus the usage of all its
// namespaces, granted or not). Quota admission therefore lets exactly
// "what is left" more in anywhere, even while the quota's own count lags.
// A namespace's hard is never below what its quota charges (a lowered
// limit blocks new objects, never removes any); non-granted ones get 0.
//
// Two namespaces creating at the same instant can together exceed the limit
// by at most what was left, until the next rebalance (docs/architecture.md).
func SpreadQuota(limit int64, usage []NamespaceUsage) []int64 {
	var total int64
	for _, u := range usage {
		total += u.Used()
	}
	left := max(limit-total, 0)
	hard := make([]int64, len(usage))
	for i, u := range usage {
		if u.Granted {
			hard[i] = max(u.Charged, 0) + left
		}
	}
	return hard
}
