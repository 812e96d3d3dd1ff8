package entitlement

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestStepsWriteTheViewFirst(t *testing.T) {
	cases := []struct {
		name string
		np   NamespacePlan
		want []Step
	}{
		{"grant: view, quota, then binding", NamespacePlan{Bind: true}, []Step{StepNamespace, StepQuota, StepBinding}},
		{"revoke: view, binding gone, then quota", NamespacePlan{}, []Step{StepNamespace, StepBinding, StepQuota}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Steps(tc.np); !slices.Equal(got, tc.want) {
				t.Errorf("Steps: want %v, got %v", tc.want, got)
			}
		})
	}
}

func TestNextPass(t *testing.T) {
	now := t0
	boundary := now.Add(time.Hour)
	stalled := &metav1.Condition{Reason: v1.ReasonNamespaceConflict}
	cases := []struct {
		name string
		plan PartnerPlan
		want Requeue
	}{
		{"nothing scheduled", PartnerPlan{}, Requeue{}},
		{"a contract boundary: at it, PriorityDue", PartnerPlan{RequeueAt: boundary, Supply: Supply{NextAt: boundary}}, Requeue{After: time.Hour, Priority: PriorityDue}},
		{"a quota count awaited: at it, default priority", PartnerPlan{RequeueAt: now.Add(2 * time.Second), Supply: Supply{NextAt: boundary}}, Requeue{After: 2 * time.Second}},
		{"a past instant: soon, never zero", PartnerPlan{RequeueAt: now.Add(-time.Second), Supply: Supply{NextAt: now.Add(-time.Second)}}, Requeue{After: 100 * time.Millisecond, Priority: PriorityDue}},
		{"stalled: rechecked", PartnerPlan{Stalled: stalled}, Requeue{After: time.Minute}},
		{"stalled, boundary sooner: the boundary", PartnerPlan{Stalled: stalled, RequeueAt: now.Add(time.Second), Supply: Supply{NextAt: now.Add(time.Second)}}, Requeue{After: time.Second, Priority: PriorityDue}},
		{"stalled, boundary later: the recheck", PartnerPlan{Stalled: stalled, RequeueAt: boundary, Supply: Supply{NextAt: boundary}}, Requeue{After: time.Minute}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextPass(&tc.plan, now, time.Minute); got != tc.want {
				t.Errorf("NextPass: want %+v, got %+v", tc.want, got)
			}
		})
	}
}

func TestReadyCondition(t *testing.T) {
	stalled := &metav1.Condition{Reason: v1.ReasonRoleNotBindable, Message: "role"}
	waiting := &metav1.Condition{Reason: v1.ReasonQuotaNotCounted, Message: "count"}
	cases := []struct {
		name       string
		plan       PartnerPlan
		err        error
		status     metav1.ConditionStatus
		reason     string
		messageHas string
	}{
		{"applied, entitled", PartnerPlan{Phase: v1.PartnerEntitled}, nil, metav1.ConditionTrue, v1.ReasonReconciled, "Entitled"},
		{"applied, revoked: Ready (the business state is Entitled's)", PartnerPlan{Phase: v1.PartnerRevoked}, nil, metav1.ConditionTrue, v1.ReasonReconciled, "Revoked"},
		{"waiting", PartnerPlan{Reconciling: waiting}, nil, metav1.ConditionFalse, v1.ReasonQuotaNotCounted, "count"},
		{"stalled before waiting", PartnerPlan{Stalled: stalled, Reconciling: waiting}, nil, metav1.ConditionFalse, v1.ReasonRoleNotBindable, "role"},
		{"a failed write before all", PartnerPlan{Stalled: stalled}, errors.New("etcd timeout"), metav1.ConditionFalse, v1.ReasonApplyFailed, "etcd timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ReadyCondition(&tc.plan, tc.err)
			if c.Type != v1.ConditionReady || c.Status != tc.status || c.Reason != tc.reason || !strings.Contains(c.Message, tc.messageHas) {
				t.Errorf("want %s %s %q, got %+v", tc.status, tc.reason, tc.messageHas, c)
			}
		})
	}
}

func TestContractNextPass(t *testing.T) {
	now := t0
	at := now.Add(time.Hour)
	cases := []struct {
		name  string
		d     ContractDecision
		later bool
		want  Requeue
	}{
		{"open-ended, nothing ahead", ContractDecision{}, false, Requeue{}},
		{"its next transition, at PriorityDue", ContractDecision{NextTransitionAt: at}, false, Requeue{After: time.Hour, Priority: PriorityDue}},
		{"a transition just written, partners counted later", ContractDecision{NextTransitionAt: at, Changed: true}, true, Requeue{After: 3 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ContractNextPass(tc.d, tc.later, 3*time.Second, now); got != tc.want {
				t.Errorf("ContractNextPass: want %+v, got %+v", tc.want, got)
			}
		})
	}
}

func TestCountLater(t *testing.T) {
	decided := newContract("c", statusPhase(v1.ContractExpiring))
	fresh := newContract("c")
	cases := []struct {
		name string
		c    *v1.DistributorContract
		d    ContractDecision
		want bool
	}{
		{"a transition of a contract decided before: the phase first", decided, ContractDecision{Changed: true}, true},
		{"no transition: count now", decided, ContractDecision{}, false},
		{"its first pass: count now", fresh, ContractDecision{Changed: true}, false},
	}
	for _, tc := range cases {
		if got := CountLater(tc.c, tc.d); got != tc.want {
			t.Errorf("%s: want %v, got %v", tc.name, tc.want, got)
		}
	}
}
