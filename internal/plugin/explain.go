package plugin

import (
	"fmt"
	"io"

	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

func (w *world) why(out io.Writer, name string) error {
	p, err := w.partner(name)
	if err != nil {
		return err
	}
	s := entitlement.SelectSupply(&p.Spec, w.contracts, w.now)
	skipped := map[string]entitlement.Skip{}
	for _, k := range s.Skipped {
		skipped[k.Contract] = k
	}
	fmt.Fprintf(out, "partner %s: tier %s, region %s, contracts in order of preference:\n", p.Name, p.Spec.Tier, p.Spec.Region)
	chosen := false
	for i, c := range p.Spec.Contracts {
		var why string
		switch {
		case c == s.Contract:
			why = fmt.Sprintf("SUPPLIES (phase %s, until %s)", s.Phase, stamp(s.Schedule.SupplyEndsAt()))
			chosen = true
		case chosen:
			why = "not needed: a contract listed earlier supplies"
		default:
			why = skipped[c].Reason + ": " + skipped[c].Message
		}
		fmt.Fprintf(out, "  %d. %s: %s\n", i+1, c, why)
	}
	if p.Spec.Suspended {
		fmt.Fprintln(out, "spec.suspended is true: access revoked whatever the contracts")
	}
	if n := entitlement.NextChange(&p.Spec, w.contracts, s, w.now); n != nil {
		fmt.Fprintf(out, "next: %s %s at %s\n", n.Outcome, n.Contract, stamp(n.At.Time))
	}
	return nil
}

func (w *world) history(out io.Writer, name, format string) error {
	p, err := w.partner(name)
	if err != nil {
		return err
	}
	if format != "table" {
		return emit(out, format, p.Status.History)
	}
	var rows [][]string
	for _, h := range p.Status.History {
		rows = append(rows, []string{stamp(h.Time.Time), string(h.Outcome), orDash(h.PreviousContract), orDash(h.Contract), h.Message})
	}
	return table(out, "TIME\tOUTCOME\tFROM\tTO\tMESSAGE", rows)
}
