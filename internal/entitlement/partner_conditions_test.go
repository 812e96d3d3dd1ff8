package entitlement

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestPlanPartnerEntitledOpenEndedMessageHasNoUntil(t *testing.T) {
	plan := planFor(newPartner("acme", []string{"open"}), nil)
	if c := findCond(plan.Conditions, v1.ConditionEntitled); c == nil || strings.Contains(c.Message, "until") {
		t.Errorf("Entitled condition of an open-ended supply: want no \"until\", got %+v", c)
	}
}

func TestPlanPartnerEvents(t *testing.T) {
	st := func(phase v1.PartnerPhase, contract string) partnerOpt {
		return oldStatus(v1.PartnerStatus{Phase: phase, Contract: contract})
	}
	cases := []struct {
		name     string
		p        *v1.Partner
		want     []string
		wantType string // type of the first event
		wantMsg  []string
	}{
		{"first entitlement", newPartner("acme", []string{"active-a"}), []string{v1.EventGranted}, corev1.EventTypeNormal, []string{"active-a", "Dist-active-a"}},
		{"pending to entitled", newPartner("acme", []string{"active-a"}, st(v1.PartnerPending, "")), []string{v1.EventGranted}, corev1.EventTypeNormal, nil},
		{"revoked to entitled", newPartner("acme", []string{"active-a"}, st(v1.PartnerRevoked, "")), []string{v1.EventGranted}, corev1.EventTypeNormal, nil},
		{"unsuspended", newPartner("acme", []string{"active-a"}, st(v1.PartnerSuspended, "active-a")), []string{v1.EventGranted}, corev1.EventTypeNormal, nil},
		{"still entitled by the same contract", newPartner("acme", []string{"active-a"}, st(v1.PartnerEntitled, "active-a")), nil, "", nil},
		{"failed over", newPartner("acme", []string{"expired", "active-a"}, st(v1.PartnerEntitled, "expired")),
			[]string{v1.EventFailedOver}, corev1.EventTypeNormal, []string{"from contract expired to active-a", "Dist-active-a"}},
		{"entitled to revoked", newPartner("acme", []string{"expired"}, st(v1.PartnerEntitled, "expired")),
			[]string{v1.EventRevoked}, corev1.EventTypeWarning, []string{"contract expired ended at", "kept"}},
		{"entitled to pending", newPartner("acme", []string{"expired", "pending"}, st(v1.PartnerEntitled, "expired")),
			[]string{v1.EventRevoked}, corev1.EventTypeWarning, nil},
		{"still revoked", newPartner("acme", []string{"expired"}, st(v1.PartnerRevoked, "")), nil, "", nil},
		{"new partner, revoked: no event", newPartner("acme", []string{"expired"}), nil, "", nil},
		{"new partner, pending: no event", newPartner("acme", []string{"pending"}), nil, "", nil},
		{"entitled to suspended", newPartner("acme", []string{"active-a"}, suspended(), st(v1.PartnerEntitled, "active-a")),
			[]string{v1.EventSuspended}, corev1.EventTypeWarning, nil},
		{"new partner, suspended", newPartner("acme", []string{"active-a"}, suspended()), []string{v1.EventSuspended}, corev1.EventTypeWarning, nil},
		{"still suspended", newPartner("acme", []string{"active-a"}, suspended(), st(v1.PartnerSuspended, "")), nil, "", nil},
		{"not entitled, missing contract", newPartner("acme", []string{"nope"}),
			[]string{v1.EventContractNotFound}, corev1.EventTypeWarning, []string{"contract nope not found"}},
		{"revoked, with a missing contract", newPartner("acme", []string{"expired", "nope"}, st(v1.PartnerEntitled, "expired")),
			[]string{v1.EventRevoked, v1.EventContractNotFound}, corev1.EventTypeWarning, nil},
		{"not entitled, region mismatch", newPartner("acme", []string{"austria"}),
			[]string{v1.ReasonContractMismatch}, corev1.EventTypeWarning, []string{"region AT"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planFor(tc.p, nil)
			wantEvents(t, plan.Events, tc.want...)
			if len(plan.Events) == 0 || len(tc.want) == 0 {
				return
			}
			e := plan.Events[0]
			if e.Type != tc.wantType {
				t.Errorf("event %s: want type %s, got %s", e.Reason, tc.wantType, e.Type)
			}
			for _, s := range tc.wantMsg {
				if !strings.Contains(e.Message, s) {
					t.Errorf("event %s: want message containing %q, got %q", e.Reason, s, e.Message)
				}
			}
		})
	}

	t.Run("contract problem already reported: no repeated event", func(t *testing.T) {
		p := newPartner("acme", []string{"nope"})
		first := planFor(p, nil)
		p.Status = v1.PartnerStatus{Phase: v1.PartnerRevoked, Conditions: []metav1.Condition{*first.Stalled}}
		wantEvents(t, planFor(p, nil).Events)
	})
}

func TestPlanPartnerStalledForContracts(t *testing.T) {
	cases := []struct {
		name   string
		p      *v1.Partner
		reason string // "" = no Stalled
		msg    []string
	}{
		{"revoked, contract missing", newPartner("acme", []string{"nope", "expired"}), v1.ReasonContractNotFound, []string{"contract nope not found"}},
		{"revoked, region mismatch", newPartner("acme", []string{"austria"}), v1.ReasonContractMismatch, []string{"region AT"}},
		{"revoked, tier not covered", newPartner("acme", []string{"ready-only"}), v1.ReasonContractMismatch, []string{"tier Advanced"}},
		{"revoked, both: not found ranks first", newPartner("acme", []string{"austria", "nope"}), v1.ReasonContractNotFound, []string{"region AT", "nope not found"}},
		{"pending, contract missing", newPartner("acme", []string{"nope", "pending"}), v1.ReasonContractNotFound, nil},
		{"entitled despite a missing earlier contract: not stalled", newPartner("acme", []string{"nope", "active-a"}), "", nil},
		{"entitled despite a mismatched earlier contract: not stalled", newPartner("acme", []string{"austria", "active-a"}), "", nil},
		{"revoked, only expired: not stalled (nothing for a user to fix)", newPartner("acme", []string{"expired"}), "", nil},
		{"suspended, supplied despite a missing earlier contract: not stalled, as when not suspended", newPartner("acme", []string{"nope", "active-a"}, suspended()), "", nil},
		{"suspended, contract missing and none supplies: stalled", newPartner("acme", []string{"nope"}, suspended()), v1.ReasonContractNotFound, []string{"contract nope not found"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planFor(tc.p, nil)
			if tc.reason == "" {
				noCond(t, plan.Conditions, v1.ConditionStalled)
				if plan.Stalled != nil || !contains(plan.Remove, v1.ConditionStalled) {
					t.Errorf("Stalled: want none and removed, got %+v, Remove %v", plan.Stalled, plan.Remove)
				}
				return
			}
			wantCond(t, plan.Conditions, v1.ConditionStalled, metav1.ConditionTrue, tc.reason, tc.msg...)
		})
	}
}

func TestPlanPartnerContractExpiringCondition(t *testing.T) {
	cases := []struct {
		name   string
		list   []string
		status metav1.ConditionStatus
		reason string
		msg    []string
	}{
		{"active supply: not expiring", []string{"active-a"}, metav1.ConditionFalse, v1.ReasonNotExpiring, []string{"not near its end"}},
		{"open-ended supply: not expiring", []string{"open"}, metav1.ConditionFalse, v1.ReasonNotExpiring, nil},
		{"expiring with a successor", []string{"expiring", "active-b"}, metav1.ConditionTrue, v1.ReasonContractExpiring,
			[]string{"contract expiring", "ends at " + formatTime(t0.Add(5*day)), "fail over to active-b"}},
		{"expiring, no successor", []string{"expiring"}, metav1.ConditionTrue, v1.ReasonContractExpiring, []string{"revoked"}},
		{"expiring, successor also ends first", []string{"expiring", "grace"}, metav1.ConditionTrue, v1.ReasonContractExpiring, []string{"revoked"}},
		{"in grace with a successor", []string{"grace", "active-a"}, metav1.ConditionTrue, v1.ReasonContractInGrace,
			[]string{"entitlements until " + formatTime(t0.Add(4*day)), "fail over to active-a"}},
		{"in grace, successor pending then", []string{"grace", "pending"}, metav1.ConditionTrue, v1.ReasonContractInGrace, []string{"revoked"}},
		{"not entitled", []string{"expired"}, metav1.ConditionFalse, v1.ReasonNotExpiring, []string{"no contract supplies"}},
		{"suspended, contract expiring", []string{"expiring"}, metav1.ConditionFalse, v1.ReasonNotExpiring, []string{"suspended"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []partnerOpt
			if strings.HasPrefix(tc.name, "suspended") {
				opts = append(opts, suspended())
			}
			plan := planFor(newPartner("acme", tc.list, opts...), nil)
			wantCond(t, plan.Conditions, v1.ConditionContractExpiring, tc.status, tc.reason, tc.msg...)
			if tc.status == metav1.ConditionTrue {
				c := findCond(plan.Conditions, v1.ConditionContractExpiring)
				if strings.Contains(c.Message, "fail over") == strings.Contains(c.Message, "revoked") {
					t.Errorf("ContractExpiring message: want exactly one of fail over / revoked, got %q", c.Message)
				}
				if strings.Contains(c.Message, "fail over to ") && !strings.HasSuffix(c.Message, "fail over to "+plan.Successor) {
					t.Errorf("ContractExpiring message: want it to name Successor %q, got %q", plan.Successor, c.Message)
				}
			}
		})
	}
}

func TestPlanPartnerRequeueAndSuccessor(t *testing.T) {
	cases := []struct {
		name          string
		list          []string
		wantRequeue   time.Time
		wantSuccessor string
	}{
		{"next boundary of the supply", []string{"active-a"}, t0.Add(90 * day), ""},
		{"a later-listed contract's start comes first", []string{"active-a", "pending"}, t0.Add(5 * day), "pending"},
		{"grace end", []string{"grace", "active-b"}, t0.Add(4 * day), "active-b"},
		{"revoked for good: never", []string{"expired"}, time.Time{}, ""},
		{"pending: its start", []string{"pending"}, t0.Add(5 * day), ""},
		{"open-ended: never", []string{"open"}, time.Time{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planFor(newPartner("acme", tc.list), nil)
			if !plan.RequeueAt.Equal(tc.wantRequeue) || !plan.RequeueAt.Equal(plan.Supply.NextAt) {
				t.Errorf("RequeueAt (%v): want %s (= Supply.NextAt %s), got %s", tc.list, tc.wantRequeue, plan.Supply.NextAt, plan.RequeueAt)
			}
			if plan.Successor != tc.wantSuccessor {
				t.Errorf("Successor (%v): want %q, got %q", tc.list, tc.wantSuccessor, plan.Successor)
			}
		})
	}
}

// The plan must not mutate its input (the reconciler re-plans with the same
// input after a Forbidden binding).
func TestPlanPartnerDoesNotMutateInput(t *testing.T) {
	p := newPartner("acme", []string{"nope", "active-a"}, namespaces("a", "b"))
	in := input(p)
	in.Contracts = supplyFixtures()
	in.Namespaces["a"] = NamespaceObservation{Exists: true, Owner: "globex"}
	before := p.DeepCopy()
	beforeC := in.Contracts["active-a"].DeepCopy()
	PlanPartner(in)
	PlanPartner(in)
	if !reflect.DeepEqual(before, p) || !reflect.DeepEqual(beforeC, in.Contracts["active-a"]) {
		t.Errorf("PlanPartner mutated its input")
	}
}
