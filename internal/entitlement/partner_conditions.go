// Conditions, events and messages of a partner plan.
package entitlement

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

type problem struct{ reason, message string }

// problemRank orders reasons by how much they block: the first one found
// becomes the Stalled reason.
var problemRank = []string{v1.ReasonRoleNotBindable, v1.ReasonNamespaceConflict, v1.ReasonContractNotFound, v1.ReasonContractMismatch}

func stalledCondition(problems []problem) metav1.Condition {
	reason := problems[0].reason
	for _, r := range problemRank {
		if hasProblem(problems, r) {
			reason = r
			break
		}
	}
	return metav1.Condition{Type: v1.ConditionStalled, Status: metav1.ConditionTrue, Reason: reason, Message: joinMessages(problems)}
}

// messageSeparator joins several problems in one condition message; no
// single problem's message contains it (oneMessage), so the message can be
// split back into its problems.
const messageSeparator = "; "

// oneMessage is a problem's message as it stands in a joined condition
// message.
func oneMessage(m string) string { return strings.ReplaceAll(m, messageSeparator, ", ") }

// maxConditionMessage is the longest condition message the API accepts.
const maxConditionMessage = 32768

// joinMessages joins the problems' messages, cut to what a condition
// message may hold.
func joinMessages(problems []problem) string {
	msgs := make([]string, 0, len(problems))
	for _, p := range problems {
		msgs = append(msgs, oneMessage(p.message))
	}
	return Truncate(strings.Join(msgs, messageSeparator), maxConditionMessage)
}

// Truncate shortens s to at most n bytes, cutting at a rune boundary and
// marking the cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func hasProblem(ps []problem, reason string) bool {
	for _, p := range ps {
		if p.reason == reason {
			return true
		}
	}
	return false
}

func hasSkip(skips []Skip, reason string) bool {
	for _, s := range skips {
		if s.Reason == reason {
			return true
		}
	}
	return false
}

func entitledCondition(p *v1.Partner, plan PartnerPlan) metav1.Condition {
	c := metav1.Condition{Type: v1.ConditionEntitled}
	s := plan.Supply
	switch {
	case p.Spec.Suspended:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1.ReasonSuspended, "spec.suspended is true: access revoked, namespaces and Subscriptions kept"
	case s.Entitled():
		c.Status, c.Reason = metav1.ConditionTrue, v1.ReasonSupplied
		c.Message = fmt.Sprintf("supplied by contract %s (%s)", s.Contract, s.Distributor)
		if end := s.Schedule.SupplyEndsAt(); !end.IsZero() {
			c.Message += " until " + formatTime(end)
		}
		if over := plan.OverLimit(); over > 0 {
			c.Message += "; " + overLimitMessage(plan)
		}
	case plan.Phase == v1.PartnerPending:
		c.Status, c.Reason = metav1.ConditionFalse, v1.ReasonContractPending
		c.Message = "no listed contract supplies the partner yet: " + describeSkips(s.Skipped)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, v1.ReasonNoActiveContract
		c.Message = "no listed contract supplies the partner: " + describeSkips(s.Skipped)
	}
	return c
}

func expiringCondition(p *v1.Partner, plan PartnerPlan) metav1.Condition {
	s := plan.Supply
	c := metav1.Condition{Type: v1.ConditionContractExpiring, Status: metav1.ConditionFalse, Reason: v1.ReasonNotExpiring}
	switch {
	case p.Spec.Suspended:
		c.Message = "the partner is suspended"
		return c
	case !s.Entitled():
		c.Message = "no contract supplies the partner"
		return c
	case s.Phase != v1.ContractExpiring && s.Phase != v1.ContractGrace:
		c.Message = "the supplying contract is not near its end"
		return c
	}
	c.Status = metav1.ConditionTrue
	c.Reason = v1.ReasonContractExpiring
	if s.Phase == v1.ContractGrace {
		c.Reason = v1.ReasonContractInGrace
	}
	then := "the partner will be revoked"
	if plan.Successor != "" {
		then = "the partner will fail over to " + plan.Successor
	}
	c.Message = fmt.Sprintf("contract %s ends at %s, entitlements until %s; then %s",
		s.Contract, formatTime(s.Schedule.EndsAt), formatTime(s.Schedule.SupplyEndsAt()), then)
	return c
}

// partnerEvents compares the plan with the partner's last status.
// overLimitMessage says that an entitled partner holds more Subscriptions
// than its limit.
func overLimitMessage(plan PartnerPlan) string {
	return fmt.Sprintf("holds %d Subscriptions, %d over its limit of %d (quota admission raced a recount by kube-controller-manager); no new ones until it is back under, none removed",
		plan.Used, plan.OverLimit(), plan.Hard)
}

func partnerEvents(p *v1.Partner, plan PartnerPlan, problems []problem) []Event {
	var evs []Event
	old := p.Status
	if plan.OverLimit() > 0 && (old.Phase != v1.PartnerEntitled || old.Subscriptions.Used <= old.Subscriptions.Hard) {
		evs = append(evs, Event{corev1.EventTypeWarning, v1.EventSubscriptionsOverLimit, overLimitMessage(plan)})
	}
	s := plan.Supply
	switch {
	case plan.Phase == v1.PartnerSuspended && old.Phase != v1.PartnerSuspended:
		evs = append(evs, Event{corev1.EventTypeWarning, v1.EventSuspended, "partner suspended: access revoked, namespaces and Subscriptions kept"})
	case plan.Phase == v1.PartnerEntitled && old.Phase == v1.PartnerEntitled && old.Contract != "" && old.Contract != s.Contract:
		evs = append(evs, Event{corev1.EventTypeNormal, v1.EventFailedOver,
			fmt.Sprintf("failed over from contract %s to %s (%s)", old.Contract, s.Contract, s.Distributor)})
	case plan.Phase == v1.PartnerEntitled && old.Phase != v1.PartnerEntitled:
		evs = append(evs, Event{corev1.EventTypeNormal, v1.EventGranted,
			fmt.Sprintf("entitled through contract %s (%s)", s.Contract, s.Distributor)})
	case (plan.Phase == v1.PartnerRevoked || plan.Phase == v1.PartnerPending) && (old.Phase == v1.PartnerEntitled || old.Phase == v1.PartnerSuspended):
		evs = append(evs, Event{corev1.EventTypeWarning, v1.EventRevoked,
			"entitlements revoked: " + describeSkips(s.Skipped) + "; namespaces and Subscriptions kept"})
	}
	oldState := map[string]v1.NamespaceState{}
	for _, n := range old.Namespaces {
		oldState[n.Name] = n.State
	}
	for _, n := range plan.Namespaces {
		if n.State == v1.NamespaceConflict && oldState[n.Name] != v1.NamespaceConflict {
			evs = append(evs, Event{corev1.EventTypeWarning, v1.EventNamespaceConflict, n.Message})
		}
	}
	// One event per problem when it first appears: a problem already named
	// in the last Stalled message is not announced again because another
	// one came or went.
	announced := map[string]bool{}
	if c := findCondition(old.Conditions, v1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		for _, m := range strings.Split(c.Message, messageSeparator) {
			announced[m] = true
		}
	}
	for _, pr := range problems {
		if pr.reason == v1.ReasonNamespaceConflict || announced[oneMessage(pr.message)] {
			continue // conflicts have their per-namespace event above
		}
		evs = append(evs, Event{corev1.EventTypeWarning, pr.reason, oneMessage(pr.message)})
	}
	return evs
}

func findCondition(cs []metav1.Condition, t string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}
