package plugin

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var (
	t0     = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	endA   = time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	startA = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// contractA ends at endA (or at end); contractB is open-ended.
func contractA(end time.Time) v1.DistributorContract {
	return *testenv.Contract("a", "A", "DE", startA, end, 720*time.Hour, 0, testenv.AllTiers(5, 1)...)
}

func contractB() v1.DistributorContract {
	return *testenv.Contract("b", "B", "DE", startA, time.Time{}, 720*time.Hour, 0, testenv.AllTiers(5, 1)...)
}

func partner(contracts ...string) v1.Partner {
	return *testenv.Partner("p", v1.TierReady, "DE", contracts, "p")
}

func TestComputeDiff(t *testing.T) {
	entitled := partner("a")
	entitled.Status = v1.PartnerStatus{Phase: v1.PartnerEntitled, Subscriptions: v1.SubscriptionUsage{Used: 7, Hard: 10}}
	suspended := partner("a", "b")
	suspended.Spec.Suspended = true
	defaulted := contractA(endA)
	defaulted.Spec.NoticePeriod, defaulted.Spec.GracePeriod = nil, nil // as in a manifest
	defaulted.Spec.Entitlements[0].MaxNamespaces = 0

	for _, tc := range []struct {
		name                 string
		before, after        world
		at                   time.Time
		outcome, change      string
		effectAt             time.Time
		from, to, message    string
		subscriptions        int32
		contractsChanged     int
		revoked, rescheduled int
	}{{
		name:    "an end moved later only reschedules the revocation",
		before:  newWorld([]v1.DistributorContract{contractA(endA)}, []v1.Partner{partner("a")}),
		after:   newWorld([]v1.DistributorContract{contractA(endA.AddDate(0, 1, 0))}, []v1.Partner{partner("a")}),
		outcome: Rescheduled, contractsChanged: 1, rescheduled: 1,
	}, {
		name:    "suspension revokes at once",
		before:  newWorld([]v1.DistributorContract{contractA(endA), contractB()}, []v1.Partner{partner("a", "b")}),
		after:   newWorld([]v1.DistributorContract{contractA(endA), contractB()}, []v1.Partner{suspended}),
		outcome: "Revoke", change: Modified, effectAt: t0, from: "a", message: "spec.suspended is true", revoked: 1,
	}, {
		name:    "a removed Partner is revoked at once, with the Subscriptions it holds",
		before:  newWorld([]v1.DistributorContract{contractA(endA)}, []v1.Partner{entitled}),
		after:   newWorld([]v1.DistributorContract{contractA(endA)}, nil),
		outcome: "Revoke", change: Removed, effectAt: t0, from: "a", message: "the Partner is removed (its namespaces are kept)", subscriptions: 7, revoked: 1,
	}, {
		name:    "a removed Partner nothing supplied loses nothing",
		before:  newWorld(nil, []v1.Partner{partner("missing")}),
		after:   newWorld(nil, nil),
		outcome: Unchanged, change: Removed,
	}, {
		name:    "the API server's defaults are no change",
		before:  newWorld([]v1.DistributorContract{contractA(endA)}, []v1.Partner{partner("a")}),
		after:   newWorld([]v1.DistributorContract{defaulted}, []v1.Partner{partner("a")}),
		outcome: Unchanged,
	}, {
		name:    "dropping a contract that has ended changes nothing",
		before:  newWorld([]v1.DistributorContract{contractA(endA), contractB()}, []v1.Partner{partner("a", "b")}),
		after:   newWorld([]v1.DistributorContract{contractA(endA), contractB()}, []v1.Partner{partner("b")}),
		at:      endA.Add(time.Hour),
		outcome: Unchanged, change: Modified,
	}, {
		name:    "a new last resort turns a revocation into a failover",
		before:  newWorld([]v1.DistributorContract{contractA(endA), contractB()}, []v1.Partner{partner("a")}),
		after:   newWorld([]v1.DistributorContract{contractA(endA), contractB()}, []v1.Partner{partner("a", "b")}),
		outcome: "FailOver", change: Modified, effectAt: endA, from: "a", to: "b", message: "contract a ended at 2026-11-30T23:59:59Z",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			if at.IsZero() {
				at = t0
			}
			d := computeDiff(tc.before, tc.after, at)
			if len(d.Partners) != 1 {
				t.Fatalf("want one partner, got %+v", d.Partners)
			}
			p := d.Partners[0]
			if p.Outcome != tc.outcome || p.Change != tc.change || p.From != tc.from || p.To != tc.to || p.Message != tc.message {
				t.Errorf("got outcome %q change %q from %q to %q message %q", p.Outcome, p.Change, p.From, p.To, p.Message)
			}
			if (p.At == nil) != tc.effectAt.IsZero() || (p.At != nil && !p.At.Time.Equal(tc.effectAt)) {
				t.Errorf("at %v, want %v", p.At, tc.effectAt)
			}
			if got := d.Summary; got.Revoke != tc.revoked || got.Rescheduled != tc.rescheduled || len(d.Contracts) != tc.contractsChanged {
				t.Errorf("summary %+v, contracts %+v", got, d.Contracts)
			}
			if tc.subscriptions != 0 && (p.Subscriptions == nil || *p.Subscriptions != tc.subscriptions || *d.Summary.Subscriptions != tc.subscriptions) {
				t.Errorf("subscriptions %v (summary %v), want %d", p.Subscriptions, d.Summary.Subscriptions, tc.subscriptions)
			}
		})
	}
}

// TestDiffAfterIsWhatTheOperatorWrites: After is PlanPartner's phase,
// contract and next, as the reconcile writes them into status.
func TestDiffAfterIsWhatTheOperatorWrites(t *testing.T) {
	w := newWorld([]v1.DistributorContract{contractA(endA), contractB()}, []v1.Partner{partner("a", "b")})
	d := computeDiff(w, w, t0)
	a := d.Partners[0].After
	want := &v1.NextChange{At: metav1.NewTime(endA), Outcome: v1.NextFailOver, Contract: "b"}
	if a.Phase != v1.PartnerEntitled || a.Contract != "a" || a.Next == nil || *a.Next != *want {
		t.Errorf("after %+v next %+v", a, a.Next)
	}
}
