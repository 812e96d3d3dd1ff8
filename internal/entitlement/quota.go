package entitlement

import (
	"slices"
	"time"
)

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
	// SpecHard and StatusHard are the Subscription limit its quota has now
	// in spec.hard (what the operator last wrote) and in status.hard (what
	// quota admission enforces: kube-controller-manager copies spec to
	// status). Both 0 without a quota. Only the Strict spread reads them.
	SpecHard, StatusHard int64
	// LastSale is when the newest of its Subscriptions was created (zero
	// when it holds none): the Strict spread's evidence of where the
	// partner sells.
	LastSale time.Time
}

// cap is the most the namespace's quota may admit now: the higher of the
// limit written and the one enforced (a lowered limit is not in force
// until kube-controller-manager has copied it), and never below what it
// holds.
func (u NamespaceUsage) cap() int64 { return max(u.SpecHard, u.StatusHard, u.Used()) }

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

// SpreadQuotaStrict spreads a partner's subscription limit so that the
// limits quota admission can enforce never sum above it: at every step,
// Σ over granted namespaces of max(spec.hard, status.hard, used) ≤ limit −
// the usage of the non-granted ones (whenever it held before; when it does
// not, for a lowered limit, only decreases are written until it does).
//
// Each granted namespace's target is its usage plus an even share of what
// the partner has left (the odd remainder to the namespaces that sold most
// recently), a function of usage alone, so that with nobody selling the
// spread comes to rest. Targets are only pursued when the spread must move:
// headroom unallocated (a raised limit, a namespace added), more allocated
// than allowed (a lowered limit), or a namespace out of room while another
// has spare. A decrease is written at once; a raise only out of the slack
// that confirmed limits leave, so a lowered namespace's headroom reaches
// another one only once kube-controller-manager has put the lower limit in
// force (its status update brings the next pass). No hard is ever below
// what the namespace's quota charges.
func SpreadQuotaStrict(limit int64, usage []NamespaceUsage) []int64 {
	hard := make([]int64, len(usage))
	avail := limit
	var granted []int
	for i, u := range usage {
		if u.Granted {
			granted = append(granted, i)
		} else {
			avail -= u.Used()
		}
	}
	avail = max(avail, 0)
	if len(granted) == 0 {
		return hard
	}
	var capSum, usedSum int64
	full, spare := false, false
	for _, i := range granted {
		u := usage[i]
		capSum += u.cap()
		usedSum += u.Used()
		if u.Used() >= u.cap() {
			full = true
		} else {
			spare = true
		}
	}
	if capSum == avail && !(full && spare && usedSum < avail) {
		// Balanced enough: keep what is written.
		for _, i := range granted {
			hard[i] = max(usage[i].SpecHard, usage[i].Charged, 0)
		}
		return hard
	}
	// Targets: usage plus an even share of what is left.
	left := max(avail-usedSum, 0)
	n := int64(len(granted))
	target := make(map[int]int64, len(granted))
	// The odd remainder goes to the namespaces that sold most recently
	// (then in listed order). It depends on usage alone, never on the
	// limits written: ordered by who is out of room, one odd unit would
	// ping-pong between two namespaces that hold it in turn, each pass
	// writing both quotas, with nobody selling.
	order := slices.Clone(granted)
	slices.SortStableFunc(order, func(i, j int) int { return usage[j].LastSale.Compare(usage[i].LastSale) })
	for k, i := range order {
		share := left / n
		if int64(k) < left%n {
			share++
		}
		target[i] = usage[i].Used() + share
	}
	// Decreases (and raises within what is already in force) at once.
	slack := avail - capSum
	for _, i := range granted {
		u := usage[i]
		if t := target[i]; t <= u.cap() {
			hard[i] = max(t, u.Charged, 0)
		} else {
			hard[i] = max(u.SpecHard, u.Charged, 0)
		}
	}
	// Raises out of the confirmed slack, the namespaces out of room first.
	for _, i := range order {
		u := usage[i]
		if t := target[i]; t > u.cap() && slack > 0 {
			raise := min(t-u.cap(), slack)
			hard[i] = u.cap() + raise
			slack -= raise
		}
	}
	return hard
}
