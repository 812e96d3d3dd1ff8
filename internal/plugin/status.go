package plugin

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

// Status is `status`: every contract's phase and every partner's supply
// and next change, as the operator decides them at At.
type Status struct {
	metav1.TypeMeta `json:",inline"`
	At              metav1.Time     `json:"at"`
	Contracts       []ContractState `json:"contracts"`
	// Partners: coming changes first, in time order; then the rest by name.
	Partners []PartnerState `json:"partners"`
}

// ContractState is a contract as the operator decides it.
type ContractState struct {
	Name             string           `json:"name"`
	Distributor      string           `json:"distributor"`
	Region           v1.Region        `json:"region"`
	Phase            v1.ContractPhase `json:"phase"`
	NextTransitionAt *metav1.Time     `json:"nextTransitionAt,omitempty"`
	// SuppliesUntil is endsAt + gracePeriod; absent when open-ended.
	SuppliesUntil *metav1.Time `json:"suppliesUntil,omitempty"`
	// Partners it supplies at At.
	Partners int `json:"partners"`
}

// PartnerState is a partner as the operator decides it: what it writes
// into status.phase, status.contract and status.next.
type PartnerState struct {
	Name     string          `json:"name"`
	Tier     v1.Tier         `json:"tier"`
	Region   v1.Region       `json:"region"`
	Phase    v1.PartnerPhase `json:"phase"`
	Contract string          `json:"contract,omitempty"`
	Next     *v1.NextChange  `json:"next,omitempty"`
	// Subscriptions and Performance are the operator's last count and
	// measurement (status), absent when it has written none.
	Subscriptions *v1.SubscriptionUsage `json:"subscriptions,omitempty"`
	Performance   *v1.Performance       `json:"performance,omitempty"`
}

// decide is what the operator's reconcile decides for p at now: the plan
// of entitlement.PlanPartner.
func decide(p *v1.Partner, contracts map[string]*v1.DistributorContract, now time.Time) PartnerState {
	plan := entitlement.PlanPartner(entitlement.PartnerInput{Partner: p, Contracts: contracts, Now: now})
	s := PartnerState{Name: p.Name, Tier: p.Spec.Tier, Region: p.Spec.Region, Phase: plan.Phase, Next: plan.Next, Performance: p.Status.Performance}
	if plan.Phase == v1.PartnerEntitled {
		s.Contract = plan.Supply.Contract
	}
	if p.Status.Phase != "" {
		s.Subscriptions = &p.Status.Subscriptions
	}
	return s
}

// contractState is c as the operator decides it at now, supplying n
// partners.
func contractState(c *v1.DistributorContract, now time.Time, n int) ContractState {
	d := entitlement.DecideContract(c, now)
	return ContractState{
		Name: c.Name, Distributor: c.Spec.Distributor, Region: c.Spec.Region, Phase: d.Phase,
		NextTransitionAt: timePtr(d.NextTransitionAt), SuppliesUntil: timePtr(d.EntitledUntil), Partners: n,
	}
}

func (a *app) statusCmd() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Contracts and partners as the operator decides them now, coming changes first",
		Long: `Every DistributorContract's phase and every Partner's supplying contract and
next scheduled change, decided now with the operator's own code from the
specs as they are in the cluster. Partners with a coming change are listed
first, soonest first. Two lists (one page at a time), no other request.`,
		Example: `  # Who changes next, and what happens to them
  kubectl entitlements status

  # With each partner's region, subscriptions and performance
  kubectl entitlements status -o wide

  # The partners that will be revoked, for a script
  kubectl entitlements status -o jsonpath='{range .partners[?(@.next.outcome=="Revoke")]}{.name}{"\n"}{end}'`,
		Args:    args(0, 0, "no arguments"),
		PreRunE: func(*cobra.Command, []string) error { return out.check() },
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := a.world(cmd.Context())
			if err != nil {
				return err
			}
			return out.print(a.out, buildStatus(w, a.now()))
		},
	}
	out.addFlags(cmd)
	return cmd
}

func buildStatus(w world, now time.Time) *Status {
	s := &Status{TypeMeta: typeMeta("Status"), At: metav1.NewTime(now), Contracts: []ContractState{}, Partners: []PartnerState{}}
	supplied := map[string]int{}
	for i := range w.partners {
		ps := decide(&w.partners[i], w.contracts, now)
		supplied[ps.Contract]++
		s.Partners = append(s.Partners, ps)
	}
	for _, n := range w.contractNames() {
		s.Contracts = append(s.Contracts, contractState(w.contracts[n], now, supplied[n]))
	}
	sort.SliceStable(s.Partners, func(i, j int) bool {
		a, b := s.Partners[i].Next, s.Partners[j].Next
		if (a == nil) != (b == nil) {
			return a != nil
		}
		return a != nil && a.At.Before(&b.At)
	})
	return s
}

func (s *Status) DeepCopyObject() runtime.Object { return deepCopy(s) }

func (s *Status) refs() []ref {
	var out []ref
	for _, c := range s.Contracts {
		out = append(out, contractRef(c.Name))
	}
	for _, p := range s.Partners {
		out = append(out, partnerRef(p.Name))
	}
	return out
}

func (s *Status) human(w io.Writer, o printers.PrintOptions) error {
	var rows [][]string
	for _, c := range s.Contracts {
		rows = append(rows, []string{c.Name, c.Distributor, string(c.Region), string(c.Phase), stampPtr(c.NextTransitionAt), stampPtr(c.SuppliesUntil), fmt.Sprint(c.Partners)})
	}
	cols := []column{{"Contract", false}, {"Distributor", false}, {"Region", false}, {"Phase", false}, {"Next Transition", false}, {"Supplies Until", false}, {"Partners", true}}
	if err := printTable(w, o, cols, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	rows = nil
	for _, p := range s.Partners {
		subs := "-"
		if p.Subscriptions != nil {
			subs = fmt.Sprintf("%d/%d", p.Subscriptions.Used, p.Subscriptions.Hard)
		}
		rows = append(rows, []string{p.Name, string(p.Tier), string(p.Phase), orDash(p.Contract), nextText(p.Next), requirements(p.Performance), string(p.Region), subs})
	}
	cols = []column{{"Partner", false}, {"Tier", false}, {"Phase", false}, {"Contract", false}, {"Next", false}, {"Requirements", false}, {"Region", true}, {"Subscriptions", true}}
	return printTable(w, o, cols, rows)
}

// requirements is the operator's measurement of a partner against its
// tier (status.performance): "meets", "below: short …", and the higher tier
// it qualifies for, if any.
func requirements(perf *v1.Performance) string {
	if perf == nil {
		return "-"
	}
	s := "meets"
	if !perf.MeetsRequirements {
		var short []string
		if sh := perf.Shortfall; sh != nil {
			if sh.Subscriptions > 0 {
				short = append(short, fmt.Sprintf("%d subscriptions", sh.Subscriptions))
			}
			if sh.Units > 0 {
				short = append(short, fmt.Sprintf("%d units", sh.Units))
			}
			if sh.Specializations > 0 {
				short = append(short, fmt.Sprintf("%d specializations", sh.Specializations))
			}
		}
		s = "below: short " + strings.Join(short, ", ")
	}
	if perf.QualifiesFor != "" {
		s += "; qualifies for " + string(perf.QualifiesFor)
	}
	return s
}
