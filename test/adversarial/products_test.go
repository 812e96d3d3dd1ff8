package adversarial_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// sellers are partners' users trying to sell product over and over (dry-run
// creates: the whole admission chain, nothing stored) in their
// namespaces until stop is closed, and records each create admitted, with
// when it was sent.
type sellers struct {
	mu       sync.Mutex
	admitted []sale
	tries    int
	wg       sync.WaitGroup
	stop     chan struct{}
}

type sale struct {
	partner string
	sent    time.Time
}

func startSelling(t *testing.T, partners []string, product string) *sellers {
	a := &sellers{stop: make(chan struct{})}
	for _, p := range partners {
		c := as(t, "seller@"+p, p+"-admins")
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-a.stop:
					return
				default:
				}
				sent := time.Now()
				sub := &v1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: p, Name: fmt.Sprintf("attack-%d", i)},
					Spec: v1.SubscriptionSpec{Product: product, Customer: "attacker"}}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := c.Create(ctx, sub, client.DryRunAll)
				cancel()
				a.mu.Lock()
				a.tries++
				if err == nil {
					a.admitted = append(a.admitted, sale{p, sent})
				}
				a.mu.Unlock()
				if err != nil && !refused(err) {
					time.Sleep(20 * time.Millisecond) // namespace not there yet: no need to spin
				}
			}
		}()
	}
	return a
}

// end stops the attack and returns what was admitted and how many tries.
func (a *sellers) end() ([]sale, int) {
	close(a.stop)
	a.wg.Wait()
	return a.admitted, a.tries
}

// TestForbiddenProductsAcrossTransitions: partners whose contract does
// not let them sell "Premium" are granted, suspended and resumed, revoked
// and regranted while their users try to sell it without pause: none is
// ever admitted. Then their supply moves, at a contract's end, from a
// contract that allows Premium to one that does not: from the moment the
// ended contract's status says so, none is admitted.
func TestForbiddenProductsAcrossTransitions(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{})
	n, k := setting("ADVERSARIAL_PARTNERS", 20), setting("ADVERSARIAL_ATTACKERS", 6)
	now := time.Now()
	basic := testenv.Contract("pr-basic", "Magirus", "DE", now.Add(-time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierAdvanced, 10, 1))
	basic.Spec.Entitlements[0].Products = []v1.ProductRule{{Name: "Basic"}}
	// Supplies first, allows Premium; ended for now.
	premium := testenv.Contract("pr-premium", "Bytec", "DE", now.Add(-2*time.Hour), now.Add(-time.Hour), 0, 0, testenv.Tier(v1.TierAdvanced, 10, 1))
	premium.Spec.Entitlements[0].Products = []v1.ProductRule{{Name: "Basic"}, {Name: "Premium"}}
	create(t, basic, premium)
	var partners, attacked []string
	for i := range n {
		partners = append(partners, fmt.Sprintf("pr-%d", i))
	}
	attacked = partners[:k]
	each := func(f func(*v1.Partner)) {
		for _, name := range partners {
			p := getPartner(t, name)
			patch := client.MergeFrom(p.DeepCopy())
			f(p)
			if err := k8s.Patch(ctx(t), p, patch); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := func(what string, done func(*v1.Partner) bool) {
		eventually(t, 3*time.Minute, what, func() error {
			for _, name := range partners {
				if p := getPartner(t, name); !done(p) {
					return fmt.Errorf("partner %s: phase %s, contract %q, conditions %v", name, p.Status.Phase, p.Status.Contract, p.Status.Conditions)
				}
			}
			return nil
		})
	}
	on := func(contract string) func(*v1.Partner) bool {
		return func(p *v1.Partner) bool {
			return p.Status.Phase == v1.PartnerEntitled && p.Status.Contract == contract && ready(p)
		}
	}
	phase := func(ph v1.PartnerPhase) func(*v1.Partner) bool {
		return func(p *v1.Partner) bool { return p.Status.Phase == ph && ready(p) }
	}
	noneAdmitted := func(step string, a *sellers) {
		t.Helper()
		admitted, tries := a.end()
		t.Logf("%s: %d forbidden sales tried by %d partners' users, %d admitted", step, tries, len(attacked), len(admitted))
		if len(admitted) > 0 {
			t.Errorf("%s: %d Premium Subscriptions admitted, the first by %s at %s", step, len(admitted), admitted[0].partner, admitted[0].sent.Format(time.StampMilli))
		}
	}

	a := startSelling(t, attacked, "Premium")
	for _, name := range partners {
		create(t, testenv.Partner(name, v1.TierAdvanced, "DE", []string{premium.Name, basic.Name}, name))
	}
	all("granted on pr-basic", on(basic.Name))
	noneAdmitted("grant", a)

	each(func(p *v1.Partner) { p.Spec.Suspended = true })
	all("suspended", phase(v1.PartnerSuspended))
	a = startSelling(t, attacked, "Premium")
	each(func(p *v1.Partner) { p.Spec.Suspended = false })
	all("resumed", on(basic.Name))
	noneAdmitted("resume", a)

	setEnd(t, basic.Name, time.Now().Add(-time.Minute))
	all("revoked", phase(v1.PartnerRevoked))
	a = startSelling(t, attacked, "Premium")
	setEnd(t, basic.Name, time.Time{})
	all("regranted", on(basic.Name))
	noneAdmitted("regrant", a)

	// pr-premium supplies again until ends (Premium allowed), then the
	// partners fail over to pr-basic at that instant.
	ends := time.Now().Truncate(time.Second).Add(15 * time.Second)
	setEnd(t, premium.Name, ends)
	all("on pr-premium until it ends", on(premium.Name))
	expired := watchPhase(t, premium.Name, v1.ContractExpired)
	a = startSelling(t, attacked, "Premium")
	all("failed over to pr-basic", on(basic.Name))
	admitted, tries := a.end()
	cutoff := expired()
	var afterInstant, afterStatus int
	for _, s := range admitted {
		if !s.sent.Before(ends) {
			afterInstant++
		}
		if s.sent.After(cutoff) {
			afterStatus++
		}
	}
	t.Logf("failover at %s: pr-premium's status said Expired %s after it; %d Premium sales tried, %d admitted sent after the instant (the cut-off's own latency), %d sent after the status",
		ends.Format(time.TimeOnly), cutoff.Sub(ends).Round(time.Millisecond), tries, afterInstant, afterStatus)
	if afterStatus > 0 {
		t.Errorf("failover: %d Premium Subscriptions admitted after pr-premium's status said Expired", afterStatus)
	}
	if lag := cutoff.Sub(ends); lag > 2*time.Second {
		t.Errorf("pr-premium's status said Expired %s after its end: want the write at the instant", lag)
	}
}

func ready(p *v1.Partner) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.ConditionReady {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == p.Generation
		}
	}
	return false
}

// setEnd moves a contract's endsAt (zero: open-ended).
func setEnd(t *testing.T, name string, at time.Time) {
	t.Helper()
	c := &v1.DistributorContract{}
	if err := k8s.Get(ctx(t), types.NamespacedName{Name: name}, c); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	c.Spec.EndsAt = nil
	if !at.IsZero() {
		c.Spec.EndsAt = &metav1.Time{Time: at}
		if !c.Spec.StartsAt.Time.Before(at) {
			c.Spec.StartsAt = metav1.NewTime(at.Add(-time.Hour))
		}
	}
	if err := k8s.Patch(ctx(t), c, patch); err != nil {
		t.Fatal(err)
	}
}

// watchPhase returns when the contract's status first showed the phase,
// polled every 10 ms until it is asked (then at most a minute more).
func watchPhase(t *testing.T, name string, phase v1.ContractPhase) func() time.Time {
	var at time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			c := &v1.DistributorContract{}
			if err := k8s.Get(context.Background(), types.NamespacedName{Name: name}, c); err == nil && c.Status.Phase == phase {
				at = time.Now()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() time.Time {
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("contract %s never showed phase %s", name, phase)
		}
		return at
	}
}
