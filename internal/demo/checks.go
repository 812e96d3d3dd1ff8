package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Check is one outcome of the story.
type Check struct {
	Name string
	OK   bool
	// Detail says what holds, or what does not.
	Detail string
}

// Result is the story's checks.
type Result struct {
	Checks []Check
}

// Passed reports whether there are checks and every one holds.
func (r *Result) Passed() bool {
	return r != nil && len(r.Checks) > 0 && !slices.ContainsFunc(r.Checks, func(c Check) bool { return !c.OK })
}

// problems collects what does not hold.
type problems []string

// err notes a non-nil error.
func (p *problems) err(err error) {
	if err != nil {
		*p = append(*p, oneLine(err.Error()))
	}
}

// when notes the message if cond holds.
func (p *problems) when(cond bool, format string, args ...any) {
	if cond {
		*p = append(*p, fmt.Sprintf(format, args...))
	}
}

// check asks status, events and the API server's answers whether the story
// happened as told.
func (r *run) check(ctx context.Context) *Result {
	res := &Result{}
	add := func(name, holds string, p problems) {
		c := Check{Name: name, OK: len(p) == 0, Detail: holds}
		if !c.OK {
			c.Detail = strings.Join(p, "; ")
		}
		res.Checks = append(res.Checks, c)
	}
	add("fail-over", fmt.Sprintf("%s is Entitled on %s (FailedOver event), and its user sold there after the fail-over",
		PartnerFailover, ContractMagirus), r.checkFailover(ctx))
	add("requirements measured", fmt.Sprintf("%s is below %s's Advanced requirements and qualifies for Ready (%s False, a %s event), still Advanced",
		PartnerFailover, ContractMagirus, v1.ConditionRequirementsMet, v1.ReasonBelowRequirements), r.checkRequirements(ctx))
	kept, p := r.checkRevoked(ctx)
	add("revocation, data kept", fmt.Sprintf("%s is Revoked (Revoked event): namespace %s and its %d Subscriptions kept, its user's new one refused (%s)",
		PartnerRevoked, r.partner(PartnerRevoked).Spec.Namespaces[0], kept, apierrors.ReasonForError(r.answers["nordwind-4"])), p)
	holds, p := r.checkOnTime()
	add("on time", holds, p)
	add("quota enforced", fmt.Sprintf("every Subscription within quota admitted; the one over %s's quota refused by the API server (exceeded quota)",
		PartnerRevoked), r.checkQuota())
	add("Kontor untouched", fmt.Sprintf("%s stayed Entitled on %s (history: Granted only), its Subscription in place",
		PartnerSI, ContractLXPN), r.checkSI(ctx))
	return res
}

func (r *run) checkFailover(ctx context.Context) (p problems) {
	p.err(r.partnerIs(ctx, PartnerFailover, v1.PartnerEntitled, ContractMagirus))
	e, ok := r.n.event(PartnerFailover, v1.EventFailedOver)
	p.when(!ok, "no FailedOver event")
	p.when(ok && !strings.Contains(e.msg, ContractMagirus), "FailedOver event does not name %s: %s", ContractMagirus, e.msg)
	p.when(r.answers["acme-3"] != nil, "after the fail-over, its user could not sell: %v", r.answers["acme-3"])
	p.when(r.timedOut != nil, "waiting for the end: %v", r.timedOut)
	return p
}

// checkRequirements: on Magirus, ACME is measured below its tier's
// requirements and told so; its tier is unchanged.
func (r *run) checkRequirements(ctx context.Context) (p problems) {
	got := &v1.Partner{}
	if p.err(r.c.Get(ctx, client.ObjectKey{Name: PartnerFailover}, got)); len(p) > 0 {
		return p
	}
	perf := got.Status.Performance
	p.when(perf == nil || perf.MeetsRequirements || perf.Shortfall == nil || perf.QualifiesFor != v1.TierReady,
		"status.performance %+v, want below requirements with a shortfall, qualifying for Ready", perf)
	c := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionRequirementsMet)
	p.when(c == nil || c.Status != metav1.ConditionFalse, "condition %s %+v, want False", v1.ConditionRequirementsMet, c)
	_, ok := r.n.event(PartnerFailover, v1.ReasonBelowRequirements)
	p.when(!ok, "no %s event", v1.ReasonBelowRequirements)
	p.when(got.Spec.Tier != v1.TierAdvanced, "tier changed to %s", got.Spec.Tier)
	return p
}

// checkRevoked: Nordwind is revoked, everything it had is kept, and the API
// server refuses what its user sells next (RBAC, quota or policy: 403 or
// 422).
func (r *run) checkRevoked(ctx context.Context) (kept int, p problems) {
	p.err(r.partnerIs(ctx, PartnerRevoked, v1.PartnerRevoked, ""))
	_, ok := r.n.event(PartnerRevoked, v1.EventRevoked)
	p.when(!ok, "no Revoked event")
	ns := &corev1.Namespace{}
	if err := r.c.Get(ctx, client.ObjectKey{Name: string(r.partner(PartnerRevoked).Spec.Namespaces[0])}, ns); err != nil {
		p.err(fmt.Errorf("its namespace: %w", err))
	}
	p.when(!ns.DeletionTimestamp.IsZero(), "namespace %s is being deleted", ns.Name)
	kept = r.kept(ctx, PartnerRevoked, &p)
	p.when(kept == 0, "no Subscription of %s kept", PartnerRevoked)
	answer := r.answers["nordwind-4"]
	p.when(!apierrors.IsForbidden(answer) && !apierrors.IsInvalid(answer), "after the revocation its user's new Subscription: %v, want refused", answer)
	return kept, p
}

// checkOnTime: the fail-over and the revocation happened when bytec-de's
// grace period ended, not before and at most onTime after.
func (r *run) checkOnTime() (holds string, p problems) {
	var lags []string
	for _, o := range []struct{ partner, reason string }{{PartnerFailover, v1.EventFailedOver}, {PartnerRevoked, v1.EventRevoked}} {
		e, ok := r.n.event(o.partner, o.reason)
		lag := e.at.Sub(r.supplyEnds).Round(time.Millisecond)
		lags = append(lags, fmt.Sprintf("%s %s after", o.reason, lag))
		p.when(!ok, "no %s event for %s", o.reason, o.partner)
		p.when(ok && (lag < 0 || lag > onTime), "%s of %s at %s, %s after the grace period ended (%s); allowed 0 to %s",
			o.reason, o.partner, r.n.rel(e.at), lag, r.n.rel(r.supplyEnds), onTime)
	}
	return fmt.Sprintf("%s the end of %s's grace period (%s)", strings.Join(lags, " and "), ContractBytec, r.n.rel(r.supplyEnds)), p
}

// checkQuota: the API server admitted every sale within quota and refused
// the one over it, for that reason.
func (r *run) checkQuota() (p problems) {
	for _, sl := range r.sales {
		err := r.answers[sl.sub.Name]
		p.when(!sl.refused && err != nil, "%s refused within quota: %v", sl.sub.Name, err)
		p.when(sl.refused && err == nil, "%s admitted over the quota", sl.sub.Name)
		p.when(sl.refused && err != nil && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota")),
			"%s refused, but not by the quota: %v", sl.sub.Name, err)
	}
	return p
}

// checkSI: nothing Bytec's end did reached Kontor.
func (r *run) checkSI(ctx context.Context) (p problems) {
	p.err(r.partnerIs(ctx, PartnerSI, v1.PartnerEntitled, ContractLXPN))
	got := &v1.Partner{}
	p.err(r.c.Get(ctx, client.ObjectKey{Name: PartnerSI}, got))
	h := history(got)
	p.when(h != "Granted on "+ContractLXPN, "status.history: %q, want Granted on %s only", h, ContractLXPN)
	p.when(meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionContractExpiring), "condition ContractExpiring is True")
	for _, reason := range []string{v1.EventFailedOver, v1.EventRevoked, v1.EventSuspended} {
		e, ok := r.n.event(PartnerSI, reason)
		p.when(ok, "event %s: %s", reason, e.msg)
	}
	r.kept(ctx, PartnerSI, &p)
	return p
}

// kept counts the partner's admitted Subscriptions that are still there,
// and notes those that are not.
func (r *run) kept(ctx context.Context, partner string, p *problems) (kept int) {
	for _, sl := range r.sales {
		if sl.partner == partner && r.answers[sl.sub.Name] == nil {
			err := r.c.Get(ctx, client.ObjectKeyFromObject(sl.sub), &v1.Subscription{})
			p.when(err != nil, "Subscription %s/%s: %v", sl.sub.Namespace, sl.sub.Name, err)
			if err == nil {
				kept++
			}
		}
	}
	return kept
}
