package controllers_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// TestRequirementsMeasured: a partner below its tier's requirements is
// told so (condition, shortfall, event), and meets them once it sells
// enough; its tier is never changed.
func TestRequirementsMeasured(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	adv := testenv.Tier(v1.TierAdvanced, 10, 1)
	adv.Requirements = &v1.TierRequirements{MinSubscriptions: 2, MinUnits: 5}
	c := openContract("rq-c", testenv.Tier(v1.TierReady, 10, 1), adv)
	p := testenv.Partner("rq-p", v1.TierAdvanced, "DE", []string{c.Name}, "rq")
	create(t, c, p)
	eventually(t, 15*time.Second, "below requirements", func() error {
		got := getPartner(t, p.Name)
		cond := condition(got.Status.Conditions, v1.ConditionRequirementsMet)
		perf := got.Status.Performance
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != v1.ReasonBelowRequirements {
			return fmt.Errorf("RequirementsMet %+v", cond)
		}
		if perf == nil || perf.MeetsRequirements || perf.Shortfall == nil || *perf.Shortfall != (v1.Shortfall{Subscriptions: 2, Units: 5}) || perf.QualifiesFor != v1.TierReady {
			return fmt.Errorf("performance %+v", perf)
		}
		return nil
	})
	eventually(t, 15*time.Second, "BelowRequirements event", hasEvent("Partner", p.Name, v1.ReasonBelowRequirements))
	for i, units := range []int32{2, 3} {
		s := newSubscription("rq", fmt.Sprintf("s-%d", i))
		s.Spec.Units = units
		eventually(t, 15*time.Second, "creating a Subscription", func() error { return k8s.Create(ctx(t), s) })
	}
	eventually(t, 15*time.Second, "requirements met", func() error {
		got := getPartner(t, p.Name)
		cond := condition(got.Status.Conditions, v1.ConditionRequirementsMet)
		perf := got.Status.Performance
		if cond == nil || cond.Status != metav1.ConditionTrue || perf == nil || !perf.MeetsRequirements || perf.Units != 5 || perf.QualifiesFor != v1.TierAdvanced {
			return fmt.Errorf("RequirementsMet %+v, performance %+v", cond, perf)
		}
		if got.Spec.Tier != v1.TierAdvanced {
			return fmt.Errorf("tier changed to %s", got.Spec.Tier)
		}
		return nil
	})
	eventually(t, 15*time.Second, "RequirementsMet event", hasEvent("Partner", p.Name, v1.ReasonRequirementsMet))
}

// TestProductsRefusedAtAdmission: the API server itself (the shipped
// ValidatingAdmissionPolicy) refuses a Subscription for a product the
// partner's specializations do not cover, naming the specialization, and
// one for a product its contract does not list; it admits it once the
// partner holds the specialization.
func TestProductsRefusedAtAdmission(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	ent := testenv.Tier(v1.TierReady, 10, 1)
	ent.Products = []v1.ProductRule{{Name: "Directory Server", Specialization: v1.SpecializationDirectoryServices}, {Name: "Backup"}}
	c := openContract("pr-c", ent)
	p := testenv.Partner("pr-p", v1.TierReady, "DE", []string{c.Name}, "pr")
	p.Spec.Specializations = []v1.Specialization{v1.SpecializationStorage}
	create(t, c, p)
	eventually(t, 15*time.Second, "the namespace shows the product rules", func() error {
		ns, err := getNamespace("pr")
		if err != nil {
			return err
		}
		if ns.Annotations[v1.AnnotationProducts] != "Backup" || ns.Labels[v1.LabelSpecializationPrefix+"storage"] != "true" || ns.Labels[v1.LabelType] != "Reseller" {
			return fmt.Errorf("labels %v, annotations %v", ns.Labels, ns.Annotations)
		}
		return nil
	})
	eventually(t, 15*time.Second, "Backup admitted", func() error {
		s := newSubscription("pr", "backup")
		s.Spec.Product = "Backup"
		return k8s.Create(ctx(t), s)
	})
	for product, want := range map[string]string{
		"Directory Server": "requires specialization DirectoryServices, which partner pr-p does not hold",
		"Mail Gateway":     "is not among the products partner pr-p may sell",
	} {
		s := newSubscription("pr", "refused")
		s.Spec.Product = product
		err := k8s.Create(ctx(t), s)
		if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) || err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Subscription for %s: want refused with %q, got %v", product, want, err)
		}
	}
	patchPartner(t, p.Name, func(p *v1.Partner) {
		p.Spec.Specializations = append(p.Spec.Specializations, v1.SpecializationDirectoryServices)
	})
	eventually(t, 15*time.Second, "Directory Server admitted with the specialization", func() error {
		return k8s.Create(ctx(t), newSubscription("pr", "directory"))
	})
	eventually(t, 15*time.Second, "the specialization label", func() error {
		ns, err := getNamespace("pr")
		if err != nil {
			return err
		}
		if ns.Labels[v1.LabelSpecializationPrefix+"directoryservices"] != "true" {
			return fmt.Errorf("labels %v", ns.Labels)
		}
		return nil
	})
	// Dropping a specialization removes its label.
	patchPartner(t, p.Name, func(p *v1.Partner) { p.Spec.Specializations = []v1.Specialization{v1.SpecializationDirectoryServices} })
	eventually(t, 15*time.Second, "the storage label removed", func() error {
		ns, err := getNamespace("pr")
		if err != nil {
			return err
		}
		if _, ok := ns.Labels[v1.LabelSpecializationPrefix+"storage"]; ok {
			return fmt.Errorf("labels %v", ns.Labels)
		}
		return nil
	})
}

// TestStrictQuotaNeverOversells: with quotaPolicy Strict, a limit of 10
// over two namespaces and 20 concurrent creates in each, the API server
// admits at most 10 in total, round after round; and headroom moves to a
// namespace that has used its share.
func TestStrictQuotaNeverOversells(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	const limit = 10
	ent := testenv.Tier(v1.TierAdvanced, limit, 2)
	ent.QuotaPolicy = v1.QuotaStrict
	c := openContract("sq-c", ent)
	for round := range 3 {
		name := fmt.Sprintf("sq-p%d", round)
		nsA, nsB := name+"-a", name+"-b"
		p := testenv.Partner(name, v1.TierAdvanced, "DE", []string{c.Name}, nsA, nsB)
		if round == 0 {
			create(t, c)
		}
		create(t, p)
		eventually(t, 20*time.Second, "quotas 5 and 5", func() error {
			if err := quotaSettled(nsA, 5)(); err != nil {
				return err
			}
			return quotaSettled(nsB, 5)()
		})
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for _, ns := range []string{nsA, nsB} {
			for i := range 20 {
				wg.Go(func() {
					if k8s.Create(ctx(t), newSubscription(ns, fmt.Sprintf("s-%d", i))) == nil {
						admitted.Add(1)
					}
				})
			}
		}
		wg.Wait()
		if n := admitted.Load(); n > limit {
			t.Fatalf("round %d: %d Subscriptions admitted over a Strict limit of %d", round, n, limit)
		}
		consistently(t, 3*time.Second, "no more admitted", func() error {
			if n := admitted.Load(); n > limit {
				return fmt.Errorf("%d admitted", n)
			}
			return nil
		})
	}
	// Headroom moves: fill a's share of a fresh partner, and a keeps
	// getting room until the partner is at its limit.
	p := testenv.Partner("sq-move", v1.TierAdvanced, "DE", []string{c.Name}, "sq-move-a", "sq-move-b")
	create(t, p)
	eventually(t, 20*time.Second, "quotas 5 and 5", quotaSettled("sq-move-a", 5))
	for i := range limit {
		createSubscription(t, "sq-move-a", fmt.Sprintf("s-%d", i))
	}
	eventually(t, 20*time.Second, "a holds the whole limit, b none", func() error {
		if err := quotaSettled("sq-move-a", limit)(); err != nil {
			return err
		}
		return quotaSettled("sq-move-b", 0)()
	})
	refusedOverQuota(t, "sq-move-a", "over")
	refusedOverQuota(t, "sq-move-b", "over")
}
