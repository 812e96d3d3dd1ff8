package entitlement

import (
	"fmt"
	"testing"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestForecast(t *testing.T) {
	cs := supplyFixtures()
	partner := func(name string, used int32, list ...string) v1.Partner {
		p := newPartner(name, list)
		p.Status.Subscriptions.Used = used
		return *p
	}
	supplied := []v1.Partner{
		partner("zeta", 4, "active-a"),              // revoked: nothing after
		partner("alpha", 2, "active-a", "active-b"), // fails over to active-b
		partner("mid", 1, "active-a", "pending"),    // pending is open-ended from t0+5d: fails over
		func() v1.Partner { p := partner("off", 9, "active-a"); p.Spec.Suspended = true; return p }(),
	}
	f := Forecast(cs["active-a"], supplied, cs)
	if f == nil || !f.At.Time.Equal(t0.Add(100*day)) || f.FailOver != 2 || f.Revoke != 1 || f.Subscriptions != 4 {
		t.Fatalf("forecast: want at t0+100d, 2 fail over, 1 revoked holding 4; got %+v", f)
	}
	got := fmt.Sprint(f.Partners)
	if want := "[{alpha FailOver active-b} {mid FailOver pending} {zeta Revoke }]"; got != want {
		t.Errorf("partners: want %s (by name), got %s", want, got)
	}
	if Forecast(cs["open"], supplied, cs) != nil {
		t.Error("an open-ended contract: want no forecast")
	}
	// The list is capped; the counts are not.
	var many []v1.Partner
	for i := range 150 {
		many = append(many, partner(fmt.Sprintf("p%03d", i), 1, "active-a"))
	}
	if f := Forecast(cs["active-a"], many, cs); len(f.Partners) != 100 || f.Revoke != 150 || f.Subscriptions != 150 {
		t.Errorf("150 partners: want 100 listed, counts 150; got %d listed, %d revoke, %d subscriptions", len(f.Partners), f.Revoke, f.Subscriptions)
	}
}
