package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Check is one outcome of the story.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Result is the story's checks.
type Result struct {
	Checks []Check
}

// Passed reports whether every check holds.
func (r *Result) Passed() bool {
	if r == nil || len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Failed lists the checks that do not hold.
func (r *Result) Failed() []Check {
	var out []Check
	if r == nil {
		return out
	}
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

func (r *storyRun) check(ctx context.Context) *Result {
	res := &Result{}
	add := func(name string, problems []string, ok string) {
		c := Check{Name: name, OK: len(problems) == 0, Detail: ok}
		if !c.OK {
			c.Detail = strings.Join(problems, "; ")
		}
		res.Checks = append(res.Checks, c)
	}
	add("contract lifecycle", r.checkContract(), fmt.Sprintf("%s went Active -> Expiring -> Grace -> Expired: %s",
		ContractBytec, r.phaseTimes(r.n.ContractPhases(ContractBytec))))
	add("fail-over", r.checkFailover(ctx), fmt.Sprintf("%s is Entitled on %s (Magirus); RoleBinding %s/%s binds %s",
		PartnerFailover, ContractMagirus, r.s.partner(PartnerFailover).Spec.Namespaces[0], v1.RoleBindingName, roleFor(v1.TierAdvanced)))
	revoked, kept := r.checkRevoked(ctx)
	add("revocation", revoked, fmt.Sprintf("%s is Revoked: no RoleBinding, subscription quota hard 0, namespace %s and its %d Subscriptions kept",
		PartnerRevoked, r.s.partner(PartnerRevoked).Spec.Namespaces[0], kept))
	add("requirements measured", r.checkRequirements(ctx), fmt.Sprintf("%s is below %s's Advanced requirements and qualifies for Ready (condition %s False, a %s event), still Advanced",
		PartnerFailover, ContractMagirus, v1.ConditionRequirementsMet, v1.ReasonBelowRequirements))
	add("on time", r.checkOnTime(), r.onTimeDetail())
	add("revoked partner cannot sell", r.checkRevokedUser(), fmt.Sprintf("the API server refuses %s's user: RBAC, no RoleBinding left",
		PartnerRevoked))
	add("system integrator unaffected", r.checkSI(ctx), fmt.Sprintf("%s (SystemIntegrator, Middleware) stayed Entitled on %s throughout, RoleBinding and Subscriptions in place",
		PartnerSI, ContractLXPN))
	add("quota enforced", r.checkQuota(), fmt.Sprintf("%d Subscriptions within quota admitted; the one over %s's quota refused by the API server (exceeded quota)",
		len(r.created), PartnerRevoked))
	return res
}

func roleFor(t v1.Tier) string { return v1.DefaultClusterRole(t) }

func (r *storyRun) phaseTimes(ps []PhaseChange) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, p.Phase+" "+r.tl.Rel(p.Seen))
	}
	return strings.Join(parts, ", ")
}

func (r *storyRun) checkContract() []string {
	var phases []string
	for _, p := range r.n.ContractPhases(ContractBytec) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	want := []string{string(v1.ContractActive), string(v1.ContractExpiring), string(v1.ContractGrace), string(v1.ContractExpired)}
	if !slices.Equal(phases, want) {
		return []string{fmt.Sprintf("%s went through %v, want %v", ContractBytec, phases, want)}
	}
	return nil
}

func (r *storyRun) checkFailover(ctx context.Context) []string {
	var problems []string
	p := r.s.partner(PartnerFailover)
	if err := r.partnerIs(ctx, p.Name, v1.PartnerEntitled, ContractMagirus); err != nil {
		problems = append(problems, err.Error())
	}
	ns := string(p.Spec.Namespaces[0])
	problems = append(problems, r.bindingProblems(ctx, p, ns)...)
	if e, ok := r.n.Event("Partner", p.Name, v1.EventFailedOver); !ok {
		problems = append(problems, "no FailedOver event")
	} else if !strings.Contains(e.Note, ContractMagirus) {
		problems = append(problems, "FailedOver event does not name "+ContractMagirus+": "+e.Note)
	}
	if r.timedOut != nil {
		problems = append(problems, "waiting for the end: "+oneLine(r.timedOut.Error()))
	}
	return problems
}

// bindingProblems: partner-access in ns binds the tier role to exactly the
// partner's access subjects.
func (r *storyRun) bindingProblems(ctx context.Context, p *v1.Partner, ns string) []string {
	rb, err := roleBinding(ctx, r.c, ns)
	if err != nil {
		return []string{fmt.Sprintf("RoleBinding %s/%s: %v", ns, v1.RoleBindingName, err)}
	}
	var problems []string
	if rb.RoleRef.Kind != "ClusterRole" || rb.RoleRef.Name != roleFor(p.Spec.Tier) {
		problems = append(problems, fmt.Sprintf("RoleBinding %s/%s refers to %s %s, want ClusterRole %s", ns, rb.Name, rb.RoleRef.Kind, rb.RoleRef.Name, roleFor(p.Spec.Tier)))
	}
	var got, want []string
	for _, s := range rb.Subjects {
		got = append(got, s.Kind+":"+s.Name)
	}
	for _, s := range p.Spec.Access {
		want = append(want, string(s.Kind)+":"+s.Name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("RoleBinding %s/%s subjects %v, want %v", ns, rb.Name, got, want))
	}
	return problems
}

func (r *storyRun) checkRevoked(ctx context.Context) (problems []string, kept int) {
	p := r.s.partner(PartnerRevoked)
	if err := r.partnerIs(ctx, p.Name, v1.PartnerRevoked, ""); err != nil {
		problems = append(problems, err.Error())
	}
	ns := string(p.Spec.Namespaces[0])
	if _, err := roleBinding(ctx, r.c, ns); err == nil {
		problems = append(problems, fmt.Sprintf("RoleBinding %s/%s still there", ns, v1.RoleBindingName))
	} else if !apierrors.IsNotFound(err) {
		problems = append(problems, err.Error())
	}
	q := &corev1.ResourceQuota{}
	if err := r.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1.ResourceQuotaName}, q); err != nil {
		problems = append(problems, fmt.Sprintf("ResourceQuota %s/%s: %v", ns, v1.ResourceQuotaName, err))
	} else if h, ok := q.Spec.Hard[v1.SubscriptionQuotaResource]; !ok || h.Value() != 0 {
		problems = append(problems, fmt.Sprintf("ResourceQuota %s/%s hard %s=%s, want 0", ns, q.Name, v1.SubscriptionQuotaResource, h.String()))
	}
	nsObj := &corev1.Namespace{}
	if err := r.c.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
		problems = append(problems, fmt.Sprintf("namespace %s: %v", ns, err))
	} else if !nsObj.DeletionTimestamp.IsZero() {
		problems = append(problems, fmt.Sprintf("namespace %s is being deleted", ns))
	}
	subs := &v1.SubscriptionList{}
	if err := r.c.List(ctx, subs, client.InNamespace(ns)); err != nil {
		problems = append(problems, err.Error())
	}
	kept = len(subs.Items)
	var want []string
	for _, c := range r.created {
		if strings.HasPrefix(c, ns+"/") {
			want = append(want, strings.TrimPrefix(c, ns+"/"))
		}
	}
	for _, w := range want {
		if !slices.ContainsFunc(subs.Items, func(s v1.Subscription) bool { return s.Name == w }) {
			problems = append(problems, fmt.Sprintf("Subscription %s/%s is gone", ns, w))
		}
	}
	if len(want) == 0 {
		problems = append(problems, fmt.Sprintf("no Subscription was created in %s to be kept", ns))
	}
	if _, ok := r.n.Event("Partner", p.Name, v1.EventRevoked); !ok {
		problems = append(problems, "no Revoked event")
	}
	return problems, kept
}

// checkOnTime: the fail-over and the revocation happened when bytec-de's
// grace period ended, not before and at most OnTime after.
func (r *storyRun) checkOnTime() []string {
	var problems []string
	end := r.s.bytecSupplyEnds
	for _, x := range []struct{ partner, reason string }{{PartnerFailover, v1.EventFailedOver}, {PartnerRevoked, v1.EventRevoked}} {
		e, ok := r.n.Event("Partner", x.partner, x.reason)
		if !ok {
			problems = append(problems, fmt.Sprintf("no %s event for %s", x.reason, x.partner))
			continue
		}
		lag := e.EventTime.Sub(end)
		switch {
		case lag < 0:
			problems = append(problems, fmt.Sprintf("%s of %s at %s, %s before the grace period ended (%s)", x.reason, x.partner, r.tl.Rel(e.EventTime), (-lag).Round(time.Millisecond), r.tl.Rel(end)))
		case lag > r.onTime:
			problems = append(problems, fmt.Sprintf("%s of %s at %s, %s after the grace period ended (%s); allowed %s", x.reason, x.partner, r.tl.Rel(e.EventTime), lag.Round(time.Millisecond), r.tl.Rel(end), r.onTime))
		}
	}
	return problems
}

func (r *storyRun) onTimeDetail() string {
	end := r.s.bytecSupplyEnds
	var parts []string
	for _, x := range []struct{ partner, reason string }{{PartnerFailover, v1.EventFailedOver}, {PartnerRevoked, v1.EventRevoked}} {
		if e, ok := r.n.Event("Partner", x.partner, x.reason); ok {
			parts = append(parts, fmt.Sprintf("%s %s after", x.reason, e.EventTime.Sub(end).Round(time.Millisecond)))
		}
	}
	return fmt.Sprintf("%s the end of %s's grace period (%s)", strings.Join(parts, " and "), ContractBytec, r.tl.Rel(end))
}

func (r *storyRun) checkRevokedUser() []string {
	if !deniedByRBAC(r.revokedUserErr) {
		return []string{fmt.Sprintf("after the revocation, creating a Subscription as %s's user: want a Forbidden by RBAC, got %v", PartnerRevoked, r.revokedUserErr)}
	}
	return nil
}

func (r *storyRun) checkSI(ctx context.Context) []string {
	var problems []string
	p := r.s.partner(PartnerSI)
	if err := r.partnerIs(ctx, p.Name, v1.PartnerEntitled, ContractLXPN); err != nil {
		problems = append(problems, err.Error())
	}
	got := &v1.Partner{}
	if err := r.c.Get(ctx, client.ObjectKey{Name: p.Name}, got); err == nil {
		if got.Spec.Type != v1.PartnerSystemIntegrator || !slices.Contains(got.Spec.Specializations, v1.SpecializationMiddleware) {
			problems = append(problems, fmt.Sprintf("type %s, specializations %v", got.Spec.Type, got.Spec.Specializations))
		}
		if meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionContractExpiring) {
			problems = append(problems, "condition ContractExpiring is true")
		}
	}
	ns := string(p.Spec.Namespaces[0])
	problems = append(problems, r.bindingProblems(ctx, p, ns)...)
	states := r.n.PartnerPhases(p.Name)
	if len(states) != 1 || states[0].Phase != string(v1.PartnerEntitled) || states[0].Contract != ContractLXPN {
		problems = append(problems, fmt.Sprintf("status went through %s, want only Entitled on %s", describeStates(states), ContractLXPN))
	}
	for _, reason := range []string{v1.EventFailedOver, v1.EventRevoked, v1.EventSuspended} {
		if e, ok := r.n.Event("Partner", p.Name, reason); ok {
			problems = append(problems, fmt.Sprintf("event %s: %s", reason, e.Note))
		}
	}
	subs := &v1.SubscriptionList{}
	if err := r.c.List(ctx, subs, client.InNamespace(ns)); err != nil {
		problems = append(problems, err.Error())
	} else if len(subs.Items) == 0 {
		problems = append(problems, "no Subscriptions in "+ns)
	}
	return problems
}

func describeStates(ps []PhaseChange) string {
	var parts []string
	for _, p := range ps {
		s := p.Phase
		if p.Contract != "" {
			s += " on " + p.Contract
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (r *storyRun) checkQuota() []string {
	var problems []string
	if len(r.notCreated) > 0 {
		problems = append(problems, "refused within quota: "+strings.Join(r.notCreated, "; "))
	}
	switch {
	case r.refusal == nil:
		problems = append(problems, "the Subscription over the quota was admitted")
	case !apierrors.IsForbidden(r.refusal) || !strings.Contains(r.refusal.Error(), "exceeded quota"):
		problems = append(problems, "the Subscription over the quota was refused, but not by the quota: "+oneLine(r.refusal.Error()))
	}
	return problems
}

// checkRequirements: on Magirus, ACME is measured below its tier's
// requirements and told so; its tier is unchanged.
func (r *storyRun) checkRequirements(ctx context.Context) []string {
	p := &v1.Partner{}
	if err := r.c.Get(ctx, client.ObjectKey{Name: PartnerFailover}, p); err != nil {
		return []string{err.Error()}
	}
	var problems []string
	perf := p.Status.Performance
	if perf == nil || perf.MeetsRequirements || perf.Shortfall == nil || perf.QualifiesFor != v1.TierReady {
		problems = append(problems, fmt.Sprintf("status.performance %+v, want below requirements with a shortfall, qualifying for Ready", perf))
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, v1.ConditionRequirementsMet); c == nil || c.Status != metav1.ConditionFalse {
		problems = append(problems, fmt.Sprintf("condition %s %+v, want False", v1.ConditionRequirementsMet, c))
	}
	if _, ok := r.n.Event("Partner", p.Name, v1.ReasonBelowRequirements); !ok {
		problems = append(problems, "no "+v1.ReasonBelowRequirements+" event")
	}
	if p.Spec.Tier != v1.TierAdvanced {
		problems = append(problems, "tier changed to "+string(p.Spec.Tier))
	}
	return problems
}
