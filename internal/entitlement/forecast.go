package entitlement

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// maxForecastPartners bounds the partners a forecast lists by name.
const maxForecastPartners = 100

// Forecast is what the end of c's supply does to the partners it supplies
// now (supplied), with every contract as it is now (contracts, by name):
// each fails over to the contract SelectSupply chooses at that instant, or
// is revoked. Nil for an open-ended contract. The same function the
// Partner reconciler uses for status.next decides, so the forecast and
// what the operator then does agree.
func Forecast(c *v1.DistributorContract, supplied []v1.Partner, contracts map[string]*v1.DistributorContract) *v1.ContractForecast {
	end := ScheduleOf(&c.Spec).SupplyEndsAt()
	if end.IsZero() {
		return nil
	}
	f := &v1.ContractForecast{At: metav1.NewTime(end.UTC())}
	// Sorted by name through pointers: copying each Partner to sort was
	// most of a pass's allocation at 10,000 partners.
	sorted := make([]*v1.Partner, len(supplied))
	for i := range supplied {
		sorted[i] = &supplied[i]
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, p := range sorted {
		fp := v1.ForecastPartner{Name: p.Name, Outcome: v1.NextRevoke}
		if p.Spec.Suspended {
			continue // not supplied in effect; nothing changes for it
		}
		then := SelectSupply(&p.Spec, contracts, end).Contract
		if ChangeOutcome(c.Name, then) == v1.NextFailOver {
			fp.Outcome, fp.Contract = v1.NextFailOver, then
			f.FailOver++
		} else {
			f.Revoke++
			f.Subscriptions += p.Status.Subscriptions.Used
		}
		if len(f.Partners) < maxForecastPartners {
			f.Partners = append(f.Partners, fp)
		}
	}
	return f
}
