// Package demo is the operator's story, end to end, as `make demo` shows it
// and test/e2e checks it: a vendor ends its contract with the distributor
// Bytec and from then on works only with Magirus and LXPN. On a
// local control plane (internal/testcluster) with the real manager binary
// running, it creates the contracts with dates relative to now (bytec-de
// ends within a minute), three partners and their Subscriptions, narrates
// what happens as a timeline, prints the tables `kubectl get` would, and
// checks the outcome: the partner that lists Magirus fails over to it, the
// one that only had Bytec is revoked with its namespace and Subscriptions
// kept, and the system integrator on LXPN is unaffected.
package demo

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// Names in the story.
const (
	ContractBytec   = "bytec-de"
	ContractMagirus = "magirus-de"
	ContractLXPN    = "lxpn-de"

	// PartnerFailover lists [bytec-de, magirus-de]: it fails over.
	PartnerFailover = "acme-systems"
	// PartnerRevoked lists only bytec-de: it is revoked.
	PartnerRevoked = "nordwind-it"
	// PartnerSI is a system integrator on lxpn-de: unaffected.
	PartnerSI = "kontor-si"
)

// Timings of the Bytec contract, relative to when the story is applied.
type Timings struct {
	// EndsIn is how long after the story starts bytec-de ends.
	EndsIn time.Duration
	// Notice is its notice period (phase Expiring that long before the end).
	Notice time.Duration
	// Grace is its grace period (phase Grace that long after the end).
	Grace time.Duration
}

// DefaultTimings: Active for 20s, Expiring 20s, Grace 5s, then Expired.
var DefaultTimings = Timings{EndsIn: 40 * time.Second, Notice: 20 * time.Second, Grace: 5 * time.Second}

// Options tune Run.
type Options struct {
	// Timeline narrates (required).
	Timeline *Timeline
	// Timings of bytec-de (default DefaultTimings).
	Timings Timings
	// OnTime is how late after the end of bytec-de's grace period the
	// fail-over and the revocation may come (default 5s).
	OnTime time.Duration
	// NoTables skips printing the tables.
	NoTables bool
}

// Run plays the story against a control plane where the operator runs,
// narrating on o.Timeline, and returns the checks. An error means the story
// could not be played (the API refused to create its objects, ctx ended);
// failed checks are in the result. The timeline keeps narrating what
// happens until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) (*Result, error) {
	if o.Timings == (Timings{}) {
		o.Timings = DefaultTimings
	}
	if o.OnTime == 0 {
		o.OnTime = 5 * time.Second
	}
	tl := o.Timeline
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, err
	}
	n, err := Watch(ctx, cfg, tl)
	if err != nil {
		return nil, err
	}
	s := newStory(time.Now(), o.Timings)
	st := &storyRun{s: s, c: c, cfg: cfg, tl: tl, n: n, onTime: o.OnTime}
	if err := st.apply(ctx); err != nil {
		return nil, err
	}
	if err := st.sell(ctx); err != nil {
		return nil, err
	}
	st.waitForTheEnd(ctx)
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	st.afterRevocation(ctx)
	if !o.NoTables {
		tl.Heading("$ kubectl get distributorcontracts")
		if err := PrintTable(ctx, cfg, tl, TableContracts, false); err != nil {
			tl.Printf("(table: %v)\n", err)
		}
		tl.Heading("$ kubectl get partners")
		if err := PrintTable(ctx, cfg, tl, TablePartners, false); err != nil {
			tl.Printf("(table: %v)\n", err)
		}
		tl.Heading("$ kubectl get subscriptions -A")
		if err := PrintTable(ctx, cfg, tl, TableSubscriptions, true); err != nil {
			tl.Printf("(table: %v)\n", err)
		}
	}
	res := st.check(ctx)
	tl.Heading("Checks")
	for _, ch := range res.Checks {
		tl.Verdict(ch.OK, ch.Name+": "+ch.Detail)
	}
	return res, context.Cause(ctx)
}

// Scheme has the built-in types and this API.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1.AddToScheme(s))
	return s
}

// story is the objects, with dates fixed when it starts.
type story struct {
	start     time.Time
	t         Timings
	contracts []*v1.DistributorContract
	partners  []*v1.Partner
	// sales are the Subscriptions each partner's user creates, in order;
	// the last one of PartnerRevoked is over its quota.
	sales []sale
	// bytecSupplyEnds is bytec-de's endsAt + grace.
	bytecSupplyEnds time.Time
}

type sale struct {
	partner, namespace, user string
	sub                      *v1.Subscription
	// overQuota: the API server must refuse it.
	overQuota bool
}

func newStory(now time.Time, t Timings) *story {
	s := &story{start: now, t: t}
	longAgo := now.Add(-24 * time.Hour)
	// Times are stored to the second; round the end up so that it is at
	// least EndsIn away.
	ends := now.Add(t.EndsIn).Truncate(time.Second).Add(time.Second)
	s.bytecSupplyEnds = ends.Add(t.Grace)

	bytec := testenv.Contract(ContractBytec, "Bytec", "DE", longAgo, ends, t.Notice, t.Grace,
		testenv.Tier(v1.TierReady, 2, 1), testenv.Tier(v1.TierAdvanced, 10, 2), testenv.Tier(v1.TierPremier, 25, 3))
	// Magirus measures its Advanced partners: ACME, with two single-unit
	// Subscriptions, is below (the vendor decides; its tier stays).
	magirusAdvanced := testenv.Tier(v1.TierAdvanced, 10, 2)
	magirusAdvanced.Requirements = &v1.TierRequirements{MinSubscriptions: 5, MinUnits: 10, Specializations: 1}
	magirusPremier := testenv.Tier(v1.TierPremier, 25, 3)
	magirusPremier.Requirements = &v1.TierRequirements{MinSubscriptions: 20, MinUnits: 100, Specializations: 2}
	magirus := testenv.Contract(ContractMagirus, "Magirus", "DE", longAgo, time.Time{}, 720*time.Hour, 0,
		testenv.Tier(v1.TierReady, 5, 1), magirusAdvanced, magirusPremier)
	lxpn := testenv.Contract(ContractLXPN, "LXPN", "DE", longAgo, time.Time{}, 720*time.Hour, 0,
		testenv.Tier(v1.TierReady, 5, 1), testenv.Tier(v1.TierAdvanced, 10, 2), testenv.Tier(v1.TierPremier, 25, 3))
	s.contracts = []*v1.DistributorContract{bytec, magirus, lxpn}

	acme := testenv.Partner(PartnerFailover, v1.TierAdvanced, "DE", []string{ContractBytec, ContractMagirus}, "acme-prod")
	acme.Spec.DisplayName = "ACME Systems GmbH"
	acme.Spec.Type = v1.PartnerReseller
	acme.Spec.Specializations = []v1.Specialization{v1.SpecializationVirtualization, v1.SpecializationStorage}
	acme.Spec.Access = []v1.Subject{{Kind: v1.SubjectGroup, Name: "acme-admins"}, {Kind: v1.SubjectUser, Name: "jane@acme.example"}}

	nordwind := testenv.Partner(PartnerRevoked, v1.TierReady, "DE", []string{ContractBytec}, "nordwind")
	nordwind.Spec.DisplayName = "Nordwind IT GmbH"
	nordwind.Spec.Type = v1.PartnerReseller
	nordwind.Spec.Access = []v1.Subject{{Kind: v1.SubjectUser, Name: "jan@nordwind.example"}}

	kontor := testenv.Partner(PartnerSI, v1.TierPremier, "DE", []string{ContractLXPN}, "kontor-prod")
	kontor.Spec.DisplayName = "Kontor Systemhaus AG"
	kontor.Spec.Type = v1.PartnerSystemIntegrator
	kontor.Spec.Specializations = []v1.Specialization{v1.SpecializationMiddleware}
	kontor.Spec.Access = []v1.Subject{{Kind: v1.SubjectGroup, Name: "kontor-admins"}, {Kind: v1.SubjectUser, Name: "lea@kontor.example"}}
	s.partners = []*v1.Partner{acme, nordwind, kontor}

	add := func(partner, ns, user, name, product, customer string, over bool) {
		s.sales = append(s.sales, sale{partner: partner, namespace: ns, user: user, overQuota: over, sub: &v1.Subscription{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       v1.SubscriptionSpec{Product: product, Customer: customer, Units: 1},
		}})
	}
	add(PartnerFailover, "acme-prod", "jane@acme.example", "acme-1", "Directory Server", "Stadtwerke Musterstadt", false)
	add(PartnerFailover, "acme-prod", "jane@acme.example", "acme-2", "Virtualization Suite", "Klinikum Nord", false)
	add(PartnerRevoked, "nordwind", "jan@nordwind.example", "nordwind-1", "Directory Server", "Autohaus Becker KG", false)
	add(PartnerRevoked, "nordwind", "jan@nordwind.example", "nordwind-2", "Desktop Manager", "Gemeinde Lindau", false)
	add(PartnerRevoked, "nordwind", "jan@nordwind.example", "nordwind-3", "Directory Server", "Brauerei Ostwind", true)
	add(PartnerSI, "kontor-prod", "lea@kontor.example", "kontor-1", "Middleware Platform", "Landesbank Süd", false)
	return s
}

func (s *story) partner(name string) *v1.Partner {
	for _, p := range s.partners {
		if p.Name == name {
			return p
		}
	}
	return nil
}
