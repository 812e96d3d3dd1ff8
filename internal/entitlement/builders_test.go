package entitlement

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Fixed time base for every test in this package: never time.Now().
var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// ---- contracts ----

type contractOpt func(*v1.DistributorContract)

// newContract builds a DistributorContract of region DE that starts at t0,
// is open-ended, has the default notice and no grace, and covers every tier
// with 10 subscriptions and 1 namespace.
func newContract(name string, opts ...contractOpt) *v1.DistributorContract {
	c := &v1.DistributorContract{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.DistributorContractSpec{
			Distributor: "Dist-" + name,
			Region:      "DE",
			StartsAt:    metav1.NewTime(t0),
			Entitlements: []v1.TierEntitlement{
				{Tier: v1.TierReady, Subscriptions: 10, MaxNamespaces: 1},
				{Tier: v1.TierAdvanced, Subscriptions: 10, MaxNamespaces: 1},
				{Tier: v1.TierPremier, Subscriptions: 10, MaxNamespaces: 1},
			},
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func starts(t time.Time) contractOpt {
	return func(c *v1.DistributorContract) { c.Spec.StartsAt = metav1.NewTime(t) }
}

func ends(t time.Time) contractOpt {
	return func(c *v1.DistributorContract) { e := metav1.NewTime(t); c.Spec.EndsAt = &e }
}

func notice(d time.Duration) contractOpt {
	return func(c *v1.DistributorContract) { c.Spec.NoticePeriod = &metav1.Duration{Duration: d} }
}

func grace(d time.Duration) contractOpt {
	return func(c *v1.DistributorContract) { c.Spec.GracePeriod = &metav1.Duration{Duration: d} }
}

func region(r v1.Region) contractOpt {
	return func(c *v1.DistributorContract) { c.Spec.Region = r }
}

func statusPhase(p v1.ContractPhase) contractOpt {
	return func(c *v1.DistributorContract) { c.Status.Phase = p }
}

// entitlements replaces the tier entries.
func entitlements(es ...v1.TierEntitlement) contractOpt {
	return func(c *v1.DistributorContract) { c.Spec.Entitlements = es }
}

// tierEnt changes one tier's entry in place (it must exist).
func tierEnt(tier v1.Tier, f func(*v1.TierEntitlement)) contractOpt {
	return func(c *v1.DistributorContract) {
		for i := range c.Spec.Entitlements {
			if c.Spec.Entitlements[i].Tier == tier {
				f(&c.Spec.Entitlements[i])
				return
			}
		}
		panic("tierEnt: no entry for tier " + string(tier))
	}
}

func contractMap(cs ...*v1.DistributorContract) map[string]*v1.DistributorContract {
	m := map[string]*v1.DistributorContract{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

// ---- partners ----

type partnerOpt func(*v1.Partner)

// newPartner builds an Advanced partner of region DE with the given
// contracts and one namespace "<name>-prod".
func newPartner(name string, contracts []string, opts ...partnerOpt) *v1.Partner {
	p := &v1.Partner{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PartnerSpec{
			Tier:       v1.TierAdvanced,
			Region:     "DE",
			Contracts:  contracts,
			Namespaces: []v1.NamespaceName{v1.NamespaceName(name + "-prod")},
			Access:     []v1.Subject{{Kind: v1.SubjectGroup, Name: name + "-admins"}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func tier(t v1.Tier) partnerOpt { return func(p *v1.Partner) { p.Spec.Tier = t } }

func namespaces(ns ...string) partnerOpt {
	return func(p *v1.Partner) {
		p.Spec.Namespaces = nil
		for _, n := range ns {
			p.Spec.Namespaces = append(p.Spec.Namespaces, v1.NamespaceName(n))
		}
	}
}

func suspended() partnerOpt { return func(p *v1.Partner) { p.Spec.Suspended = true } }

func oldStatus(s v1.PartnerStatus) partnerOpt { return func(p *v1.Partner) { p.Status = s } }

// allRolesBindable observes every default tier role as existing and bindable.
func allRolesBindable() map[string]RoleObservation {
	return map[string]RoleObservation{
		"entitlements-partner-ready":    {Exists: true, Bindable: true},
		"entitlements-partner-advanced": {Exists: true, Bindable: true},
		"entitlements-partner-premier":  {Exists: true, Bindable: true},
	}
}

// input builds a PartnerInput at t0 with no namespace observed (all absent)
// and every default role bindable.
func input(p *v1.Partner, cs ...*v1.DistributorContract) PartnerInput {
	return PartnerInput{
		Partner:    p,
		Contracts:  contractMap(cs...),
		Namespaces: map[string]NamespaceObservation{},
		Roles:      allRolesBindable(),
		Now:        t0,
	}
}

// ---- assertions ----

func findCond(cs []metav1.Condition, typ string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}

// wantCond fails unless conditions hold typ with status and reason, and
// a message containing every one of contains.
func wantCond(t *testing.T, cs []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, contains ...string) {
	t.Helper()
	c := findCond(cs, typ)
	if c == nil {
		t.Errorf("condition %s: want status=%s reason=%s, got none (conditions %+v)", typ, status, reason, cs)
		return
	}
	if c.Status != status || c.Reason != reason {
		t.Errorf("condition %s: want status=%s reason=%s, got status=%s reason=%s (message %q)", typ, status, reason, c.Status, c.Reason, c.Message)
	}
	for _, s := range contains {
		if !strings.Contains(c.Message, s) {
			t.Errorf("condition %s: want message containing %q, got %q", typ, s, c.Message)
		}
	}
}

func noCond(t *testing.T, cs []metav1.Condition, typ string) {
	t.Helper()
	if c := findCond(cs, typ); c != nil {
		t.Errorf("condition %s: want none, got %+v", typ, *c)
	}
}

func eventReasons(evs []Event) []string {
	var rs []string
	for _, e := range evs {
		rs = append(rs, e.Reason)
	}
	return rs
}

// wantEvents fails unless the events have exactly these reasons in order.
func wantEvents(t *testing.T, evs []Event, reasons ...string) {
	t.Helper()
	got := eventReasons(evs)
	if strings.Join(got, ",") != strings.Join(reasons, ",") {
		t.Errorf("events: want reasons %v, got %v (%+v)", reasons, got, evs)
	}
}

func findEvent(evs []Event, reason string) *Event {
	for i := range evs {
		if evs[i].Reason == reason {
			return &evs[i]
		}
	}
	return nil
}

func nsPlan(t *testing.T, plan PartnerPlan, name string) NamespacePlan {
	t.Helper()
	for _, n := range plan.Namespaces {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("namespace plan %s: want one, got none (plans %+v)", name, plan.Namespaces)
	return NamespacePlan{}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
