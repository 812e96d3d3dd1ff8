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

// headroom is how many more Subscriptions the namespace's quota may admit
// without another write: quota admission lets a create in while its count
// (Charged) is below status.hard, and spec.hard becomes status.hard when
// kube-controller-manager copies it, so the higher of the two counts (a
// lowered limit is not in force until copied).
func (u NamespaceUsage) headroom() int64 {
	return max(max(u.SpecHard, u.StatusHard)-max(u.Charged, 0), 0)
}

// cap is the most the namespace can come to hold without another write:
// what it holds plus its headroom. Counted from the objects, not from the
// quota's count: when that count lags (see Present), admission lets the
// headroom in on top of objects it has not counted.
func (u NamespaceUsage) cap() int64 { return u.Used() + u.headroom() }

// Used is the namespace's usage: the larger of the two views.
func (u NamespaceUsage) Used() int64 { return max(u.Charged, u.Present, 0) }

// SpreadQuota spreads a partner's subscription limit over its granted
// namespaces so the partner can use what it has left in any of them: each
// granted namespace's hard limit is what its quota charges plus what the
// partner has left overall (the limit minus the usage of all its
// namespaces, granted or not). Quota admission therefore lets exactly
// "what is left" more in anywhere, even while the quota's own count lags.
// What is left is negative while the partner holds more than its limit (a
// lowered limit): each namespace's hard is then below what it charges by
// that much (never below 0), so that deleting Subscriptions opens no slot
// until the partner is back under its limit. A hard below usage removes
// nothing; quota admission only refuses new objects. Non-granted
// namespaces get 0.
//
// Two namespaces creating at the same instant can together exceed the limit
// by at most what was left, until the next rebalance (docs/architecture.md).
func SpreadQuota(limit int64, usage []NamespaceUsage) []int64 {
	var total int64
	for _, u := range usage {
		total += u.Used()
	}
	left := limit - total
	hard := make([]int64, len(usage))
	for i, u := range usage {
		if u.Granted {
			hard[i] = max(max(u.Charged, 0)+left, 0)
		}
	}
	return hard
}

// SpreadQuotaStrict spreads a partner's subscription limit so that the
// limits quota admission enforces never let it hold more than the limit:
// Σ over all its namespaces of cap (what each can come to hold without
// another write) ≤ limit once the limits written are in force, and no
// write ever adds room before that. Non-granted namespaces get 0, but
// until kube-controller-manager has put that 0 in force a namespace
// leaving the set still admits up to its old limit, so its cap, not its
// usage, is withheld from the granted ones.
//
// Each granted namespace's target is its usage plus an even share of what
// the partner has left (the odd remainder to the namespaces that sold most
// recently), a function of usage alone, so that with nobody selling the
// spread comes to rest. Targets are only pursued when the spread must move:
// headroom unallocated (a raised limit, a namespace added or gone), more
// allocated than allowed (a lowered limit, a namespace leaving), or a
// namespace out of room while another has spare. A decrease is written at
// once; a raise only out of the slack that the limits in force leave, so a
// lowered namespace's headroom reaches another one only once
// kube-controller-manager has put the lower limit in force (its status
// update brings the next pass). Written limits are the quota's count plus
// the headroom wanted, so a count that lags the objects is no opening.
//
// While the partner holds more than the granted namespaces may (a lowered
// limit, or a leaving namespace's old limit still in force), nothing is
// raised and every granted namespace's limit is its count minus the
// excess (never below 0): a Subscription deleted anywhere then opens no
// slot until the partner is back within its limit. That hard is below the
// usage, which is legal: quota admission refuses new objects and removes
// none.
func SpreadQuotaStrict(limit int64, usage []NamespaceUsage) []int64 {
	hard := make([]int64, len(usage))
	avail := limit
	var granted []int
	for i, u := range usage {
		if u.Granted {
			granted = append(granted, i)
		} else {
			avail -= u.cap()
		}
	}
	if len(granted) == 0 {
		return hard
	}
	var capSum, usedSum int64
	full, spare := false, false
	for _, i := range granted {
		u := usage[i]
		capSum += u.cap()
		usedSum += u.Used()
		if u.headroom() == 0 {
			full = true
		} else {
			spare = true
		}
	}
	if excess := usedSum - avail; excess > 0 {
		// Over: lower only. A namespace already lower keeps its limit
		// (raising it back is for when the partner is within its limit).
		for _, i := range granted {
			u := usage[i]
			hard[i] = max(min(max(u.Charged, 0)-excess, u.SpecHard), 0)
		}
		return hard
	}
	if capSum == avail && !(full && spare && usedSum < avail) {
		// Balanced enough: keep what is written (a limit left below the
		// count by an earlier excess comes back up to it: that adds no
		// headroom).
		for _, i := range granted {
			hard[i] = max(usage[i].SpecHard, usage[i].Charged, 0)
		}
		return hard
	}
	// Targets: usage plus an even share of what is left.
	left := avail - usedSum
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
	// A namespace's limit for a given cap: its count plus the headroom
	// that cap leaves over what it holds.
	limitFor := func(u NamespaceUsage, c int64) int64 { return max(u.Charged, 0) + c - u.Used() }
	// Decreases (and raises within what is already in force) at once.
	slack := avail - capSum
	for _, i := range granted {
		u := usage[i]
		if t := target[i]; t <= u.cap() {
			hard[i] = limitFor(u, t)
		} else {
			hard[i] = max(u.SpecHard, u.Charged, 0)
		}
	}
	// Raises out of the confirmed slack, the namespaces out of room first.
	for _, i := range order {
		u := usage[i]
		if t := target[i]; t > u.cap() && slack > 0 {
			raise := min(t-u.cap(), slack)
			hard[i] = limitFor(u, u.cap()+raise)
			slack -= raise
		}
	}
	return hard
}
