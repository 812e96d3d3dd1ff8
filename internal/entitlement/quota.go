package entitlement

// SpreadQuota spreads a partner's subscription limit over its granted
// namespaces: each one's hard limit is its own usage plus what the partner
// has left overall, so the partner can use the rest in any namespace. used
// holds the usage of every namespace of the partner (granted or not), granted
// says which of them get a share. A namespace's hard is never below its own
// usage (a limit that was lowered blocks new objects, never removes any).
//
// Two namespaces creating at the same instant can together exceed the limit
// by at most what was left, until the next rebalance (docs/architecture.md).
func SpreadQuota(limit int64, used []int64, granted []bool) []int64 {
	var total int64
	for _, u := range used {
		total += max(u, 0)
	}
	left := max(limit-total, 0)
	hard := make([]int64, len(used))
	for i, u := range used {
		if granted[i] {
			hard[i] = max(u, 0) + left
		}
	}
	return hard
}
