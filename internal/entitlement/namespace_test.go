package entitlement

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestOwnership(t *testing.T) {
	withRecord := func(recs ...v1.NamespaceStatus) *v1.Partner {
		p := newPartner("acme", []string{"active-a"}, namespaces("a"))
		p.Status.Namespaces = recs
		return p
	}
	labelled := NamespaceObservation{Exists: true, Owner: "acme", UID: "u1"}
	// What anyone who may create namespaces can write: the labels, the
	// created-by annotation, a token of their own, the consent annotation.
	forged := NamespaceObservation{Exists: true, Owner: "acme", UID: "u1", CreationToken: "guessed", HandOverTo: "acme"}
	withToken := NamespaceObservation{Exists: true, Owner: "acme", UID: "u1", CreationToken: "secret"}
	creating := v1.NamespaceStatus{Name: "a", State: v1.NamespacePending, CreationDigest: TokenDigest("secret")}
	adopting := func(recs ...v1.NamespaceStatus) *v1.Partner {
		p := withRecord(recs...)
		p.Annotations = map[string]string{v1.AnnotationAdopt: "x, a"}
		return p
	}
	consenting := NamespaceObservation{Exists: true, Owner: "acme", UID: "u1", HandOverTo: "acme"}
	cases := []struct {
		name string
		p    *v1.Partner
		obs  NamespaceObservation
		want bool
		why  string
	}{
		{"UID recorded", withRecord(v1.NamespaceStatus{Name: "a", State: v1.NamespaceGranted, UID: "u1"}), labelled, true, ""},
		{"another partner's", withRecord(v1.NamespaceStatus{Name: "a", UID: "u1"}), NamespaceObservation{Exists: true, Owner: "globex", UID: "u1"}, false, "belongs to partner globex"},
		{"unlabelled", withRecord(), NamespaceObservation{Exists: true, UID: "u1"}, false, "does not belong"},
		{"labels and annotations forged, nothing recorded", withRecord(), forged, false, "did not create it"},
		{"recreated by someone else", withRecord(v1.NamespaceStatus{Name: "a", State: v1.NamespaceGranted, UID: "u0"}), forged, false, "created again by someone else"},
		{"creation recorded, created with the token before a crash", withRecord(creating), withToken, true, ""},
		{"creation recorded, created first by someone else (no token)", withRecord(creating), labelled, false, "created by someone else while the operator was creating it"},
		{"creation recorded, created first by someone else (a token of theirs)", withRecord(creating), forged, false, "created by someone else while the operator was creating it"},
		{"creation recorded by a version without tokens (a created-by annotation is not proof)", withRecord(v1.NamespaceStatus{Name: "a", State: v1.NamespacePending}), forged, false, "did not create it"},
		{"record of a version without UIDs (upgrade)", withRecord(v1.NamespaceStatus{Name: "a", State: v1.NamespaceGranted}), labelled, true, ""},
		{"revoked at the last record without a UID", withRecord(v1.NamespaceStatus{Name: "a", State: v1.NamespaceRevoked}), labelled, false, "did not create it"},
		{"handed over: consent on the namespace and the Partner's adopt annotation", adopting(), consenting, true, ""},
		{"adopt annotation alone (a Partner editor): refused", adopting(), labelled, false, "hand-over-to=acme"},
		{"consent on the namespace for another partner", adopting(), NamespaceObservation{Exists: true, Owner: "acme", UID: "u1", HandOverTo: "globex"}, false, "did not create it"},
		{"consent alone, no adopt annotation", withRecord(), consenting, false, "did not create it"},
		{"raced creation, then handed over by its creator", adopting(creating), consenting, true, ""},
		{"adopt annotation, but another partner's label", adopting(), NamespaceObservation{Exists: true, Owner: "globex", UID: "u1", HandOverTo: "acme"}, false, "belongs to partner globex"},
		{"absent at the last record, forged since", withRecord(v1.NamespaceStatus{Name: "a", State: v1.NamespaceRevoked, Message: MessageNotCreated}), forged, false, "did not create it"},
		{"Conflict at the last record", withRecord(v1.NamespaceStatus{Name: "a", State: v1.NamespaceConflict}), forged, false, "did not create it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := ownership(tc.p, "a", tc.obs)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("ownership: want %v %q, got %v %q", tc.want, tc.why, got, why)
			}
		})
	}
}

func TestForgedNamespaceIsConflictAndLosesWhatTheOperatorPutThere(t *testing.T) {
	p := newPartner("acme", []string{"active-a"}, namespaces("a"))
	plan := PlanPartner(func() PartnerInput {
		in := input(p, supplyFixtures()["active-a"])
		in.Namespaces["a"] = NamespaceObservation{Exists: true, Owner: "acme", UID: "u1", CreationToken: "guessed", Children: true}
		in.Strays = []string{"moved"}
		return in
	}())
	n := nsPlan(t, plan, "a")
	if n.State != v1.NamespaceConflict || n.Manage || n.Create || n.Bind || !n.RevokeChildren || n.UID != "" {
		t.Errorf("forged namespace: want Conflict, unmanaged, children revoked, no UID recorded; got %+v", n)
	}
	if len(plan.Strays) != 1 || plan.Strays[0] != "moved" {
		t.Errorf("Strays: want [moved], got %v", plan.Strays)
	}
	wantCond(t, plan.Conditions, v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonNamespaceConflict, "did not create it")
}

func TestPrecedence(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	p := newPartner("bravo", []string{"active-a"}, namespaces("shared"))
	p.CreationTimestamp = metav1.NewTime(at(0))
	cases := []struct {
		name   string
		claims []Claim
		want   string
	}{
		{"alone", []Claim{{"bravo", at(0)}}, ""},
		{"created later", []Claim{{"bravo", at(0)}, {"charlie", at(time.Second)}}, ""},
		{"created earlier", []Claim{{"alpha", at(-time.Second)}, {"bravo", at(0)}}, "alpha"},
		{"same second, earlier name", []Claim{{"alpha", at(0)}}, "alpha"},
		{"same second, later name", []Claim{{"charlie", at(0)}}, ""},
		{"earliest of several", []Claim{{"x", at(-time.Second)}, {"y", at(-2 * time.Second)}}, "y"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := precedence(p, tc.claims); got != tc.want {
				t.Errorf("precedence: want %q, got %q", tc.want, got)
			}
		})
	}
	plan := PlanPartner(func() PartnerInput {
		in := input(p, supplyFixtures()["active-a"])
		in.Claims = map[string][]Claim{"shared": {{"alpha", at(-time.Second)}}}
		return in
	}())
	if n := nsPlan(t, plan, "shared"); n.State != v1.NamespaceConflict || n.Create || !strings.Contains(n.Message, "alpha") {
		t.Errorf("namespace claimed first by alpha: want Conflict naming alpha, not created; got %+v", n)
	}
}

func TestQuotaWait(t *testing.T) {
	now := t0.Add(500 * time.Millisecond)
	cases := []struct {
		name        string
		q           QuotaObservation
		wantRecount time.Time
		wantRequeue time.Time
		waiting     bool
	}{
		{"counted", QuotaObservation{Exists: true, Synced: true, Counted: true}, time.Time{}, time.Time{}, false},
		{"counted, recount key left: removed", QuotaObservation{Exists: true, Synced: true, Counted: true, RecountAt: t0}, time.Time{}, time.Time{}, false},
		{"no quota yet: its events bring the partner back, a backstop", QuotaObservation{}, time.Time{}, now.Add(QuotaEventBackstop), true},
		{"not synced yet: wait, no recount", QuotaObservation{Exists: true}, time.Time{}, now.Add(QuotaEventBackstop), true},
		{"synced, not counted: recount now", QuotaObservation{Exists: true, Synced: true}, t0, t0.Add(RecountInterval), true},
		{"recount asked 1s ago: keep it", QuotaObservation{Exists: true, Synced: true, RecountAt: t0.Add(-time.Second)},
			t0.Add(-time.Second), t0.Add(-time.Second + RecountInterval), true},
		{"recount asked an interval ago: again", QuotaObservation{Exists: true, Synced: true, RecountAt: t0.Add(-RecountInterval)},
			t0, t0.Add(RecountInterval), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recount, requeue, msg := quotaWait(tc.q, now)
			if !recount.Equal(tc.wantRecount) || !requeue.Equal(tc.wantRequeue) || (msg != "") != tc.waiting {
				t.Errorf("quotaWait: want recount %v requeue %v waiting %v; got %v %v %q", tc.wantRecount, tc.wantRequeue, tc.waiting, recount, requeue, msg)
			}
			if !requeue.IsZero() && !requeue.After(now) {
				t.Errorf("requeue %v is not after now %v", requeue, now)
			}
		})
	}
}

func TestUncountedQuotaIsPendingNotGranted(t *testing.T) {
	p := newPartner("acme", []string{"active-a"}, namespaces("a"))
	p.Status.Namespaces = []v1.NamespaceStatus{{Name: "a", State: v1.NamespaceGranted, UID: "u1"}}
	in := input(p, supplyFixtures()["active-a"])
	in.Namespaces["a"] = NamespaceObservation{Exists: true, Owner: "acme", UID: "u1", Quota: QuotaObservation{Exists: true, Synced: true}}
	plan := PlanPartner(in)
	n := nsPlan(t, plan, "a")
	if n.State != v1.NamespacePending || !n.Manage || !n.Bind || n.Recount.IsZero() || !strings.Contains(n.Message, "count") {
		t.Errorf("uncounted quota: want Pending, managed, bound, a recount, a message; got %+v", n)
	}
	wantCond(t, plan.Conditions, v1.ConditionReconciling, metav1.ConditionTrue, v1.ReasonQuotaNotCounted)
	if plan.RequeueAt.IsZero() || plan.RequeueAt.After(in.Now.Add(RecountInterval)) {
		t.Errorf("RequeueAt: want within the recount interval, got %v", plan.RequeueAt)
	}
}

// TestCreationIsRecordedFirst: every create comes with its own fresh
// token on the namespace and a record of its digest to write first; a
// failed create keeps its record; a created namespace gets its UID.
func TestCreationIsRecordedFirst(t *testing.T) {
	p := newPartner("acme", []string{"active-a"}, namespaces("a", "b"))
	tokens := 0
	in := input(p, supplyFixtures()["active-a"])
	in.NewToken = func() string { tokens++; return fmt.Sprintf("t%d", tokens) }
	plan := PlanPartner(in)
	if names := CreationsToRecord(&plan); len(names) != 1 || names[0] != "a" {
		t.Fatalf("CreationsToRecord: want [a] (b is over the limit), got %v", names)
	}
	np := nsPlan(t, plan, "a")
	if np.Annotations[v1.AnnotationCreationToken] != "t1" || np.Annotations[v1.AnnotationPrefix+"phase"] != "Entitled" {
		t.Errorf("the namespace is created with its token and its view, got %v", np.Annotations)
	}
	if plan.Record == nil {
		t.Fatal("no record to write before the create")
	}
	p.Status = *plan.Record
	if rec, _ := recordOf(p, "a"); rec.State != v1.NamespacePending || rec.CreationDigest != TokenDigest("t1") || rec.UID != "" {
		t.Fatalf("the record: want a Pending with the digest, got %+v", p.Status.Namespaces)
	}
	// A second attempt (the create failed) has a fresh token and record:
	// nothing but the namespace keeps a token.
	again := PlanPartner(in)
	if rec := again.Record.Namespaces[0]; rec.CreationDigest != TokenDigest("t2") {
		t.Errorf("a second attempt: want a fresh token, got %+v", rec)
	}
	st := PartnerStatus(p, &plan, ApplyOutcome{Err: errors.New("create failed")}, t0)
	if rec := st.Namespaces[0]; rec.CreationDigest != TokenDigest("t1") {
		t.Errorf("failed create: want the record kept, got %+v", rec)
	}
	st = PartnerStatus(p, &plan, ApplyOutcome{Created: map[string]types.UID{"a": "u1"}}, t0)
	if rec := st.Namespaces[0]; rec.UID != "u1" || rec.CreationDigest != "" {
		t.Errorf("created: want the UID recorded and the digest gone, got %+v", rec)
	}
	existing := input(newPartner("acme", []string{"active-a"}), supplyFixtures()["active-a"])
	existing.Namespaces["acme-prod"] = NamespaceObservation{Exists: true, Owner: "acme"}
	if none := PlanPartner(settled(existing)); none.Record != nil {
		t.Errorf("nothing to create: want no record, got %+v", none.Record)
	}
}

func TestRoleEscape(t *testing.T) {
	rule := func(groups, resources, verbs []string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs}
	}
	core, rbac := []string{""}, []string{"rbac.authorization.k8s.io"}
	cases := []struct {
		name  string
		rules []rbacv1.PolicyRule
		want  string // "" for bindable
	}{
		{"subscriptions only", []rbacv1.PolicyRule{rule([]string{"entitlements.partnerops.io"}, []string{"subscriptions"}, []string{"get", "list", "create", "delete"})}, ""},
		{"read quotas and bindings", []rbacv1.PolicyRule{rule(core, []string{"resourcequotas"}, []string{"get", "list", "watch"}), rule(rbac, []string{"rolebindings"}, []string{"get"})}, ""},
		{"create RoleBindings", []rbacv1.PolicyRule{rule(rbac, []string{"rolebindings"}, []string{"create"})}, "write on rolebindings"},
		{"patch ResourceQuotas", []rbacv1.PolicyRule{rule(core, []string{"resourcequotas"}, []string{"patch"})}, "write on resourcequotas"},
		{"update quota status", []rbacv1.PolicyRule{rule(core, []string{"resourcequotas/status"}, []string{"update"})}, "write on resourcequotas"},
		{"delete LimitRanges", []rbacv1.PolicyRule{rule(core, []string{"limitranges"}, []string{"delete"})}, "write on limitranges"},
		{"label Namespaces", []rbacv1.PolicyRule{rule(core, []string{"namespaces"}, []string{"patch"})}, "write on namespaces"},
		{"write Roles in any group", []rbacv1.PolicyRule{rule([]string{"*"}, []string{"roles"}, []string{"update"})}, "write on roles"},
		{"every resource of core", []rbacv1.PolicyRule{rule(core, []string{"*"}, []string{"create"})}, `every resource of API group ""`},
		{"every resource of apps is fine", []rbacv1.PolicyRule{rule([]string{"apps"}, []string{"*"}, []string{"create"})}, ""},
		{"cluster-admin", []rbacv1.PolicyRule{rule([]string{"*"}, []string{"*"}, []string{"*"})}, "write on every resource"},
		{"escalate", []rbacv1.PolicyRule{rule(rbac, []string{"roles"}, []string{"escalate"})}, "verb escalate"},
		{"bind", []rbacv1.PolicyRule{rule(rbac, []string{"clusterroles"}, []string{"bind"})}, "verb bind"},
		{"impersonate", []rbacv1.PolicyRule{rule(core, []string{"serviceaccounts"}, []string{"impersonate"})}, "verb impersonate"},
		{"non-resource URLs are not namespaced", []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"*"}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := RoleEscape(tc.rules)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("RoleEscape: want %q, got %q", tc.want, got)
			}
		})
	}
}

func TestStepsAndFallbacks(t *testing.T) {
	grant := NamespacePlan{Name: "a", Bind: true, Manage: true}
	create := NamespacePlan{Name: "a", Bind: true, Manage: true, Create: true}
	revoke := NamespacePlan{Name: "a", Manage: true}
	if s := Steps(grant, &PartnerPlan{}); s[1] != StepQuota || s[2] != StepBinding {
		t.Errorf("Steps(grant): want the quota before the binding, got %v", s)
	}
	if s := Steps(revoke, &PartnerPlan{}); s[1] != StepBinding || s[2] != StepQuota {
		t.Errorf("Steps(revoke): want the binding before the quota, got %v", s)
	}
	cases := []struct {
		name   string
		np     NamespacePlan
		nsFail bool
		quota  QuotaOutcome
		want   BindMode
		quotaR bool
	}{
		{"grant, all written", grant, false, QuotaWritten, BindAsPlanned, true},
		{"grant, quota absent after a failure", grant, false, QuotaFailedAbsent, BindRemove, true},
		{"grant, quota write failed, old one present", grant, false, QuotaFailedPresent, BindNarrowOnly, true},
		{"grant, quota unreadable", grant, false, QuotaFailedUnknown, BindNarrowOnly, true},
		{"grant, labels and view failed on an existing namespace: nothing new granted ahead of the view", grant, true, QuotaWritten, BindNarrowOnly, false},
		{"create failed: nothing to apply into", create, true, QuotaWritten, BindSkip, false},
		{"revoke, quota failed", revoke, false, QuotaFailedPresent, BindAsPlanned, true},
		{"revoke, view failed: the binding still goes, the quota is still lowered", revoke, true, QuotaWritten, BindAsPlanned, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := BindAfter(tc.np, tc.nsFail, tc.quota); got != tc.want {
				t.Errorf("BindAfter: want %v, got %v", tc.want, got)
			}
			if got := QuotaAfter(tc.np, tc.nsFail); got != tc.quotaR {
				t.Errorf("QuotaAfter: want %v, got %v", tc.quotaR, got)
			}
		})
	}
}
