package entitlement

import (
	"fmt"
	"testing"
)

// charged builds usages whose quota count is exact (Present = Charged).
func charged(granted []bool, used ...int64) []NamespaceUsage {
	us := make([]NamespaceUsage, len(used))
	for i, u := range used {
		us[i] = NamespaceUsage{Charged: u, Present: u, Granted: granted[i]}
	}
	return us
}

func TestSpreadQuota(t *testing.T) {
	both := []bool{true, true}
	cases := []struct {
		name  string
		limit int64
		usage []NamespaceUsage
		want  []int64
	}{
		{"unused, both granted: each gets the whole limit", 5, charged(both, 0, 0), []int64{5, 5}},
		{"exactly at the limit: each keeps its usage", 5, charged(both, 3, 2), []int64{3, 2}},
		{"partly used: usage plus what is left", 5, charged(both, 3, 0), []int64{5, 2}},
		// Held over a lowered limit: each is lowered by the excess, so
		// deleting one anywhere and creating another at once is refused.
		{"over the limit: each below its count by the excess", 5, charged(both, 4, 3), []int64{2, 1}},
		{"over the limit by more than a namespace holds: 0, never negative", 5, charged(both, 6, 1), []int64{4, 0}},
		{"non-granted gets 0, its usage still counts", 5, charged([]bool{true, false}, 1, 3), []int64{2, 0}},
		{"non-granted usage alone exhausts the limit", 5, charged([]bool{true, false}, 0, 6), []int64{0, 0}},
		{"negative usage treated as 0", 5, charged(both, -3, 2), []int64{3, 5}},
		{"zero limit: nothing more anywhere", 0, charged(both, 0, 2), []int64{0, 0}},
		{"zero limit, nothing used", 0, charged([]bool{true}, 0), []int64{0}},
		{"nothing granted", 5, charged([]bool{false, false}, 1, 1), []int64{0, 0}},
		{"single namespace", 10, charged([]bool{true}, 7), []int64{10}},
		{"no namespaces", 10, nil, []int64{}},
		// The quota of b counts 1 of its 2 Subscriptions (kube-controller-
		// manager recalculated from a stale cache): nothing is left, and b's
		// hard must not let admission in a third.
		{"quota count lags: hard from the charged count, left from the objects", 5,
			[]NamespaceUsage{{Charged: 3, Present: 3, Granted: true}, {Charged: 1, Present: 2, Granted: true}}, []int64{3, 1}},
		{"quota count lags with room left", 6,
			[]NamespaceUsage{{Charged: 3, Present: 3, Granted: true}, {Charged: 1, Present: 2, Granted: true}}, []int64{4, 2}},
		{"quota count ahead (a delete not yet replenished): the count wins", 5,
			[]NamespaceUsage{{Charged: 3, Present: 2, Granted: true}, {Charged: 0, Present: 0, Granted: true}}, []int64{5, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SpreadQuota(tc.limit, tc.usage)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("SpreadQuota(limit %d, usage %+v): want %v, got %v", tc.limit, tc.usage, tc.want, got)
			}
			// Invariants: a granted hard is below what its quota charges
			// only while the partner holds more than its limit, and then by
			// the whole excess (a delete opens no slot); the usage plus what
			// admission lets into any one namespace never exceeds
			// max(limit, usage).
			var total int64
			for _, u := range tc.usage {
				total += u.Used()
			}
			over := total - tc.limit
			for i, u := range tc.usage {
				if !u.Granted {
					if got[i] != 0 {
						t.Errorf("namespace %d: not granted, hard %d", i, got[i])
					}
					continue
				}
				if got[i] < max(u.Charged, 0) && over <= 0 {
					t.Errorf("namespace %d: hard %d below its charged usage %d, the partner within its limit", i, got[i], u.Charged)
				}
				if over > 0 && got[i] > max(u.Charged-over, 0) {
					t.Errorf("namespace %d: hard %d with %d charged, %d over the limit: a delete there opens a slot", i, got[i], u.Charged, over)
				}
				if head := got[i] - max(u.Charged, 0); total+head > max(tc.limit, total) {
					t.Errorf("namespace %d: admission headroom %d lets the partner exceed limit %d (usage %d)", i, head, tc.limit, total)
				}
			}
		})
	}
}
