// Measuring a partner against its tier's requirements: the
// operator reports; the vendor decides whether to change the tier.
package entitlement

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Sale is one of a partner's Subscriptions, as the measurement sees it.
type Sale struct {
	Created time.Time
	Units   int64
}

// Measurement is a partner's performance, its condition, and when the
// measurement changes by itself (a Subscription leaving the period).
type Measurement struct {
	Performance *v1.Performance
	Condition   metav1.Condition
	// ChangesAt is when the oldest counted Subscription leaves the period;
	// zero if never.
	ChangesAt time.Time
}

// counted is what the sales count for within requirements' period.
func counted(sales []Sale, period *metav1.Duration, now time.Time) (subs int32, units int64, since time.Time, changesAt time.Time) {
	if period != nil {
		since = now.Add(-period.Duration)
	}
	for _, s := range sales {
		if !since.IsZero() && s.Created.Before(since) {
			continue
		}
		subs++
		units += s.Units
		if !since.IsZero() {
			changesAt = earliest(changesAt, s.Created.Add(period.Duration))
		}
	}
	return subs, units, since, changesAt
}

// shortfall of a partner with the given counts and specializations against
// req (nil when it meets them).
func shortfall(req *v1.TierRequirements, subs int32, units int64, specs int) *v1.Shortfall {
	if req == nil {
		return nil
	}
	s := v1.Shortfall{
		Subscriptions:   max(req.MinSubscriptions-subs, 0),
		Units:           max(req.MinUnits-units, 0),
		Specializations: max(req.Specializations-int32(specs), 0),
	}
	if s == (v1.Shortfall{}) {
		return nil
	}
	return &s
}

// Measure measures a partner supplied through contract c at tier ent
// against ent's requirements, and finds the highest tier of c it meets.
// Each tier's requirements are judged on their own period.
func Measure(spec *v1.PartnerSpec, c *v1.DistributorContract, ent *v1.TierEntitlement, sales []Sale, now time.Time) Measurement {
	var m Measurement
	req := ent.Requirements
	var period *metav1.Duration
	if req != nil {
		period = req.Period
	}
	subs, units, _, changesAt := counted(sales, period, now)
	perf := &v1.Performance{Subscriptions: subs, Units: units, Shortfall: shortfall(req, subs, units, len(spec.Specializations))}
	perf.MeetsRequirements = perf.Shortfall == nil
	m.ChangesAt = changesAt
	for _, t := range slices.Backward(v1.Tiers) {
		e := EntitlementFor(c, t)
		if e == nil {
			continue
		}
		var p *metav1.Duration
		if e.Requirements != nil {
			p = e.Requirements.Period
		}
		s, u, _, at := counted(sales, p, now)
		m.ChangesAt = earliest(m.ChangesAt, at)
		if shortfall(e.Requirements, s, u, len(spec.Specializations)) == nil {
			perf.QualifiesFor = t
			break
		}
	}
	m.Performance = perf
	m.Condition = requirementsCondition(spec, c.Name, ent, perf)
	return m
}

func requirementsCondition(spec *v1.PartnerSpec, contract string, ent *v1.TierEntitlement, perf *v1.Performance) metav1.Condition {
	c := metav1.Condition{Type: v1.ConditionRequirementsMet, Status: metav1.ConditionTrue}
	qualifies := ""
	if perf.QualifiesFor != "" && perf.QualifiesFor != spec.Tier {
		qualifies = fmt.Sprintf("; qualifies for tier %s", perf.QualifiesFor)
	}
	switch {
	case ent.Requirements == nil:
		c.Reason = v1.ReasonNoRequirements
		c.Message = fmt.Sprintf("tier %s has no requirements on contract %s%s", spec.Tier, contract, qualifies)
	case perf.MeetsRequirements:
		c.Reason = v1.ReasonRequirementsMet
		c.Message = fmt.Sprintf("meets tier %s's requirements on contract %s (%s)%s", spec.Tier, contract, describeCounts(ent.Requirements, perf), qualifies)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, v1.ReasonBelowRequirements
		c.Message = fmt.Sprintf("below tier %s's requirements on contract %s: short by %s (%s)%s", spec.Tier, contract,
			describeShortfall(perf.Shortfall), describeCounts(ent.Requirements, perf), qualifies)
	}
	return c
}

func describeShortfall(s *v1.Shortfall) string {
	var parts []string
	if s.Subscriptions > 0 {
		parts = append(parts, plural(int64(s.Subscriptions), "Subscription"))
	}
	if s.Units > 0 {
		parts = append(parts, plural(s.Units, "unit"))
	}
	if s.Specializations > 0 {
		parts = append(parts, plural(int64(s.Specializations), "specialization"))
	}
	return strings.Join(parts, ", ")
}

func describeCounts(req *v1.TierRequirements, perf *v1.Performance) string {
	window := "held"
	if req.Period != nil {
		window = "created in the last " + req.Period.Duration.String()
	}
	return fmt.Sprintf("%s and %s %s", plural(int64(perf.Subscriptions), "Subscription"), plural(perf.Units, "unit"), window)
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// requirementsEvent announces a change of RequirementsMet (not its first
// setting to True: a new partner meeting requirements is no news).
func requirementsEvent(old []metav1.Condition, c metav1.Condition) (Event, bool) {
	prev := findCondition(old, v1.ConditionRequirementsMet)
	switch {
	case prev != nil && prev.Status == c.Status:
		return Event{}, false
	case c.Status == metav1.ConditionFalse:
		return Event{corev1.EventTypeWarning, v1.ReasonBelowRequirements, c.Message}, true
	case prev != nil:
		return Event{corev1.EventTypeNormal, v1.ReasonRequirementsMet, c.Message}, true
	}
	return Event{}, false
}
