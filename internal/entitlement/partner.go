package entitlement

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// NamespaceObservation is what the operator saw of one listed namespace.
type NamespaceObservation struct {
	// Exists: the namespace exists (in any state).
	Exists bool
	// Owner is the value of its partner label ("" when unlabelled).
	Owner string
	// Terminating: it is being deleted.
	Terminating bool
	// Used is how many Subscriptions its quota counts (0 without a quota).
	Used int64
	// Subscriptions is how many Subscription objects exist in it (from the
	// operator's metadata-only Subscription cache; the quota's count can lag
	// behind, see NamespaceUsage).
	Subscriptions int64
}

func (o NamespaceObservation) usage(granted bool) NamespaceUsage {
	return NamespaceUsage{Charged: o.Used, Present: o.Subscriptions, Granted: granted}
}

// RoleObservation is what the operator saw of the tier's ClusterRole.
type RoleObservation struct {
	Exists   bool
	Bindable bool
	// Forbidden is the API server's refusal of the last binding attempt
	// (the operator may not bind this role), if any.
	Forbidden string
}

// PartnerInput is everything a partner's plan depends on.
type PartnerInput struct {
	Partner   *v1.Partner
	Contracts map[string]*v1.DistributorContract
	// Namespaces maps each listed namespace to what was observed.
	Namespaces map[string]NamespaceObservation
	// Unlisted are namespaces labelled for this partner that spec.namespaces
	// no longer lists (sorted): they are revoked and kept, never deleted.
	Unlisted []string
	// Roles maps ClusterRole names to what was observed.
	Roles map[string]RoleObservation
	Now   time.Time
}

// NamespacePlan is what to do with one listed namespace.
type NamespacePlan struct {
	Name  string
	State v1.NamespaceState
	// Create: the namespace does not exist and must be created.
	Create bool
	// Manage: the namespace is (or will be) the partner's: keep its labels,
	// RoleBinding and quota as planned. False for a Conflict or a namespace
	// that is absent and not to be created, or that is terminating.
	Manage bool
	// Bind: the RoleBinding should exist (else it must not).
	Bind bool
	// SubscriptionsHard is the namespace's share of the subscription limit.
	SubscriptionsHard int64
	// ExtraQuota is the tier's namespaceQuota (granted namespaces only).
	ExtraQuota corev1.ResourceList
	Used       int64
	Message    string
}

// Event is an event to emit on the Partner.
type Event struct {
	Type    string // corev1.EventTypeNormal or EventTypeWarning
	Reason  string
	Message string
}

// PartnerPlan is the decided state of a partner.
type PartnerPlan struct {
	Phase  v1.PartnerPhase
	Supply Supply
	// Successor is where the partner fails over to when the supply ends.
	Successor string
	// ClusterRole to bind in granted namespaces ("" when none is bindable).
	ClusterRole string
	Namespaces  []NamespacePlan
	Used, Hard  int64
	// Conditions to set (Entitled, ContractExpiring; Stalled and Reconciling
	// when true). Ready is set by the reconciler after applying.
	Conditions []metav1.Condition
	// Remove lists condition types to remove (abnormal-true ones now false).
	Remove []string
	// Stalled is set when a problem only a user can fix blocks part of the
	// desired state.
	Stalled *metav1.Condition
	Events  []Event
	// RequeueAt is when the plan must be made again even if nothing
	// changes (a contract boundary); zero if never.
	RequeueAt time.Time
}

// ClusterRoleFor is the ClusterRole a tier entitlement binds.
func ClusterRoleFor(ent *v1.TierEntitlement) string {
	if ent.ClusterRole != "" {
		return ent.ClusterRole
	}
	return v1.DefaultClusterRolePrefix + strings.ToLower(string(ent.Tier))
}

// PlanPartner decides a partner's state and children.
func PlanPartner(in PartnerInput) PartnerPlan {
	p := in.Partner
	var plan PartnerPlan
	plan.Supply = SelectSupply(&p.Spec, in.Contracts, in.Now)
	plan.RequeueAt = plan.Supply.NextAt
	plan.Successor = Successor(&p.Spec, in.Contracts, plan.Supply)
	entitled := plan.Supply.Entitled() && !p.Spec.Suspended

	switch {
	case p.Spec.Suspended:
		plan.Phase = v1.PartnerSuspended
	case plan.Supply.Entitled():
		plan.Phase = v1.PartnerEntitled
	case hasSkip(plan.Supply.Skipped, v1.ReasonContractPending):
		plan.Phase = v1.PartnerPending
	default:
		plan.Phase = v1.PartnerRevoked
	}

	var problems []problem
	if entitled {
		plan.Hard = int64(plan.Supply.Entitlement.Subscriptions)
		role := ClusterRoleFor(plan.Supply.Entitlement)
		obs := in.Roles[role]
		switch {
		case !obs.Exists:
			problems = append(problems, problem{v1.ReasonRoleNotBindable, fmt.Sprintf("ClusterRole %s does not exist; create it labelled %s=true", role, v1.LabelBindable)})
		case !obs.Bindable:
			problems = append(problems, problem{v1.ReasonRoleNotBindable,
				fmt.Sprintf("ClusterRole %s is not labelled %s=true; the operator binds only such roles", role, v1.LabelBindable)})
		case obs.Forbidden != "":
			problems = append(problems, problem{v1.ReasonRoleNotBindable,
				fmt.Sprintf("the operator may not bind ClusterRole %s: %s", role, obs.Forbidden)})
		default:
			plan.ClusterRole = role
		}
	}

	maxNS := 0
	if entitled {
		maxNS = int(max(plan.Supply.Entitlement.MaxNamespaces, 1))
	}
	usage := make([]NamespaceUsage, len(p.Spec.Namespaces))
	terminating := false
	for i, n := range p.Spec.Namespaces {
		name := string(n)
		obs := in.Namespaces[name]
		np := NamespacePlan{Name: name}
		switch {
		case obs.Exists && obs.Owner != p.Name:
			np.State = v1.NamespaceConflict
			if obs.Owner == "" {
				np.Message = fmt.Sprintf("namespace %s exists and does not belong to partner %s; it is left untouched", name, p.Name)
			} else {
				np.Message = fmt.Sprintf("namespace %s belongs to partner %s; it is left untouched", name, obs.Owner)
			}
			problems = append(problems, problem{v1.ReasonNamespaceConflict, np.Message})
		case obs.Terminating:
			np.State = v1.NamespaceRevoked
			np.Message = fmt.Sprintf("namespace %s is being deleted; it will be recreated once gone if still entitled", name)
			terminating = true
		case entitled && i < maxNS:
			np.State, np.Manage, np.Create = v1.NamespaceGranted, true, !obs.Exists
			np.Bind = plan.ClusterRole != ""
			if !np.Bind {
				np.Message = "granted without access: no RoleBinding until the ClusterRole can be bound (see condition Stalled)"
			}
			np.ExtraQuota = plan.Supply.Entitlement.NamespaceQuota
			usage[i] = obs.usage(true)
		case entitled:
			np.State, np.Manage = v1.NamespaceOverLimit, obs.Exists
			np.Message = fmt.Sprintf("tier %s through contract %s grants %d namespace(s); %s is not granted", p.Spec.Tier, plan.Supply.Contract, maxNS, name)
			usage[i] = obs.usage(false)
		default:
			np.State, np.Manage = v1.NamespaceRevoked, obs.Exists
			if !obs.Exists {
				np.Message = "not created: the partner is not entitled"
			}
			usage[i] = obs.usage(false)
		}
		np.Used = usage[i].Used()
		plan.Namespaces = append(plan.Namespaces, np)
	}
	// Namespaces the partner no longer lists keep their Subscriptions, and
	// those still count against its limit: dropping a namespace from the
	// list must not be a way to sell more.
	for _, name := range in.Unlisted {
		obs := in.Namespaces[name]
		u := obs.usage(false)
		usage = append(usage, u)
		plan.Namespaces = append(plan.Namespaces, NamespacePlan{
			Name: name, State: v1.NamespaceRevoked, Manage: !obs.Terminating, Used: u.Used(),
			Message: "no longer listed in spec.namespaces: access revoked, content kept; remove the label " + v1.LabelPartner + " to release it",
		})
	}
	hard := SpreadQuota(plan.Hard, usage)
	for i := range plan.Namespaces {
		plan.Namespaces[i].SubscriptionsHard = hard[i]
		plan.Used += plan.Namespaces[i].Used
	}

	// Judged on the supply alone: suspending a partner does not turn a
	// skipped contract into a problem.
	if !plan.Supply.Entitled() {
		for _, s := range plan.Supply.Skipped {
			if s.Reason == v1.ReasonContractNotFound || s.Reason == v1.ReasonContractMismatch {
				problems = append(problems, problem{s.Reason, s.Message})
			}
		}
	}

	plan.Conditions = append(plan.Conditions, entitledCondition(p, plan), expiringCondition(p, plan))
	if len(problems) > 0 {
		c := stalledCondition(problems)
		plan.Stalled = &c
		plan.Conditions = append(plan.Conditions, c)
	} else {
		plan.Remove = append(plan.Remove, v1.ConditionStalled)
	}
	if terminating {
		plan.Conditions = append(plan.Conditions, metav1.Condition{Type: v1.ConditionReconciling, Status: metav1.ConditionTrue,
			Reason: v1.ReasonNamespaceTerminating, Message: "waiting for a terminating namespace to be gone"})
	} else {
		plan.Remove = append(plan.Remove, v1.ConditionReconciling)
	}
	plan.Events = partnerEvents(p, plan, problems)
	return plan
}

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
	msgs := make([]string, 0, len(problems))
	for _, p := range problems {
		msgs = append(msgs, p.message)
	}
	return metav1.Condition{Type: v1.ConditionStalled, Status: metav1.ConditionTrue, Reason: reason, Message: strings.Join(msgs, "; ")}
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
func partnerEvents(p *v1.Partner, plan PartnerPlan, problems []problem) []Event {
	var evs []Event
	old := p.Status
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
	oldStalled := ""
	if c := findCondition(old.Conditions, v1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		oldStalled = c.Message
	}
	for _, pr := range problems {
		if pr.reason == v1.ReasonNamespaceConflict || strings.Contains(oldStalled, pr.message) {
			continue // conflicts have their per-namespace event above
		}
		evs = append(evs, Event{corev1.EventTypeWarning, pr.reason, pr.message})
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
