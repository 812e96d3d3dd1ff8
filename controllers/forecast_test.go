package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// nextIs polls a partner's status.next.
func nextIs(name string, outcome v1.NextOutcome, contract string, at time.Time) func() error {
	return func() error {
		p := &v1.Partner{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, p); err != nil {
			return err
		}
		n := p.Status.Next
		if n == nil || n.Outcome != outcome || n.Contract != contract || !n.At.Time.Equal(at) {
			return fmt.Errorf("status.next %+v, want %s %q at %v", n, outcome, contract, at)
		}
		return nil
	}
}

// forecastIs polls a contract's status.forecast for one partner.
func forecastIs(contract, partner string, outcome v1.NextOutcome, then string, at time.Time) func() error {
	return func() error {
		c := &v1.DistributorContract{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: contract}, c); err != nil {
			return err
		}
		f := c.Status.Forecast
		if f == nil || !f.At.Time.Equal(at) {
			return fmt.Errorf("forecast %+v, want one at %v", f, at)
		}
		for _, p := range f.Partners {
			if p.Name == partner {
				if p.Outcome != outcome || p.Contract != then {
					return fmt.Errorf("forecast for %s: %s %q, want %s %q", partner, p.Outcome, p.Contract, outcome, then)
				}
				return nil
			}
		}
		return fmt.Errorf("forecast %+v does not list %s", f, partner)
	}
}

// TestNextMatchesWhatHappens: status.next says what the operator then does,
// for a revocation, a pending contract that starts, a contract edited to
// end earlier, and a partner edited to list another contract.
func TestNextMatchesWhatHappens(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	now := time.Now().UTC().Truncate(time.Second)
	endsLate := now.Add(time.Hour)
	ending := testenv.Contract("nx-ending", "Bytec", "DE", longAgo, endsLate, 2*time.Hour, 0, testenv.Tier(v1.TierReady, 3, 1))
	starts := now.Add(20 * time.Second)
	pending := testenv.Contract("nx-pending", "LXPN", "DE", starts, time.Time{}, 0, 0, testenv.Tier(v1.TierReady, 3, 1))
	spare := openContract("nx-spare", testenv.Tier(v1.TierReady, 3, 1))
	revoked := testenv.Partner("nx-revoked", v1.TierReady, "DE", []string{ending.Name}, "nx-revoked")
	granted := testenv.Partner("nx-granted", v1.TierReady, "DE", []string{pending.Name}, "nx-granted")
	create(t, ending, pending, spare, revoked, granted)

	eventually(t, 15*time.Second, "revoke scheduled at the end", nextIs(revoked.Name, v1.NextRevoke, "", endsLate))
	eventually(t, 15*time.Second, "the contract forecasts the revocation", forecastIs(ending.Name, revoked.Name, v1.NextRevoke, "", endsLate))
	eventually(t, 15*time.Second, "grant scheduled at the start", nextIs(granted.Name, v1.NextGrant, pending.Name, starts))

	// Listing another contract: the end becomes a failover.
	patchPartner(t, revoked.Name, func(p *v1.Partner) { p.Spec.Contracts = append(p.Spec.Contracts, spare.Name) })
	eventually(t, 15*time.Second, "failover scheduled once another contract is listed", nextIs(revoked.Name, v1.NextFailOver, spare.Name, endsLate))
	eventually(t, 15*time.Second, "the contract forecasts the failover", forecastIs(ending.Name, revoked.Name, v1.NextFailOver, spare.Name, endsLate))
	patchPartner(t, revoked.Name, func(p *v1.Partner) { p.Spec.Contracts = p.Spec.Contracts[:1] })

	// The contract edited to end earlier: the schedule moves, and then it happens.
	endsSoon := time.Now().UTC().Truncate(time.Second).Add(12 * time.Second)
	setEndsAt(t, ending.Name, endsSoon)
	eventually(t, 15*time.Second, "revoke rescheduled to the earlier end", nextIs(revoked.Name, v1.NextRevoke, "", endsSoon))
	eventually(t, 15*time.Second, "the forecast follows the earlier end", forecastIs(ending.Name, revoked.Name, v1.NextRevoke, "", endsSoon))
	eventually(t, 30*time.Second, "revoked at the end", partnerPhase(t, revoked.Name, v1.PartnerRevoked, ""))
	eventually(t, 45*time.Second, "granted at the start", partnerPhase(t, granted.Name, v1.PartnerEntitled, pending.Name))
	for _, name := range []string{revoked.Name, granted.Name} {
		if p := getPartner(t, name); p.Status.Next != nil {
			t.Errorf("%s after its change: want no next change, got %+v", name, *p.Status.Next)
		}
	}
	if h := getPartner(t, revoked.Name).Status.History; len(h) < 2 || h[0].Outcome != v1.HistoryRevoked || h[0].Time.Time.Before(endsSoon) {
		t.Errorf("history of %s: want Revoked (not before %v) in front, got %+v", revoked.Name, endsSoon, h)
	}
}
