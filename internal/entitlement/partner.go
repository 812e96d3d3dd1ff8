package entitlement

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// NamespaceObservation is what the operator saw of one listed namespace.
type NamespaceObservation struct {
	// Name of the namespace.
	Name string
	// Exists: the namespace exists (in any state).
	Exists bool
	// Owner is the value of its partner label ("" when unlabelled).
	Owner string
	// Terminating: it is being deleted.
	Terminating bool
	// Used is how many Subscriptions its quota counts (0 without a quota).
	Used int64
	// Subscriptions is how many Subscription objects exist in it (from the
	// operator's Subscription cache; the quota's count can lag
	// behind, see NamespaceUsage).
	Subscriptions int64
	// UID of the namespace.
	UID types.UID
	// CreationToken and HandOverTo are the values of its annotations
	// v1.AnnotationCreationToken and v1.AnnotationHandOverTo.
	CreationToken, HandOverTo string
	// Labels and Annotations are the namespace's own (a namespace of the
	// partner's is patched only where they differ from the plan).
	Labels, Annotations map[string]string
	// Quota is the operator's ResourceQuota there.
	Quota QuotaObservation
	// Sales are its Subscriptions (for the requirements measurement; only
	// a namespace that is the partner's counts).
	Sales []Sale
	// Children: a RoleBinding or ResourceQuota the operator wrote for this
	// partner is in the namespace (found by the partner label, wherever
	// the namespace's own labels point).
	Children bool
	// Bound: the partner's RoleBinding is in the namespace.
	Bound bool
}

func (o NamespaceObservation) usage(granted bool) NamespaceUsage {
	u := NamespaceUsage{Charged: o.Used, Present: o.Subscriptions, Granted: granted, SpecHard: o.Quota.SpecHard, StatusHard: o.Quota.StatusHard}
	for _, s := range o.Sales {
		if s.Created.After(u.LastSale) {
			u.LastSale = s.Created
		}
	}
	return u
}

// RoleObservation is what the operator saw of the tier's ClusterRole.
type RoleObservation struct {
	Exists   bool
	Bindable bool
	// Rules are the role's rules (aggregated ones included).
	Rules []rbacv1.PolicyRule
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
	// Claims lists, for a listed namespace that does not exist, the other
	// partners that list it too: the one created first gets it.
	Claims map[string][]Claim
	// Strays are namespaces, neither listed nor labelled for the partner,
	// that hold a RoleBinding or ResourceQuota the operator wrote for it
	// (their namespace was relabelled): revoked there (sorted).
	Strays []string
	Now    time.Time
	// NewToken returns a one-time random token for a namespace the plan
	// creates (see v1.AnnotationCreationToken); injected like the clock.
	// Nil: a fixed one per namespace, for tests.
	NewToken func() string
	// Live: the quotas and Subscription counts were read from the API
	// server, not the cache (see PartnerPlan.ConfirmLive).
	Live bool
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
	// UID of the namespace when it is the partner's (recorded in status).
	UID types.UID
	// Adopted: it is the partner's, but the operator did not create it.
	Adopted bool
	// View is what the operator writes on the namespace for the partner's
	// own people to read and for the admission policies (see
	// partnerView); a view key it does not have is removed.
	View map[string]string
	// Labels are the namespace's labels: whose it is, its state, the
	// partner's type and specializations (namespaceLabels).
	Labels map[string]string
	// Metadata is the patch that makes an existing namespace show Labels
	// and View (empty when it does; unused for one to be created).
	Metadata MetadataPatch
	// Annotations of a namespace to be created: its view, the created-by
	// annotation and the creation token whose digest Record holds.
	Annotations map[string]string
	// Recount, when not zero, is the value of the quota's recount request
	// (see quotaWait).
	Recount time.Time
	// RevokeChildren: the namespace is not the partner's (Conflict) but
	// holds its RoleBinding or quota: delete the one, zero the other.
	RevokeChildren bool
	// SubscriptionsHard is the namespace's share of the subscription limit.
	SubscriptionsHard int64
	// ExtraQuota is the quota's limits besides Subscriptions: the tier's
	// namespaceQuota in a granted namespace; in one that is not, what its
	// quota holds (revoked means no new Subscriptions, not unlimited
	// compute).
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
	// Reconciling is set while the plan waits for something that comes by
	// itself (a quota count, a terminating namespace); Ready is False then.
	Reconciling *metav1.Condition
	// Strays are namespaces outside the partner's that hold its RoleBinding
	// or quota: revoke them there.
	Strays []string
	// Performance is the measurement against the tier's requirements (nil
	// while no contract supplies the partner).
	Performance *v1.Performance
	// Next is the next scheduled change (status.next), nil if none.
	Next *v1.NextChange
	// History is status.history with this plan's change, if any, in front.
	History []v1.HistoryEntry
	// ScheduledRevocation: the plan revokes the partner at the instant its
	// last status announced (status.next), not because of an edit or a
	// deletion (the revocations metric's label).
	ScheduledRevocation bool
	// AccessOnly: this pass only takes the partner's access away — its
	// RoleBindings and Subscription limits — and leaves everything else
	// (views, status, events) to the next pass (see accessFirst).
	AccessOnly bool
	// ViewLater: this pass revokes and leaves the namespaces' labels and
	// view to the next pass (see viewLater).
	ViewLater bool
	// ConfirmLive: a Strict spread planned from the cache adds room to a
	// namespace. The cache can lag what quota admission has already let in
	// elsewhere (kube-controller-manager's recount and the operator's
	// Subscription watch both trail a burst of creates), and room added
	// from a low count is a sale over the limit: plan again from the API
	// server's quotas and Subscriptions before writing anything.
	ConfirmLive bool
	// Record is the status to write before any write of the plan's, when
	// it creates namespaces: the old status with each of them recorded as
	// being created, with the digest of its token (nil when it creates
	// none). See CreationsToRecord.
	Record *v1.PartnerStatus
	Events []Event
	// RequeueAt is when the plan must be made again even if nothing
	// changes (a contract boundary); zero if never.
	RequeueAt time.Time
}

// OverLimit is how many Subscriptions an entitled partner holds beyond its
// limit (0 when within it, or not entitled). The API server's quota can
// admit more than the limit while kube-controller-manager's recount races
// admission (docs/architecture.md, "Quota undercount").
func (p PartnerPlan) OverLimit() int64 {
	if p.Phase != v1.PartnerEntitled || p.Used <= p.Hard {
		return 0
	}
	return p.Used - p.Hard
}

// ClusterRoleFor is the ClusterRole a tier entitlement binds.
func ClusterRoleFor(ent *v1.TierEntitlement) string {
	if ent.ClusterRole != "" {
		return ent.ClusterRole
	}
	return v1.DefaultClusterRole(ent.Tier)
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
	case hasSkip(plan.Supply.Skipped, v1.ReasonContractPending) && neverEntitled(&p.Status):
		plan.Phase = v1.PartnerPending
	default:
		// Revoked until granted again, also while a listed contract is
		// still to start (status.next says when).
		plan.Phase = v1.PartnerRevoked
	}

	var problems []problem
	if entitled {
		plan.Hard = int64(plan.Supply.Entitlement.Subscriptions)
		role := ClusterRoleFor(plan.Supply.Entitlement)
		obs := in.Roles[role]
		switch why := RoleProblem(role, obs); {
		case why != "":
			problems = append(problems, problem{v1.ReasonRoleNotBindable, why})
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
	var waiting []problem // reasons to be Reconciling
	var sales []Sale
	for i, n := range p.Spec.Namespaces {
		name := string(n)
		obs := in.Namespaces[name]
		np := NamespacePlan{Name: name}
		ours, why := true, ""
		if obs.Exists {
			ours, why = ownership(p, name, obs)
		}
		np.UID = recordUID(obs, ours)
		np.Adopted = ours && obs.Exists && adopted(p, name, obs)
		switch {
		case !ours:
			np.State, np.Message, np.RevokeChildren = v1.NamespaceConflict, why, obs.Children
			problems = append(problems, problem{v1.ReasonNamespaceConflict, np.Message})
		case obs.Terminating:
			np.State = v1.NamespaceRevoked
			np.Message = fmt.Sprintf("namespace %s is being deleted; it will be recreated once gone if still entitled", name)
			waiting = append(waiting, problem{v1.ReasonNamespaceTerminating, "waiting for a terminating namespace to be gone"})
		case entitled && i < maxNS && !obs.Exists:
			if other := precedence(p, in.Claims[name]); other != "" {
				np.State = v1.NamespaceConflict
				np.Message = fmt.Sprintf("namespace %s is also listed by partner %s, which was created first and gets it", name, other)
				problems = append(problems, problem{v1.ReasonNamespaceConflict, np.Message})
				break
			}
			np.State, np.Manage, np.Create, np.Bind = v1.NamespacePending, true, true, plan.ClusterRole != ""
			np.ExtraQuota = plan.Supply.Entitlement.NamespaceQuota
			np.Message = "creating the namespace"
			waiting = append(waiting, problem{v1.ReasonCreatingNamespace, "creating namespace " + name})
			usage[i] = obs.usage(true)
		case entitled && i < maxNS:
			np.State, np.Manage = v1.NamespaceGranted, true
			np.Bind = plan.ClusterRole != ""
			if !np.Bind {
				np.Message = "granted without access: no RoleBinding until the ClusterRole can be bound (see condition Stalled)"
			}
			np.ExtraQuota = plan.Supply.Entitlement.NamespaceQuota
			recount, at, msg := quotaWait(obs.Quota, in.Now)
			np.Recount = recount
			if msg != "" {
				np.State, np.Message = v1.NamespacePending, msg
				waiting = append(waiting, problem{v1.ReasonQuotaNotCounted, "namespace " + name + ": " + msg})
				plan.RequeueAt = earliest(plan.RequeueAt, at)
			}
			usage[i] = obs.usage(true)
		case entitled:
			np.State, np.Manage = v1.NamespaceOverLimit, obs.Exists
			np.ExtraQuota = obs.Quota.Extra
			np.Message = fmt.Sprintf("tier %s through contract %s grants %d namespace(s); %s is not granted", p.Spec.Tier, plan.Supply.Contract, maxNS, name)
			usage[i] = obs.usage(false)
		default:
			np.State, np.Manage = v1.NamespaceRevoked, obs.Exists
			np.ExtraQuota = obs.Quota.Extra
			if !obs.Exists {
				np.Message = MessageNotCreated
			}
			usage[i] = obs.usage(false)
		}
		np.Used = usage[i].Used()
		if ours {
			sales = append(sales, obs.Sales...)
		}
		plan.Namespaces = append(plan.Namespaces, np)
	}
	// Namespaces the partner no longer lists keep their Subscriptions, and
	// those still count against its limit: dropping a namespace from the
	// list must not be a way to sell more.
	plan.Strays = slices.Clone(in.Strays)
	foreign := 0
	for _, name := range in.Unlisted {
		obs := in.Namespaces[name]
		if ours, why := ownership(p, name, obs); !ours {
			// Labelled for the partner by someone else: not its namespace.
			// Anyone who may label namespaces can label many: the status
			// lists a few, the others only lose what the operator wrote
			// there for the partner.
			if foreign++; foreign > MaxForeignNamespaces {
				if obs.Children {
					plan.Strays = append(plan.Strays, name)
				}
				continue
			}
			plan.Namespaces = append(plan.Namespaces, NamespacePlan{Name: name, State: v1.NamespaceConflict, Message: why, RevokeChildren: obs.Children})
			usage = append(usage, NamespaceUsage{})
			continue
		}
		u := obs.usage(false)
		usage = append(usage, u)
		sales = append(sales, obs.Sales...)
		plan.Namespaces = append(plan.Namespaces, NamespacePlan{
			Name: name, State: v1.NamespaceRevoked, Manage: !obs.Terminating, Used: u.Used(), UID: obs.UID,
			ExtraQuota: obs.Quota.Extra,
			Message:    "no longer listed in spec.namespaces: access revoked, content kept; remove the label " + v1.LabelPartner + " to release it",
		})
	}
	if extra := foreign - MaxForeignNamespaces; extra > 0 {
		i := slices.IndexFunc(plan.Namespaces, func(n NamespacePlan) bool {
			return n.State == v1.NamespaceConflict && !slices.Contains(p.Spec.Namespaces, v1.NamespaceName(n.Name))
		})
		plan.Namespaces[i].Message += fmt.Sprintf(" (and %d more namespaces labelled for the partner that are not its own)", extra)
	}
	slices.Sort(plan.Strays)
	var successor *v1.TierEntitlement
	if c := in.Contracts[plan.Successor]; c != nil {
		successor = EntitlementFor(c, p.Spec.Tier)
	}
	view := partnerView(p, plan, successor)
	for i := range plan.Namespaces {
		np := &plan.Namespaces[i]
		if !np.Manage {
			continue
		}
		np.View, np.Labels = view, namespaceLabels(&p.Spec, p.Name, np.State)
		if np.Create {
			continue
		}
		obs := in.Namespaces[np.Name]
		rec, _ := recordOf(p, np.Name)
		// The consent to a hand-over is used once: removed once the
		// namespace is recorded as the partner's, which this pass's status
		// write does; the next pass removes it.
		consume := obs.HandOverTo == p.Name && rec.UID != "" && rec.UID == obs.UID
		if obs.HandOverTo == p.Name && !consume {
			plan.RequeueAt = earliest(plan.RequeueAt, in.Now.Add(HandOverConsumeAfter))
		}
		np.Metadata = metadataPatch(obs.Labels, obs.Annotations, np.Labels, np.View, consume)
	}
	spread, strict := SpreadQuota, entitled && plan.Supply.Entitlement.QuotaPolicy == v1.QuotaStrict
	if strict {
		spread = SpreadQuotaStrict
	}
	hard := spread(plan.Hard, usage)
	for i := range plan.Namespaces {
		plan.Namespaces[i].SubscriptionsHard = hard[i]
		plan.Used += plan.Namespaces[i].Used
	}
	plan.ConfirmLive = strict && !in.Live && addsRoom(usage, hard)

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
	var measured *Measurement
	if plan.Supply.Entitled() {
		m := Measure(&p.Spec, in.Contracts[plan.Supply.Contract], plan.Supply.Entitlement, sales, in.Now)
		plan.Performance, measured = m.Performance, &m
		plan.Conditions = append(plan.Conditions, m.Condition)
		plan.RequeueAt = earliest(plan.RequeueAt, m.ChangesAt)
	} else {
		plan.Remove = append(plan.Remove, v1.ConditionRequirementsMet)
	}
	if len(problems) > 0 {
		c := stalledCondition(problems)
		plan.Stalled = &c
		plan.Conditions = append(plan.Conditions, c)
	} else {
		plan.Remove = append(plan.Remove, v1.ConditionStalled)
	}
	if len(waiting) > 0 {
		c := metav1.Condition{Type: v1.ConditionReconciling, Status: metav1.ConditionTrue,
			Reason: waiting[0].reason, Message: joinMessages(waiting)}
		plan.Reconciling = &c
		plan.Conditions = append(plan.Conditions, c)
	} else {
		plan.Remove = append(plan.Remove, v1.ConditionReconciling)
	}
	plan.Events = partnerEvents(p, plan, problems)
	plan.ScheduledRevocation = ScheduledRevocation(&p.Status, in.Now)
	if measured != nil {
		if e, ok := requirementsEvent(p.Status.Conditions, measured.Condition); ok {
			plan.Events = append(plan.Events, e)
		}
	}
	plan.Next = NextChange(&p.Spec, in.Contracts, plan.Supply, in.Now)
	plan.History = History(p, plan, in.Now)
	plan.Record = recordCreations(p, &plan, in.NewToken)
	plan.AccessOnly = accessFirst(p, &plan, in)
	plan.ViewLater = viewLater(p, &plan)
	return plan
}

// A partner revoked at a contract's end takes its access away in a pass
// of its own (accessFirst) when its pass runs between AccessFirstLate and
// AccessFirstWindow after the end. A pass within AccessFirstLate of the
// end has no queue in front of it: splitting it would only add a pass and
// repeat the quota write on a cache that has not seen the first.
const (
	AccessFirstLate   = 50 * time.Millisecond
	AccessFirstWindow = 30 * time.Second
)

// accessFirst decides whether a pass only takes access away: the
// revocation the partner's status announced for a contract's end, in
// the window after it, while the partner's RoleBinding or a Subscription
// limit above the plan's is still observed, and only when the pass runs
// late: behind a queue of other partners' passes. Selling stops at that
// instant at admission (the contract-end policy); its people's other
// access — reading their namespace — goes with the RoleBinding. When
// thousands of partners change at one instant, each revoked one's
// RoleBinding and quota then go in one short pass at the boundary's
// priority, before any partner's view and status (the dearest writes) in
// the passes that follow; a failover has no access to take away and waits
// behind them (NextPass). Decided from what is observed and the time, so
// the next pass, which finds the access gone, writes the rest; a cache
// that has not caught up repeats the idempotent writes, at most for the
// window.
func accessFirst(p *v1.Partner, plan *PartnerPlan, in PartnerInput) bool {
	end := p.Status.EntitledUntil
	if !plan.ScheduledRevocation || plan.Phase != v1.PartnerRevoked || p.Status.Phase != v1.PartnerEntitled ||
		end == nil || in.Now.Before(end.Add(AccessFirstLate)) || !in.Now.Before(end.Add(AccessFirstWindow)) {
		return false
	}
	for _, np := range plan.Namespaces {
		obs := in.Namespaces[np.Name]
		if np.Manage && (obs.Bound || obs.Quota.SpecHard > np.SubscriptionsHard) {
			return true
		}
	}
	return false
}

// viewLater decides whether a pass leaves the namespaces' labels and view
// for the next one: a revocation's, which grants nothing for the view to
// guard (its access goes, the contract-end policy and a Subscription limit
// of 0 refuse meanwhile), so that its status comes first — at a mass
// expiry the status of every partner before any namespace's view. Never a
// pass that grants: there the view comes first (Steps).
func viewLater(p *v1.Partner, plan *PartnerPlan) bool {
	return !plan.AccessOnly && p.Status.Phase == v1.PartnerEntitled &&
		(plan.Phase == v1.PartnerRevoked || plan.Phase == v1.PartnerSuspended)
}

// HandOverConsumeAfter is when a partner that adopted a namespace is
// decided again to remove the consumed hand-over annotation.
const HandOverConsumeAfter = time.Second

// MaxForeignNamespaces is how many namespaces labelled for a partner that
// are not its own its status lists: anyone who may label namespaces can
// label thousands, and a status that grows with them would in the end be
// too large to write.
const MaxForeignNamespaces = 10

// neverEntitled reports whether the partner has not been granted since it
// was created (nor recorded as such): Pending, not Revoked, while a listed
// contract is still to start.
func neverEntitled(st *v1.PartnerStatus) bool {
	switch st.Phase {
	case "", v1.PartnerPending:
		return true
	case v1.PartnerSuspended:
		return !slices.ContainsFunc(st.History, func(h v1.HistoryEntry) bool { return h.Outcome != v1.HistorySuspended })
	}
	return false
}

// addsRoom reports whether a spread raises any namespace's limit above the
// one it has now (written or in force).
func addsRoom(usage []NamespaceUsage, hard []int64) bool {
	for i, u := range usage {
		if hard[i] > max(u.SpecHard, u.StatusHard) {
			return true
		}
	}
	return false
}
