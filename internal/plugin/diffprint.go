package plugin

import (
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func (d *Diff) DeepCopyObject() runtime.Object { return deepCopy(d) }

// refs are the partners the change affects.
func (d *Diff) refs() []ref {
	var out []ref
	for _, p := range d.Partners {
		if p.Outcome != Unchanged {
			out = append(out, partnerRef(p.Name))
		}
	}
	return out
}

// summary is one line: how many partners each outcome has.
func (d *Diff) summary(bold func(string) string) string {
	s := d.Summary
	revoked := fmt.Sprintf("%d revoked", s.Revoke)
	if s.Subscriptions != nil {
		revoked += fmt.Sprintf(" (%d Subscriptions)", *s.Subscriptions)
	}
	if s.Revoke > 0 {
		revoked = bold(revoked)
	}
	return fmt.Sprintf("%s, %d fail over, %d granted, %d rescheduled, %d unchanged", revoked, s.FailOver, s.Grant, s.Rescheduled, s.Unchanged)
}

// rows are a table row for every effect of every affected partner, and one
// for each partner whose next change only moves.
func (d *Diff) rows(cell func(string) string) [][]string {
	var rows [][]string
	for _, p := range d.Partners {
		subs := "-"
		if p.Subscriptions != nil {
			subs = fmt.Sprint(*p.Subscriptions)
		}
		before, after := "-", "-"
		if p.Before != nil {
			before = nextText(p.Before.Next)
		}
		if p.After != nil {
			after = nextText(p.After.Next)
		}
		if p.Outcome == Rescheduled {
			rows = append(rows, []string{p.Name, cell(Rescheduled), "-", "-", "-", "-", "next " + after + ", was " + before, before, after})
		}
		for _, e := range p.Effects {
			msg := ""
			if e.At.Equal(p.At) && string(e.Outcome) == p.Outcome {
				msg = p.Message
			}
			rows = append(rows, []string{p.Name, cell(string(e.Outcome)), stamp(e.At.Time), orDash(e.From), orDash(e.To), subs, orDash(msg), before, after})
		}
	}
	return rows
}

func (d *Diff) human(w io.Writer, o printers.PrintOptions) error {
	fmt.Fprintf(w, "%s -> %s, applied at %s: %s\n", d.Before, d.After, stamp(d.At.Time), d.summary(func(s string) string { return s }))
	if len(d.Contracts) > 0 {
		fmt.Fprintln(w)
		if err := printTable(w, o, []column{{"Contract", false}, {"Change", false}, {"Phase", false}, {"Supplies Until", false}, {"Partners", false}}, d.contractRows()); err != nil {
			return err
		}
	}
	rows := d.rows(func(s string) string { return s })
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	cols := []column{{"Partner", false}, {"Outcome", false}, {"At", false}, {"From", false}, {"To", false}, {"Subscriptions", false}, {"Why", true}, {"Next Before", true}, {"Next After", true}}
	return printTable(w, o, cols, rows)
}

// contractRows show each changed contract's phase, end of supply and
// partners supplied, before -> after.
func (d *Diff) contractRows() [][]string {
	var rows [][]string
	for _, c := range d.Contracts {
		phase, until, partners := [2]string{"-", "-"}, [2]string{"-", "-"}, [2]string{"-", "-"}
		for i, s := range []*ContractState{c.Before, c.After} {
			if s != nil {
				phase[i], until[i], partners[i] = string(s.Phase), stampPtr(s.SuppliesUntil), fmt.Sprint(s.Partners)
			}
		}
		arrow := func(v [2]string) string {
			if v[0] == v[1] {
				return v[0]
			}
			return v[0] + " -> " + v[1]
		}
		rows = append(rows, []string{c.Name, c.Change, arrow(phase), arrow(until), arrow(partners)})
	}
	return rows
}

// markdown is the diff as a pull-request comment.
func (d *Diff) markdown(w io.Writer) error {
	bold := func(s string) string { return "**" + s + "**" }
	var b strings.Builder
	fmt.Fprintf(&b, "#### Entitlements: %s\n\n", d.summary(bold))
	fmt.Fprintf(&b, "`%s` → `%s`, applied at %s. Decided by `kubectl entitlements diff` with the operator's rules.\n", md(d.Before), md(d.After), stamp(d.At.Time))
	if len(d.Contracts) > 0 {
		b.WriteString("\n| Contract | Change | Phase | Supplies until | Partners |\n|---|---|---|---|---|\n")
		for _, r := range d.contractRows() {
			mdRow(&b, r)
		}
	}
	rows := d.rows(func(s string) string {
		if s == string(v1.NextRevoke) {
			return bold(s)
		}
		return s
	})
	if len(rows) == 0 {
		b.WriteString("\nNo partner's entitlement changes.\n")
	} else {
		b.WriteString("\n| Partner | Outcome | At | From | To | Subscriptions | Why |\n|---|---|---|---|---|---|---|\n")
		for _, r := range rows {
			mdRow(&b, r[:7])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdRow(b *strings.Builder, cells []string) {
	for i := range cells {
		cells[i] = md(cells[i])
	}
	fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
}

// md escapes what would break a table cell.
func md(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "`", "'").Replace(s)
}
