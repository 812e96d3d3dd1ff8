package plugin

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

// Why is `why PARTNER`: each contract the partner lists, in its order of
// preference, and why it does or does not supply the partner at At.
type Why struct {
	metav1.TypeMeta `json:",inline"`
	At              metav1.Time `json:"at"`
	PartnerState    `json:",inline"`
	Suspended       bool          `json:"suspended,omitempty"`
	Contracts       []WhyContract `json:"contracts"`
}

// WhyContract is one listed contract's verdict.
type WhyContract struct {
	Name string `json:"name"`
	// Phase of the contract; absent when it does not exist.
	Phase v1.ContractPhase `json:"phase,omitempty"`
	// Reason is Supplies; NotNeeded (a contract listed earlier supplies);
	// or the operator's ContractNotFound, ContractMismatch, ContractPending
	// or ContractExpired.
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// Reasons of WhyContract besides the operator's.
const (
	ReasonSupplies  = "Supplies"
	ReasonNotNeeded = "NotNeeded"
)

func (a *app) whyCmd() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "why PARTNER",
		Short: "Each contract PARTNER lists, and why it does or does not supply it",
		Long: `The contracts PARTNER lists, in its order of preference, each with the
operator's verdict now: the one that supplies it (until when), and for the
others why not (not found, another region, its tier not covered, not yet
started, ended) or that it is not needed. Then the partner's next scheduled
change. Reads the Partner and the contracts it lists, nothing else.`,
		Example: `  # Why acme-systems is (not) entitled, and what comes next
  kubectl entitlements why acme-systems

  # With each contract's phase
  kubectl entitlements why acme-systems -o wide

  # The reason one contract is skipped, for a script
  kubectl entitlements why acme-systems -o jsonpath='{.contracts[?(@.name=="bytec-de")].reason}'`,
		Args:              args(1, 1, "one PARTNER"),
		ValidArgsFunction: a.completePartners,
		PreRunE:           func(*cobra.Command, []string) error { return out.check() },
		RunE: func(cmd *cobra.Command, argv []string) error {
			r, p, err := a.partner(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			cs, err := r.contracts(cmd.Context(), p.Spec.Contracts)
			if err != nil {
				return err
			}
			return out.print(a.out, why(p, cs, a.now()))
		},
	}
	out.addFlags(cmd)
	return cmd
}

func why(p *v1.Partner, contracts map[string]*v1.DistributorContract, now time.Time) *Why {
	y := &Why{TypeMeta: typeMeta("Why"), At: metav1.NewTime(now), PartnerState: decide(p, contracts, now), Suspended: p.Spec.Suspended}
	s := entitlement.SelectSupply(&p.Spec, contracts, now)
	skipped := map[string]entitlement.Skip{}
	for _, k := range s.Skipped {
		skipped[k.Contract] = k
	}
	chosen := false
	for _, n := range p.Spec.Contracts {
		c := WhyContract{Name: n}
		if dc := contracts[n]; dc != nil {
			c.Phase = entitlement.DecideContract(dc, now).Phase
		}
		switch k, ok := skipped[n]; {
		case n == s.Contract:
			c.Reason, chosen = ReasonSupplies, true
			c.Message = "supplies until " + stamp(s.Schedule.SupplyEndsAt())
			if s.Schedule.OpenEnded() {
				c.Message = "supplies, open-ended"
			}
		case chosen || !ok:
			c.Reason, c.Message = ReasonNotNeeded, "a contract listed earlier supplies"
		default:
			c.Reason, c.Message = k.Reason, k.Message
		}
		y.Contracts = append(y.Contracts, c)
	}
	return y
}

func (y *Why) DeepCopyObject() runtime.Object { return deepCopy(y) }

func (y *Why) refs() []ref { return []ref{partnerRef(y.Name)} }

func (y *Why) human(w io.Writer, o printers.PrintOptions) error {
	fmt.Fprintf(w, "partner %s (tier %s, region %s): %s", y.Name, y.Tier, y.Region, y.Phase)
	if y.Contract != "" {
		fmt.Fprintf(w, ", supplied by %s", y.Contract)
	}
	fmt.Fprintln(w)
	if y.Suspended {
		fmt.Fprintln(w, "spec.suspended is true: access revoked whatever the contracts")
	}
	var rows [][]string
	for i, c := range y.Contracts {
		rows = append(rows, []string{fmt.Sprint(i + 1), c.Name, c.Reason, c.Message, orDash(string(c.Phase))})
	}
	if err := printTable(w, o, []column{{"#", false}, {"Contract", false}, {"Reason", false}, {"Message", false}, {"Phase", true}}, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "next: %s\n", nextText(y.Next))
	return nil
}
