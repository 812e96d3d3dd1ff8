package demo

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

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
	// PartnerSI is a system integrator on lxpn-de: untouched.
	PartnerSI = "kontor-si"
)

// Bytec's contract: Active for 20s after the story starts, Expiring for
// 20s (its notice period), in Grace for 5s, then Expired.
const (
	bytecEndsIn = 40 * time.Second
	bytecNotice = 20 * time.Second
	bytecGrace  = 5 * time.Second
	// onTime is how late after the end of Bytec's grace period the
	// fail-over and the revocation may come.
	onTime = 5 * time.Second
)

// story is the objects, with dates fixed when it starts.
type story struct {
	contracts []*v1.DistributorContract
	partners  []*v1.Partner
	// sales are what each partner's user sells before Bytec's end;
	// lateSales what ACME's and Nordwind's users try after it.
	sales, lateSales []sale
	// supplyEnds is bytec-de's endsAt + grace.
	supplyEnds time.Time
}

// sale is a Subscription a partner's user creates.
type sale struct {
	partner, user string
	sub           *v1.Subscription
	// refused: the API server must refuse it (over the quota, or after the
	// revocation).
	refused bool
}

func newStory(now time.Time) *story {
	s := &story{}
	longAgo := now.Add(-24 * time.Hour)
	// Status stores seconds: round the end up so that it is at least
	// bytecEndsIn away.
	ends := now.Add(bytecEndsIn).Truncate(time.Second).Add(time.Second)
	s.supplyEnds = ends.Add(bytecGrace)
	tiers := func() []v1.TierEntitlement {
		return []v1.TierEntitlement{testenv.Tier(v1.TierReady, 2, 1), testenv.Tier(v1.TierAdvanced, 10, 2), testenv.Tier(v1.TierPremier, 25, 3)}
	}
	bytec := testenv.Contract(ContractBytec, "Bytec", "DE", longAgo, ends, bytecNotice, bytecGrace, tiers()...)
	// Magirus measures its Advanced and Premier partners: ACME, with a
	// few single-unit Subscriptions, is below (the vendor decides; its
	// tier stays).
	magirusTiers := tiers()
	magirusTiers[1].Requirements = &v1.TierRequirements{MinSubscriptions: 5, MinUnits: 10, Specializations: 1}
	magirusTiers[2].Requirements = &v1.TierRequirements{MinSubscriptions: 20, MinUnits: 100, Specializations: 2}
	magirus := testenv.Contract(ContractMagirus, "Magirus", "DE", longAgo, time.Time{}, 720*time.Hour, 0, magirusTiers...)
	lxpn := testenv.Contract(ContractLXPN, "LXPN", "DE", longAgo, time.Time{}, 720*time.Hour, 0, tiers()...)
	s.contracts = []*v1.DistributorContract{bytec, magirus, lxpn}

	partner := func(name, display string, tier v1.Tier, typ v1.PartnerType, contracts []string, ns, user string, sp ...v1.Specialization) {
		p := testenv.Partner(name, tier, "DE", contracts, ns)
		p.Spec.DisplayName, p.Spec.Type, p.Spec.Specializations = display, typ, sp
		p.Spec.Access = []v1.Subject{{Kind: v1.SubjectUser, Name: user}}
		s.partners = append(s.partners, p)
	}
	partner(PartnerFailover, "ACME Systems GmbH", v1.TierAdvanced, v1.PartnerReseller, []string{ContractBytec, ContractMagirus},
		"acme-prod", "jane@acme.example", v1.SpecializationVirtualization, v1.SpecializationStorage)
	partner(PartnerRevoked, "Nordwind IT GmbH", v1.TierReady, v1.PartnerReseller, []string{ContractBytec}, "nordwind", "jan@nordwind.example")
	partner(PartnerSI, "Kontor Systemhaus AG", v1.TierPremier, v1.PartnerSystemIntegrator, []string{ContractLXPN},
		"kontor-prod", "lea@kontor.example", v1.SpecializationMiddleware)

	sell := func(to *[]sale, partner, name, product, customer string, refused bool) {
		p := s.partner(partner)
		*to = append(*to, sale{partner: partner, user: p.Spec.Access[0].Name, refused: refused, sub: &v1.Subscription{
			ObjectMeta: metav1.ObjectMeta{Namespace: string(p.Spec.Namespaces[0]), Name: name},
			Spec:       v1.SubscriptionSpec{Product: product, Customer: customer, Units: 1},
		}})
	}
	sell(&s.sales, PartnerFailover, "acme-1", "Directory Server", "Stadtwerke Musterstadt", false)
	sell(&s.sales, PartnerFailover, "acme-2", "Virtualization Suite", "Klinikum Nord", false)
	sell(&s.sales, PartnerRevoked, "nordwind-1", "Directory Server", "Autohaus Becker KG", false)
	sell(&s.sales, PartnerRevoked, "nordwind-2", "Desktop Manager", "Gemeinde Lindau", false)
	// Bytec's Ready tier allows two: the third is over the quota.
	sell(&s.sales, PartnerRevoked, "nordwind-3", "Directory Server", "Brauerei Ostwind", true)
	sell(&s.sales, PartnerSI, "kontor-1", "Middleware Platform", "Landesbank Süd", false)
	sell(&s.lateSales, PartnerFailover, "acme-3", "Storage Suite", "Hafen Logistik AG", false)
	sell(&s.lateSales, PartnerRevoked, "nordwind-4", "Directory Server", "Stadtwerke Musterstadt", true)
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

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1.AddToScheme(s))
	return s
}
