package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

// ForecastRow is one partner in a forecast.
type ForecastRow struct {
	Partner string `json:"partner"`
	// Contract supplying it now, and Then at the forecast time.
	Contract string `json:"contract,omitempty"`
	Then     string `json:"then,omitempty"`
	// Outcome: Unchanged, FailOver, Revoke, Grant, or Suspended.
	Outcome string `json:"outcome"`
}

// Forecast is the forecast output.
type Forecast struct {
	At       metav1.Time   `json:"at"`
	Partners []ForecastRow `json:"partners"`
}

func (w *world) forecastTime(at string, in time.Duration, ends endFlags) (time.Time, error) {
	switch {
	case at != "" && in != 0:
		return time.Time{}, usageError{errors.New("--at and --in exclude each other")}
	case at != "":
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return time.Time{}, usageError{fmt.Errorf("--at: %w", err)}
		}
		return t.UTC(), nil
	case in != 0:
		return w.now.Add(in), nil
	}
	// The moment the last of the ended contracts stops supplying.
	var last time.Time
	for name, end := range ends {
		c := w.contracts[name]
		if c == nil {
			return time.Time{}, fmt.Errorf("--end: distributorcontracts.entitlements.partnerops.io %q not found", name)
		}
		c = withEnd(c, end)
		if t := entitlement.ScheduleOf(&c.Spec).SupplyEndsAt(); t.After(last) {
			last = t
		}
	}
	if last.IsZero() {
		return w.now, nil
	}
	return last, nil
}

func withEnd(c *v1.DistributorContract, end time.Time) *v1.DistributorContract {
	c = c.DeepCopy()
	t := metav1.NewTime(end)
	c.Spec.EndsAt = &t
	return c
}

// Outcomes computes every partner's outcome at `at` with the contracts'
// ends overridden by ends: the operator's own SelectSupply decides.
func (w *world) Outcomes(at time.Time, ends endFlags) (Forecast, error) {
	contracts := map[string]*v1.DistributorContract{}
	for n, c := range w.contracts {
		contracts[n] = c
	}
	for n, end := range ends {
		c := contracts[n]
		if c == nil {
			return Forecast{}, fmt.Errorf("--end: distributorcontracts.entitlements.partnerops.io %q not found", n)
		}
		contracts[n] = withEnd(c, end)
	}
	f := Forecast{At: metav1.NewTime(at)}
	for i := range w.partners {
		p := &w.partners[i]
		now := entitlement.SelectSupply(&p.Spec, w.contracts, w.now).Contract
		then := entitlement.SelectSupply(&p.Spec, contracts, at).Contract
		r := ForecastRow{Partner: p.Name, Contract: now, Then: then}
		switch o := entitlement.ChangeOutcome(now, then); {
		case p.Spec.Suspended:
			r.Outcome = "Suspended"
		case o == "":
			r.Outcome = "Unchanged"
		default:
			r.Outcome = string(o)
		}
		f.Partners = append(f.Partners, r)
	}
	return f, nil
}

func (w *world) forecast(out io.Writer, at time.Time, ends endFlags, format string) error {
	f, err := w.Outcomes(at, ends)
	if err != nil {
		return err
	}
	if format != "table" {
		return emit(out, format, f)
	}
	fmt.Fprintf(out, "at %s\n", stamp(at))
	var rows [][]string
	for _, r := range f.Partners {
		rows = append(rows, []string{r.Partner, orDash(r.Contract), r.Outcome, orDash(r.Then)})
	}
	return table(out, "PARTNER\tCONTRACT NOW\tOUTCOME\tCONTRACT THEN", rows)
}

// emit writes v as json or yaml.
func emit(out io.Writer, format string, v any) error {
	if format == "json" {
		return json.NewEncoder(out).Encode(v)
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}
