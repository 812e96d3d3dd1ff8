package entitlement

import (
	"fmt"
	"testing"
)

func TestSpreadQuota(t *testing.T) {
	cases := []struct {
		name    string
		limit   int64
		used    []int64
		granted []bool
		want    []int64
	}{
		{"unused, both granted: each gets the whole limit", 5, []int64{0, 0}, []bool{true, true}, []int64{5, 5}},
		{"exactly at the limit: each keeps its usage", 5, []int64{3, 2}, []bool{true, true}, []int64{3, 2}},
		{"partly used: usage plus what is left", 5, []int64{3, 0}, []bool{true, true}, []int64{5, 2}},
		{"over the limit: never below usage", 5, []int64{4, 3}, []bool{true, true}, []int64{4, 3}},
		{"non-granted gets 0, its usage still counts", 5, []int64{1, 3}, []bool{true, false}, []int64{2, 0}},
		{"non-granted usage alone exhausts the limit", 5, []int64{0, 6}, []bool{true, false}, []int64{0, 0}},
		{"negative usage treated as 0", 5, []int64{-3, 2}, []bool{true, true}, []int64{3, 5}},
		{"zero limit: only usage", 0, []int64{0, 2}, []bool{true, true}, []int64{0, 2}},
		{"zero limit, nothing used", 0, []int64{0}, []bool{true}, []int64{0}},
		{"nothing granted", 5, []int64{1, 1}, []bool{false, false}, []int64{0, 0}},
		{"single namespace", 10, []int64{7}, []bool{true}, []int64{10}},
		{"no namespaces", 10, nil, nil, []int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SpreadQuota(tc.limit, tc.used, tc.granted)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("SpreadQuota(limit %d, used %v, granted %v): want %v, got %v", tc.limit, tc.used, tc.granted, tc.want, got)
			}
			// Invariants: granted hards never below usage; total usage plus
			// any one namespace's headroom never exceeds max(limit, usage).
			var total int64
			for _, u := range tc.used {
				total += max(u, 0)
			}
			for i := range got {
				if !tc.granted[i] {
					continue
				}
				if got[i] < max(tc.used[i], 0) {
					t.Errorf("namespace %d: hard %d below its usage %d", i, got[i], tc.used[i])
				}
				if head := got[i] - max(tc.used[i], 0); total+head > max(tc.limit, total) {
					t.Errorf("namespace %d: headroom %d lets the partner exceed limit %d (usage %d)", i, head, tc.limit, total)
				}
			}
		})
	}
}
