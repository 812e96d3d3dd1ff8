package plugin

import (
	"errors"
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

// Forecast is `forecast`: every partner's supplying contract now and at At,
// with the contracts' ends changed as --end says.
type Forecast struct {
	metav1.TypeMeta `json:",inline"`
	At              metav1.Time   `json:"at"`
	Partners        []ForecastRow `json:"partners"`
}

// ForecastRow is one partner in a forecast.
type ForecastRow struct {
	Partner string `json:"partner"`
	// Contract supplying it now, and Then at the forecast time.
	Contract string `json:"contract,omitempty"`
	Then     string `json:"then,omitempty"`
	// Outcome: Unchanged, FailOver, Revoke, Grant, or Suspended.
	Outcome string `json:"outcome"`
	// Subscriptions it holds (the operator's last count), for a Revoke.
	Subscriptions *int32 `json:"subscriptions,omitempty"`
}

func (a *app) forecastCmd() *cobra.Command {
	var (
		out  output
		at   string
		in   time.Duration
		ends = endFlags{}
	)
	cmd := &cobra.Command{
		Use:   "forecast [--at TIME | --in DURATION] [--end CONTRACT=TIME]...",
		Short: "Every partner's outcome at a time, or if contracts ended at other times",
		Long: `Which contract supplies every partner at a future time, decided with the
operator's own code: unchanged, failed over to another contract, granted or
revoked. --end CONTRACT=TIME asks what if CONTRACT ended at TIME instead
(nothing is changed in the cluster); without --at or --in the forecast is
for the moment the last of those contracts stops supplying.`,
		Example: `  # What ending bytec-de at the end of the year would do
  kubectl entitlements forecast --end bytec-de=2026-12-31T23:59:59Z

  # Everyone's contract 30 days from now
  kubectl entitlements forecast --in 720h

  # Only the partners that would be revoked
  kubectl entitlements forecast --end bytec-de=2026-12-31T23:59:59Z -o jsonpath='{.partners[?(@.outcome=="Revoke")].partner}'`,
		Args: args(0, 0, "no arguments; flags only"),
		PreRunE: func(*cobra.Command, []string) error {
			if at != "" && in != 0 {
				return usageError{errors.New("--at and --in exclude each other")}
			}
			return out.check()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := a.world(cmd.Context())
			if err != nil {
				return err
			}
			changed := map[string]*v1.DistributorContract{}
			for n, c := range w.contracts {
				changed[n] = c
			}
			for n, end := range ends {
				c := changed[n]
				if c == nil {
					return fmt.Errorf("--end: distributorcontracts.entitlements.partnerops.io %q not found", n)
				}
				c = c.DeepCopy()
				c.Spec.EndsAt = &metav1.Time{Time: end}
				changed[n] = c
			}
			now := a.now()
			when, err := forecastTime(now, at, in, ends, changed)
			if err != nil {
				return err
			}
			return out.print(a.out, forecast(w, changed, now, when))
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "Forecast for this time (RFC 3339).")
	cmd.Flags().DurationVar(&in, "in", 0, "Forecast for this long from now (e.g. 720h).")
	cmd.Flags().Var(ends, "end", "Assume CONTRACT ends at TIME (RFC 3339): CONTRACT=TIME, repeatable.")
	out.addFlags(cmd)
	return cmd
}

// forecastTime is --at, now + --in, or when the last of the contracts
// ended by --end stops supplying (now without any).
func forecastTime(now time.Time, at string, in time.Duration, ends endFlags, contracts map[string]*v1.DistributorContract) (time.Time, error) {
	switch {
	case at != "":
		return parseTime("--at", at)
	case in != 0:
		return now.Add(in), nil
	}
	last := now
	for n := range ends {
		if t := entitlement.ScheduleOf(&contracts[n].Spec).SupplyEndsAt(); t.After(last) {
			last = t
		}
	}
	return last, nil
}

// forecast decides every partner now with the contracts as they are, and
// at `at` with the changed ones: the operator's own SelectSupply decides.
func forecast(w world, changed map[string]*v1.DistributorContract, now, at time.Time) *Forecast {
	f := &Forecast{TypeMeta: typeMeta("Forecast"), At: metav1.NewTime(at), Partners: []ForecastRow{}}
	for i := range w.partners {
		p := &w.partners[i]
		before := entitlement.SelectSupply(&p.Spec, w.contracts, now).Contract
		then := entitlement.SelectSupply(&p.Spec, changed, at).Contract
		r := ForecastRow{Partner: p.Name, Contract: before, Then: then}
		switch o := entitlement.ChangeOutcome(before, then); {
		case p.Spec.Suspended:
			r.Outcome = "Suspended"
		case o == "":
			r.Outcome = "Unchanged"
		default:
			r.Outcome = string(o)
		}
		if r.Outcome == string(v1.NextRevoke) && p.Status.Phase != "" {
			r.Subscriptions = &p.Status.Subscriptions.Used
		}
		f.Partners = append(f.Partners, r)
	}
	return f
}

func (f *Forecast) DeepCopyObject() runtime.Object { return deepCopy(f) }

// refs are the partners whose supply changes.
func (f *Forecast) refs() []ref {
	var out []ref
	for _, r := range f.Partners {
		if r.Outcome != "Unchanged" && r.Outcome != "Suspended" {
			out = append(out, partnerRef(r.Partner))
		}
	}
	return out
}

func (f *Forecast) human(w io.Writer, o printers.PrintOptions) error {
	fmt.Fprintf(w, "at %s\n", stamp(f.At.Time))
	var rows [][]string
	for _, r := range f.Partners {
		subs := "-"
		if r.Subscriptions != nil {
			subs = fmt.Sprint(*r.Subscriptions)
		}
		rows = append(rows, []string{r.Partner, orDash(r.Contract), r.Outcome, orDash(r.Then), subs})
	}
	return printTable(w, o, []column{{"Partner", false}, {"Contract Now", false}, {"Outcome", false}, {"Contract Then", false}, {"Subscriptions", true}}, rows)
}

// endFlags are --end CONTRACT=TIME.
type endFlags map[string]time.Time

func (e endFlags) Type() string { return "CONTRACT=TIME" }
func (e endFlags) String() string {
	var s []string
	for n, t := range e {
		s = append(s, n+"="+stamp(t))
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}
func (e endFlags) Set(v string) error {
	name, t, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want CONTRACT=TIME", v)
	}
	at, err := parseTime("--end", t)
	if err != nil {
		return err
	}
	e[name] = at
	return nil
}

// parseTime reads an RFC 3339 flag value.
func parseTime(flag, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-12-31T23:59:59Z", flag, v)}
	}
	return t.UTC(), nil
}
