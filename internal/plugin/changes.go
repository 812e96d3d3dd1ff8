package plugin

import (
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

// Diff is `diff`: what changing one set of manifests into another does to
// every partner, decided with the operator's own code.
type Diff struct {
	metav1.TypeMeta `json:",inline"`
	// At is when the change is applied (--at, default now).
	At metav1.Time `json:"at"`
	// Before and After name the two sets.
	Before  string      `json:"before"`
	After   string      `json:"after"`
	Summary DiffSummary `json:"summary"`
	// Contracts added, removed or modified, by name.
	Contracts []ContractChange `json:"contracts"`
	// Partners: every partner of either set, by name.
	Partners []PartnerDiff `json:"partners"`
}

// DiffSummary counts the partners by outcome.
type DiffSummary struct {
	Revoke      int `json:"revoke"`
	FailOver    int `json:"failOver"`
	Grant       int `json:"grant"`
	Rescheduled int `json:"rescheduled"`
	Unchanged   int `json:"unchanged"`
	// Subscriptions held by the partners revoked, as far as the cluster
	// says (absent when read from manifests only).
	Subscriptions *int32 `json:"subscriptions,omitempty"`
}

// ContractChange is a contract the change adds, removes or modifies, with
// its state at At without and with the change.
type ContractChange struct {
	Name   string         `json:"name"`
	Change string         `json:"change"`
	Before *ContractState `json:"before,omitempty"`
	After  *ContractState `json:"after,omitempty"`
}

// Changes of an object.
const (
	Added    = "Added"
	Removed  = "Removed"
	Modified = "Modified"
)

// Outcomes of a partner in a diff, besides v1.NextOutcome's Revoke,
// FailOver and Grant.
const (
	// Rescheduled: no supply changes, but the next scheduled change moves.
	Rescheduled = "Rescheduled"
	Unchanged   = "Unchanged"
)

// PartnerDiff is what the change does to one partner.
type PartnerDiff struct {
	Name string `json:"name"`
	// Change to the Partner object: Added, Removed or Modified; absent when
	// its spec is the same.
	Change string `json:"change,omitempty"`
	// Outcome is Revoke if an effect revokes it, else the first effect's
	// (FailOver or Grant); Rescheduled or Unchanged without effects.
	Outcome string `json:"outcome"`
	// At, From, To and Message describe that effect.
	At      *metav1.Time `json:"at,omitempty"`
	From    string       `json:"from,omitempty"`
	To      string       `json:"to,omitempty"`
	Message string       `json:"message,omitempty"`
	// Subscriptions the partner holds (the operator's last count), for a
	// Revoke when its status is known.
	Subscriptions *int32 `json:"subscriptions,omitempty"`
	// Effects: every change of supply the change makes, in time order.
	Effects []Effect `json:"effects,omitempty"`
	// Before and After are what the operator decides at At without and
	// with the change: its status.phase, status.contract and status.next.
	Before *PartnerState `json:"before,omitempty"`
	After  *PartnerState `json:"after,omitempty"`
}

// Effect is one change of a partner's supplying contract that happens with
// the change and not without it: at At the operator moves the partner from
// From to To ("" for none).
type Effect struct {
	At      metav1.Time    `json:"at"`
	Outcome v1.NextOutcome `json:"outcome"`
	From    string         `json:"from,omitempty"`
	To      string         `json:"to,omitempty"`
}

// maxChanges bounds the scheduled changes followed per partner and set.
const maxChanges = 256

// computeDiff decides every partner of before and after at each instant
// from `at` on at which either set changes its supply (NextChange, asked
// again from each), and reports the changes of supply after makes that
// before does not.
func computeDiff(before, after world, at time.Time) *Diff {
	d := &Diff{TypeMeta: typeMeta("Diff"), At: metav1.NewTime(at), Partners: []PartnerDiff{}}
	bs, as := byName(before.partners), byName(after.partners)
	names := make([]string, 0, len(bs)+len(as))
	for n := range bs {
		names = append(names, n)
	}
	for n := range as {
		if bs[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		pd := partnerDiff(bs[n], before.contracts, as[n], after.contracts, at)
		pd.Name = n
		d.Partners = append(d.Partners, pd)
		switch pd.Outcome {
		case string(v1.NextRevoke):
			d.Summary.Revoke++
			if pd.Subscriptions != nil {
				d.Summary.Subscriptions = ptr.To(ptr.Deref(d.Summary.Subscriptions, 0) + *pd.Subscriptions)
			}
		case string(v1.NextFailOver):
			d.Summary.FailOver++
		case string(v1.NextGrant):
			d.Summary.Grant++
		case Rescheduled:
			d.Summary.Rescheduled++
		default:
			d.Summary.Unchanged++
		}
	}
	d.Contracts = contractChanges(before, after, at, d.Partners)
	return d
}

func partnerDiff(pb *v1.Partner, before map[string]*v1.DistributorContract, pa *v1.Partner, after map[string]*v1.DistributorContract, at time.Time) PartnerDiff {
	d := PartnerDiff{Change: change(pb, pa, func() bool {
		return equality.Semantic.DeepEqual(partnerDefaults(pb.Spec), partnerDefaults(pa.Spec))
	})}
	if pb != nil {
		s := decide(pb, before, at)
		d.Before = &s
	}
	if pa != nil {
		s := decide(pa, after, at)
		d.After = &s
	}
	instants := append(append([]time.Time{at}, changes(pb, before, at)...), changes(pa, after, at)...)
	sort.Slice(instants, func(i, j int) bool { return instants[i].Before(instants[j]) })
	// The walk: prev is the supply the operator has just before t with the
	// change applied, starting from what it has without it.
	prev := supply(pb, before, at)
	for i, t := range instants {
		if i > 0 && t.Equal(instants[i-1]) {
			continue
		}
		now, without := supply(pa, after, t), supply(pb, before, t)
		if now != prev && now != without {
			d.Effects = append(d.Effects, Effect{At: metav1.NewTime(t), Outcome: entitlement.ChangeOutcome(prev, now), From: prev, To: now})
		}
		prev = now
	}
	var head *Effect
	for i := range d.Effects {
		if e := &d.Effects[i]; head == nil || (e.Outcome == v1.NextRevoke && head.Outcome != v1.NextRevoke) {
			head = e
		}
	}
	switch {
	case head != nil:
		d.Outcome, d.At, d.From, d.To = string(head.Outcome), &head.At, head.From, head.To
		d.Message = reasons(pa, after, head.At.Time)
	case d.Before != nil && d.After != nil && !equality.Semantic.DeepEqual(d.Before.Next, d.After.Next):
		d.Outcome = Rescheduled
	default:
		d.Outcome = Unchanged
	}
	if d.Outcome == string(v1.NextRevoke) {
		for _, p := range []*v1.Partner{pb, pa} {
			if p != nil && p.Status.Phase != "" {
				used := p.Status.Subscriptions.Used
				d.Subscriptions = &used
				break
			}
		}
	}
	return d
}

// supply is the contract the operator has p supplied by at t; "" for none,
// and for a partner suspended or absent.
func supply(p *v1.Partner, contracts map[string]*v1.DistributorContract, t time.Time) string {
	if p == nil || p.Spec.Suspended {
		return ""
	}
	return entitlement.SelectSupply(&p.Spec, contracts, t).Contract
}

// changes are the instants after `from` at which the operator changes p's
// supplying contract, with these contracts.
func changes(p *v1.Partner, contracts map[string]*v1.DistributorContract, from time.Time) []time.Time {
	if p == nil {
		return nil
	}
	var out []time.Time
	t := from
	for range maxChanges {
		n := entitlement.NextChange(&p.Spec, contracts, entitlement.SelectSupply(&p.Spec, contracts, t), t)
		if n == nil {
			break
		}
		t = n.At.Time
		out = append(out, t)
	}
	return out
}

// reasons say why p is supplied as it is at t: the operator's reasons for
// the contracts it lists before the one it chooses.
func reasons(p *v1.Partner, contracts map[string]*v1.DistributorContract, t time.Time) string {
	switch {
	case p == nil:
		return "the Partner is removed (its namespaces are kept)"
	case p.Spec.Suspended:
		return "spec.suspended is true"
	}
	var msgs []string
	for _, k := range entitlement.SelectSupply(&p.Spec, contracts, t).Skipped {
		msgs = append(msgs, k.Message)
	}
	return strings.Join(msgs, "; ")
}

func byName(ps []v1.Partner) map[string]*v1.Partner {
	m := make(map[string]*v1.Partner, len(ps))
	for i := range ps {
		m[ps[i].Name] = &ps[i]
	}
	return m
}

// contractChanges are the contracts added, removed or modified, with their
// state at `at` in each set.
func contractChanges(before, after world, at time.Time, partners []PartnerDiff) []ContractChange {
	nb, na := map[string]int{}, map[string]int{}
	for _, p := range partners {
		if p.Before != nil {
			nb[p.Before.Contract]++
		}
		if p.After != nil {
			na[p.After.Contract]++
		}
	}
	names := append(before.contractNames(), after.contractNames()...)
	sort.Strings(names)
	out := []ContractChange{}
	for i, n := range names {
		if i > 0 && names[i-1] == n {
			continue
		}
		b, a := before.contracts[n], after.contracts[n]
		c := ContractChange{Name: n, Change: change(b, a, func() bool {
			return equality.Semantic.DeepEqual(contractDefaults(b.Spec), contractDefaults(a.Spec))
		})}
		if c.Change == "" {
			continue
		}
		if b != nil {
			s := contractState(b, at, nb[n])
			c.Before = &s
		}
		if a != nil {
			s := contractState(a, at, na[n])
			c.After = &s
		}
		out = append(out, c)
	}
	return out
}

// change names what happens to an object: Added, Removed, Modified, or ""
// when same says the two are equal.
func change[T any](before, after *T, same func() bool) string {
	switch {
	case before == nil:
		return Added
	case after == nil:
		return Removed
	case !same():
		return Modified
	}
	return ""
}

// partnerDefaults and contractDefaults fill in what the API server
// defaults (the +kubebuilder:default markers), so that a live object and
// its manifest compare equal. Decisions need neither: ScheduleOf reads an
// absent notice or grace period as these defaults.
func partnerDefaults(s v1.PartnerSpec) v1.PartnerSpec {
	if s.Type == "" {
		s.Type = v1.PartnerReseller
	}
	if s.DeletionPolicy == "" {
		s.DeletionPolicy = v1.DeletionRetain
	}
	return s
}

func contractDefaults(s v1.DistributorContractSpec) v1.DistributorContractSpec {
	if s.NoticePeriod == nil {
		s.NoticePeriod = &metav1.Duration{Duration: entitlement.DefaultNoticePeriod}
	}
	if s.GracePeriod == nil {
		s.GracePeriod = &metav1.Duration{}
	}
	ents := make([]v1.TierEntitlement, len(s.Entitlements))
	for i, e := range s.Entitlements {
		if e.MaxNamespaces == 0 {
			e.MaxNamespaces = 1
		}
		if e.QuotaPolicy == "" {
			e.QuotaPolicy = v1.QuotaShared
		}
		ents[i] = e
	}
	s.Entitlements = ents
	return s
}
