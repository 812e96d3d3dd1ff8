// Package plugin is `kubectl entitlements`: it reads Partners and
// DistributorContracts with the user's kubeconfig and answers with the
// operator's own decisions (internal/entitlement), never a copy of its
// rules: what comes next, what a contract's end would do, why a partner is
// (not) supplied, what happened to it.
package plugin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

const usage = `kubectl entitlements: ask the entitlement operator's questions from the command line.

Usage:
  kubectl entitlements status                     contracts and partners, coming changes in time order
  kubectl entitlements forecast [flags]           every partner's outcome at a time, or if contracts ended at other times
  kubectl entitlements why PARTNER                each listed contract and why it does or does not supply PARTNER
  kubectl entitlements history PARTNER            PARTNER's recorded entitlement changes, newest first

Forecast flags:
  --at TIME            evaluate at TIME (RFC 3339)
  --in DURATION        evaluate DURATION from now (e.g. 720h)
  --end CONTRACT=TIME  assume CONTRACT ends at TIME (repeatable); without --at/--in,
                       evaluate when the last of them stops supplying
  -o table|json|yaml   output format (default table)

Global flags:
  --kubeconfig PATH    kubeconfig (default: $KUBECONFIG, ~/.kube/config)
  --context NAME       kubeconfig context

Examples:
  kubectl entitlements status
  kubectl entitlements forecast --end bytec-de=2026-12-31T23:59:59Z
  kubectl entitlements forecast --in 720h -o yaml
  kubectl entitlements why acme-systems
  kubectl entitlements history acme-systems
`

// Exit codes, as kubectl plugins use them.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Options carry what Run needs beyond its arguments (tests set them).
type Options struct {
	// Config, when set, is used instead of the kubeconfig.
	Config *rest.Config
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run runs the plugin with args (without the program name) and returns its
// exit code.
func Run(ctx context.Context, args []string, out, errOut io.Writer, o Options) int {
	if o.Now == nil {
		o.Now = time.Now
	}
	fs := flag.NewFlagSet("kubectl-entitlements", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kubeconfig := fs.String("kubeconfig", "", "")
	kubecontext := fs.String("context", "", "")
	at := fs.String("at", "", "")
	in := fs.Duration("in", 0, "")
	format := fs.String("o", "table", "")
	var ends endFlags
	fs.Var(&ends, "end", "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	// Flags may come after the subcommand: parse them all, keep positionals.
	var pos []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			fmt.Fprintf(errOut, "error: %v\n\n%s", err, usage)
			return ExitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *help || len(pos) == 0 {
		fmt.Fprint(out, usage)
		if *help {
			return ExitOK
		}
		return ExitUsage
	}
	if *format != "table" && *format != "json" && *format != "yaml" {
		fmt.Fprintf(errOut, "error: -o %q: want table, json or yaml\n", *format)
		return ExitUsage
	}
	cfg := o.Config
	if cfg == nil {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = *kubeconfig
		var err error
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: *kubecontext}).ClientConfig()
		if err != nil {
			fmt.Fprintf(errOut, "error: kubeconfig: %v\n", err)
			return ExitError
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		fmt.Fprintf(errOut, "error: %v\n", err)
		return ExitError
	}
	w := world{now: o.Now().UTC()}
	if err := w.read(ctx, c); err != nil {
		fmt.Fprintf(errOut, "error: %v\n", err)
		return ExitError
	}
	switch cmd := pos[0]; {
	case cmd == "status" && len(pos) == 1:
		err = w.status(out)
	case cmd == "forecast" && len(pos) == 1:
		var when time.Time
		if when, err = w.forecastTime(*at, *in, ends); err == nil {
			err = w.forecast(out, when, ends, *format)
		}
	case cmd == "why" && len(pos) == 2:
		err = w.why(out, pos[1])
	case cmd == "history" && len(pos) == 2:
		err = w.history(out, pos[1], *format)
	default:
		fmt.Fprintf(errOut, "error: unknown command or arguments %q\n\n%s", strings.Join(pos, " "), usage)
		return ExitUsage
	}
	if err != nil {
		fmt.Fprintf(errOut, "error: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

type usageError struct{ error }

// endFlags are --end CONTRACT=TIME.
type endFlags map[string]time.Time

func (e *endFlags) String() string { return "" }
func (e *endFlags) Set(v string) error {
	name, t, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("--end %q: want CONTRACT=TIME", v)
	}
	at, err := time.Parse(time.RFC3339, t)
	if err != nil {
		return fmt.Errorf("--end %q: %w", v, err)
	}
	if *e == nil {
		*e = endFlags{}
	}
	(*e)[name] = at.UTC()
	return nil
}

// world is the cluster as read once.
type world struct {
	now       time.Time
	contracts map[string]*v1.DistributorContract
	partners  []v1.Partner
}

func (w *world) read(ctx context.Context, c client.Client) error {
	cl, pl := &v1.DistributorContractList{}, &v1.PartnerList{}
	if err := c.List(ctx, cl); err != nil {
		return fmt.Errorf("listing DistributorContracts: %w", err)
	}
	if err := c.List(ctx, pl); err != nil {
		return fmt.Errorf("listing Partners: %w", err)
	}
	w.contracts = map[string]*v1.DistributorContract{}
	for i := range cl.Items {
		w.contracts[cl.Items[i].Name] = &cl.Items[i]
	}
	w.partners = pl.Items
	sort.Slice(w.partners, func(i, j int) bool { return w.partners[i].Name < w.partners[j].Name })
	return nil
}

func (w *world) partner(name string) (*v1.Partner, error) {
	for i := range w.partners {
		if w.partners[i].Name == name {
			return &w.partners[i], nil
		}
	}
	return nil, fmt.Errorf("partners.entitlements.partnerops.io %q not found", name)
}

func table(out io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (w *world) status(out io.Writer) error {
	var crow [][]string
	names := make([]string, 0, len(w.contracts))
	for n := range w.contracts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := w.contracts[n]
		d := entitlement.DecideContract(c, w.now)
		crow = append(crow, []string{n, c.Spec.Distributor, string(c.Spec.Region), string(d.Phase), stamp(d.NextTransitionAt), stamp(d.EntitledUntil)})
	}
	if err := table(out, "CONTRACT\tDISTRIBUTOR\tREGION\tPHASE\tNEXT TRANSITION\tSUPPLIES UNTIL", crow); err != nil {
		return err
	}
	fmt.Fprintln(out)
	type row struct {
		at  time.Time
		row []string
	}
	var rows []row
	for i := range w.partners {
		p := &w.partners[i]
		s := entitlement.SelectSupply(&p.Spec, w.contracts, w.now)
		phase := "Revoked"
		switch {
		case p.Spec.Suspended:
			phase = "Suspended"
		case s.Entitled():
			phase = "Entitled"
		}
		next := entitlement.NextChange(&p.Spec, w.contracts, s, w.now)
		r := row{row: []string{p.Name, string(p.Spec.Tier), phase, orDash(s.Contract), "-", "-", requirements(p.Status.Performance)}}
		if next != nil {
			r.at = next.At.Time
			r.row[4], r.row[5] = stamp(next.At.Time), string(next.Outcome)+" "+next.Contract
		}
		rows = append(rows, r)
	}
	// Coming changes first, in time order; then the rest by name.
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].at, rows[j].at
		switch {
		case a.IsZero() != b.IsZero():
			return !a.IsZero()
		default:
			return a.Before(b)
		}
	})
	var prow [][]string
	for _, r := range rows {
		prow = append(prow, r.row)
	}
	return table(out, "PARTNER\tTIER\tPHASE\tCONTRACT\tNEXT AT\tNEXT\tREQUIREMENTS", prow)
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
