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
			if got := Steps(tc.np, &PartnerPlan{}); !slices.Equal(got, tc.want) {
				t.Errorf("Steps: want %v, got %v", tc.want, got)
			}
		})
	}
}

func TestNextPass(t *testing.T) {
	now := t0
	boundary := now.Add(time.Hour)
	stalled := &metav1.Condition{Reason: v1.ReasonNamespaceConflict}
	revokeAt := func(at time.Time) *v1.NextChange {
		return &v1.NextChange{At: metav1.NewTime(at), Outcome: v1.NextRevoke}
	}
	cases := []struct {
		name string
		plan PartnerPlan
		want Requeue
	}{
		{"nothing scheduled", PartnerPlan{}, Requeue{}},
		{"a boundary where the partner is revoked: at it, PriorityDue", PartnerPlan{RequeueAt: boundary, Supply: Supply{NextAt: boundary}, Next: revokeAt(boundary)}, Requeue{After: time.Hour, Priority: PriorityDue}},
		{"a boundary where it fails over: at it, PriorityTransition", PartnerPlan{RequeueAt: boundary, Supply: Supply{NextAt: boundary}, Next: &v1.NextChange{At: metav1.NewTime(boundary), Outcome: v1.NextFailOver}}, Requeue{After: time.Hour, Priority: PriorityTransition}},
		{"an access-only pass: the rest at once, behind the access still due", PartnerPlan{AccessOnly: true, RequeueAt: boundary}, Requeue{After: AccessFollowUp, Priority: PriorityTransition}},
		{"a quota count awaited: at it, default priority", PartnerPlan{RequeueAt: now.Add(2 * time.Second), Supply: Supply{NextAt: boundary}}, Requeue{After: 2 * time.Second}},
		{"a past instant: soon, never zero", PartnerPlan{RequeueAt: now.Add(-time.Second), Supply: Supply{NextAt: now.Add(-time.Second)}}, Requeue{After: 100 * time.Millisecond, Priority: PriorityTransition}},
		{"stalled: rechecked", PartnerPlan{Stalled: stalled}, Requeue{After: time.Minute}},
		{"stalled, boundary sooner: the boundary", PartnerPlan{Stalled: stalled, RequeueAt: now.Add(time.Second), Supply: Supply{NextAt: now.Add(time.Second)}, Next: revokeAt(now.Add(time.Second))}, Requeue{After: time.Second, Priority: PriorityDue}},
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

// TestAccessFirst: at a contract's end, a scheduled revocation takes the
// access away in a pass of its own while it is still observed, within the
// window; anything else is one full pass.
func TestAccessFirst(t *testing.T) {
	end := t0.Add(-time.Second)
	ended := newContract("ended", starts(t0.Add(-day)), ends(end), notice(time.Hour))
	scheduled := v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "ended", EntitledUntil: ptrTime(end),
		Next: &v1.NextChange{At: metav1.NewTime(end), Outcome: v1.NextRevoke}}
	bound := NamespaceObservation{Exists: true, Owner: "acme", Bound: true, Quota: QuotaObservation{Exists: true, Synced: true, Counted: true, SpecHard: 10}}
	gone := NamespaceObservation{Exists: true, Owner: "acme", Quota: QuotaObservation{Exists: true, Synced: true, Counted: true}}
	cases := []struct {
		name string
		st   v1.PartnerStatus
		obs  NamespaceObservation
		now  time.Time
		want bool
	}{
		{"scheduled revocation, access still there: access first", scheduled, bound, t0, true},
		{"access already gone (the follow-up pass): the rest", scheduled, gone, t0, false},
		{"on time, no queue in front: one full pass", scheduled, bound, end.Add(AccessFirstLate - time.Millisecond), false},
		{"late by AccessFirstLate: access first", scheduled, bound, end.Add(AccessFirstLate), true},
		{"after the window: one full pass", scheduled, bound, end.Add(AccessFirstWindow), false},
		{"not announced (an edit): one full pass", v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "ended", EntitledUntil: ptrTime(end)}, bound, t0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPartner("acme", []string{"ended"}, oldStatus(tc.st))
			p.Status.Namespaces = []v1.NamespaceStatus{{Name: "acme-prod", State: v1.NamespaceGranted, UID: "u"}}
			in := input(p, ended)
			in.Now = tc.now
			tc.obs.UID = "u"
			in.Namespaces["acme-prod"] = tc.obs
			plan := PlanPartner(in)
			if plan.AccessOnly != tc.want {
				t.Errorf("AccessOnly: want %v, got %v (phase %s, scheduled %v)", tc.want, plan.AccessOnly, plan.Phase, plan.ScheduledRevocation)
			}
			if st := PartnerStatus(p, &plan, ApplyOutcome{}, tc.now); plan.AccessOnly && st.Phase != v1.PartnerEntitled {
				t.Errorf("an access-only pass leaves the status: got phase %s", st.Phase)
			}
		})
	}
}

func ptrTime(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

func TestOffBoundary(t *testing.T) {
	whole := t0 // a whole second
	cases := []struct {
		name string
		now  time.Time
		d    time.Duration
		want time.Duration
	}{
		{"from a boundary: half a second past the second d ends in", whole, time.Second, 1500 * time.Millisecond},
		{"already half past: exactly d", whole.Add(500 * time.Millisecond), time.Second, time.Second},
		{"just past half: to the next half", whole.Add(600 * time.Millisecond), time.Second, 1900 * time.Millisecond},
		{"a long delay keeps its length, to the half second", whole.Add(100 * time.Millisecond), 3 * time.Second, 3400 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := OffBoundary(tc.now, tc.d)
			if got != tc.want {
				t.Errorf("OffBoundary(%s, %s) = %s, want %s", tc.now.Format(time.StampMilli), tc.d, got, tc.want)
			}
			if end := tc.now.Add(got); end.Sub(end.Truncate(time.Second)) != 500*time.Millisecond || got < tc.d {
				t.Errorf("ends at %s: want half a second past a whole second, not before d", end.Format(time.StampMilli))
			}
		})
	}
}
