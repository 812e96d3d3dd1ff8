package entitlement

import (
	"testing"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestDeferViews(t *testing.T) {
	entitled := func(contract string) PartnerPlan {
		return PartnerPlan{Phase: v1.PartnerEntitled, Supply: Supply{Contract: contract}}
	}
	cases := []struct {
		name string
		old  v1.PartnerStatus
		plan PartnerPlan
		want bool
	}{
		{"first decision: nothing to defer", v1.PartnerStatus{}, entitled("a"), false},
		{"unchanged", v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "a"}, entitled("a"), false},
		{"failover", v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "a"}, entitled("b"), true},
		{"revocation", v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "a"}, PartnerPlan{Phase: v1.PartnerRevoked}, true},
		{"restored", v1.PartnerStatus{Phase: v1.PartnerRevoked}, entitled("a"), true},
		{"still revoked", v1.PartnerStatus{Phase: v1.PartnerRevoked}, PartnerPlan{Phase: v1.PartnerRevoked}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.plan.DeferViews(&tc.old); got != tc.want {
				t.Errorf("DeferViews: want %v, got %v", tc.want, got)
			}
		})
	}
}

func TestStatusAfterAccess(t *testing.T) {
	entitledOn := v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "a"}
	cases := []struct {
		name string
		old  v1.PartnerStatus
		plan PartnerPlan
		want bool
	}{
		{"revocation", entitledOn, PartnerPlan{Phase: v1.PartnerRevoked}, true},
		{"failover (with or without new role and limits)", entitledOn, PartnerPlan{Phase: v1.PartnerEntitled, Supply: Supply{Contract: "b"}}, true},
		{"suspension", entitledOn, PartnerPlan{Phase: v1.PartnerSuspended}, true},
		{"drift repaired, no transition", entitledOn, PartnerPlan{Phase: v1.PartnerEntitled, Supply: Supply{Contract: "a"}}, false},
		{"first grant", v1.PartnerStatus{}, PartnerPlan{Phase: v1.PartnerEntitled, Supply: Supply{Contract: "a"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.plan.StatusAfterAccess(&tc.old); got != tc.want {
				t.Errorf("StatusAfterAccess: want %v, got %v", tc.want, got)
			}
		})
	}
}
