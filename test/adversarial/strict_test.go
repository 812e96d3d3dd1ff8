package adversarial_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// quotaPolicy: Strict promises that the limits the API server enforces
// (each quota's status.hard) never sum above the partner's limit, at any
// instant. These tests try to make them, as the attacker did.

// TestStrictNamespaceLeavesDuringBurst: a Strict partner with a limit of 12
// over three namespaces (4 each, one Subscription in the third) bursts
// creates in the first two while the third is removed from
// spec.namespaces; the attacker creates in the third as soon as the
// first two get more room. The removed namespace enforces its old limit
// until kube-controller-manager has copied the operator's 0 into its
// status, so the others may only get its headroom after that.
func TestStrictNamespaceLeavesDuringBurst(t *testing.T) {
	needCluster(t)
	leaveRounds(t, "lv", false)
}

// TestStrictNamespaceLeavesUnderKills is the same with the manager
// SIGKILLed at a seeded random moment within 250 ms of the removal
// (mid-rebalance) in every round and started again at once.
func TestStrictNamespaceLeavesUnderKills(t *testing.T) {
	needCluster(t)
	leaveRounds(t, "kl", true)
}

const leaveLimit = 12

func leaveRounds(t *testing.T, prefix string, kills bool) {
	rounds := setting("ADVERSARIAL_ROUNDS", 3)
	seed := uint64(setting("ADVERSARIAL_SEED", int(time.Now().UnixNano()%1_000_000)))
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	t.Logf("%d rounds, ADVERSARIAL_SEED=%d", rounds, seed)
	start := time.Now()
	m := startBinary(t)
	c := strictContract(t, prefix+"-c", v1.QuotaStrict, leaveLimit, 3)

	var maxHard, maxHeld int64
	var oversold, violated, undercounted int
	for round := range rounds {
		var killAt time.Duration
		if kills {
			killAt = time.Duration(rng.Int64N(int64(250 * time.Millisecond)))
		}
		r := leaveRound(t, m, c, fmt.Sprintf("%s-%02d", prefix, round), killAt)
		maxHard, maxHeld = max(maxHard, r.maxHard), max(maxHeld, r.held)
		switch {
		case r.held > leaveLimit && r.held <= leaveLimit+r.undercount:
			// Nothing is deleted in a round: a count that went down is
			// kube-controller-manager's recount missing Subscriptions just
			// admitted, and admission let that many more in. A race inside
			// Kubernetes (docs/architecture.md, "Quota undercount"), reported
			// by the operator, not preventable by any spread.
			undercounted++
			t.Logf("round %d: %d held against a limit of %d, after kube-controller-manager's recount dropped %d from the quotas' count (the quota undercount race)", round, r.held, leaveLimit, r.undercount)
		case r.held > leaveLimit:
			oversold++
			t.Errorf("round %d: %d Subscriptions held against a limit of %d (%d admitted in the removed namespace); the last quota events:\n%s", round, r.held, leaveLimit, r.inRemoved, r.history)
		}
		if len(r.violations) > 0 {
			violated++
			t.Errorf("round %d: the limits in force summed above %d at %d instants; first: %s", round, leaveLimit, len(r.violations), r.violations[0])
		}
		if r.held < leaveLimit {
			t.Errorf("round %d: the partner could use only %d of its limit of %d: the removed namespace's headroom never reached the others", round, r.held, leaveLimit)
		}
		t.Logf("round %d: %d quota events, max Σ status.hard %d, held %d of %d (%d admitted in the removed namespace)%s",
			round, r.events, r.maxHard, r.held, leaveLimit, r.inRemoved, map[bool]string{true: fmt.Sprintf(", killed %s after the removal", killAt.Round(time.Millisecond))}[kills])
	}
	t.Logf("result: %d rounds, %d SIGKILLs, max Σ status.hard %d (limit %d), max held %d, %d rounds oversold, %d rounds above the limit in force, %d rounds over by a quota undercount, %.1fs",
		rounds, m.kills, maxHard, leaveLimit, maxHeld, oversold, violated, undercounted, time.Since(start).Seconds())
}

type leaveResult struct {
	events     int
	maxHard    int64
	held       int64 // Subscriptions in the three namespaces at the end
	inRemoved  int64 // admitted in the removed namespace during the attack
	violations []string
	history    string
	undercount int64 // by how much the quotas' counts went down
}

// leaveRound runs one round on a fresh partner; killAt > 0 SIGKILLs the
// manager that long after the removal.
func leaveRound(t *testing.T, m *binary, c *v1.DistributorContract, name string, killAt time.Duration) leaveResult {
	t.Helper()
	nsA, nsB, nsC := name+"-a", name+"-b", name+"-c"
	obs := observeQuotas(t, name)
	defer obs.close()
	obs.arm(leaveLimit)
	p := testenv.Partner(name, v1.TierAdvanced, "DE", []string{c.Name}, nsA, nsB, nsC)
	if err := k8s.Create(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, name+" granted, 4 in force in each namespace", func() error {
		if err := partnerReady(name, leaveLimit); err != nil {
			return err
		}
		return quotasInForce(obs, map[string]int64{nsA: 4, nsB: 4, nsC: 4})
	})
	createOne(t, nsC)
	eventually(t, 30*time.Second, "one Subscription in "+nsC+" seen by the operator", func() error {
		return partnerUsed(name, 1)
	})

	// The attack: bursts in a and b from now on; c dropped from the list;
	// creates in c once a or b has been given more room.
	atk := newAttack()
	defer atk.stop()
	atk.hammer(nsA, 2)
	atk.hammer(nsB, 2)
	raised := make(chan struct{})
	var once sync.Once
	obs.setOnChange(func(qs map[string]quotaState) {
		if qs[nsA].status > 4 || qs[nsB].status > 4 {
			once.Do(func() { close(raised) })
		}
	})
	atk.wg.Go(func() {
		select {
		case <-raised:
		case <-time.After(2 * time.Second): // no raise seen: attack c anyway
		case <-atk.stopped:
			return
		}
		atk.hammer(nsC, 2)
	})
	removedAt := time.Now()
	patchPartner(t, name, func(p *v1.Partner) { p.Spec.Namespaces = p.Spec.Namespaces[:2] })
	if killAt > 0 {
		if d := time.Until(removedAt.Add(killAt)); d > 0 {
			time.Sleep(d) // the kill moment is the experiment, not a synchronisation
		}
		m.kill()
	}
	// Attack until the partner has held its whole limit for a second (or
	// a deadline): more must not get in meanwhile.
	if err := heldFor(leaveLimit, func() int64 { return 1 + atk.admitted() }, time.Second, 30*time.Second); err != nil {
		t.Logf("%s: %v", name, err)
	}
	atk.stop()

	held := countSubscriptions(t, nsA, nsB, nsC)
	events, maxHard, _, violations := obs.results()
	return leaveResult{events: events, maxHard: maxHard, held: held, inRemoved: atk.in(nsC), violations: violations, history: obs.history(), undercount: obs.undercount()}
}

// TestOverLoweredLimitDeleteAndCreate: a partner holds 7 Subscriptions in
// two namespaces and its limit is lowered to 6. Quota admission removes
// nothing, but until the partner is back under its limit nothing new may
// get in: its user deletes one Subscription while creating others in both
// namespaces at once, as fast as the API server answers. Strict must also
// keep Σ status.hard ≤ 6 all along; Shared (each namespace may use what
// the partner has left) must refuse the replacement too.
func TestOverLoweredLimitDeleteAndCreate(t *testing.T) {
	needCluster(t)
	startBinary(t)
	for _, policy := range []v1.QuotaPolicy{v1.QuotaStrict, v1.QuotaShared} {
		t.Run(string(policy), func(t *testing.T) { loweredRounds(t, policy) })
	}
}

func loweredRounds(t *testing.T, policy v1.QuotaPolicy) {
	const high, low = 7, 6
	rounds := setting("ADVERSARIAL_ROUNDS", 3)
	start := time.Now()
	prefix := map[v1.QuotaPolicy]string{v1.QuotaStrict: "lw-strict", v1.QuotaShared: "lw-shared"}[policy]
	c := strictContract(t, prefix+"-c", policy, high, 2)
	name, nsA, nsB := prefix+"-p", prefix+"-a", prefix+"-b"
	obs := observeQuotas(t, name)
	p := testenv.Partner(name, v1.TierAdvanced, "DE", []string{c.Name}, nsA, nsB)
	if err := k8s.Create(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	var admittedRounds int
	var maxHard int64
	for round := range rounds {
		if round > 0 {
			if policy == v1.QuotaStrict {
				obs.arm(high)
			}
			setLimit(t, c.Name, high)
		}
		eventually(t, 60*time.Second, fmt.Sprintf("round %d: limit %d in force", round, high), func() error {
			if err := partnerReady(name, high); err != nil {
				return err
			}
			_, err := obs.settled()
			return err
		})
		// Fill to 7, one at a time wherever there is room.
		eventually(t, 60*time.Second, fmt.Sprintf("round %d: %d held", round, high), func() error {
			if n := countSubscriptions(t, nsA, nsB); n < high {
				for _, ns := range []string{nsA, nsB} {
					if err := k8s.Create(ctx(t), subscription(ns)); err == nil {
						break
					}
				}
				return fmt.Errorf("%d held", n)
			}
			return partnerUsed(name, high)
		})
		obs.disarm()
		setLimit(t, c.Name, low)
		eventually(t, 60*time.Second, fmt.Sprintf("round %d: limit lowered to %d, quotas written and in force", round, low), func() error {
			if err := partnerReady(name, low); err != nil {
				return err
			}
			_, err := obs.settled()
			return err
		})
		if policy == v1.QuotaStrict {
			obs.arm(low)
		}

		// The attack: creates in both namespaces, then one delete.
		// The victim: the namespace holding more in even rounds, the other
		// one (if it holds any) in odd rounds.
		inA, inB := listSubscriptions(t, nsA), listSubscriptions(t, nsB)
		victims := inA
		if (len(inA) < len(inB)) != (round%2 == 1 && len(inA) > 0 && len(inB) > 0) {
			victims = inB
		}
		victim := victims[0].Namespace
		usedBefore := obs.snapshot()[victim].used
		dropped := make(chan struct{})
		var once sync.Once
		obs.setOnChange(func(qs map[string]quotaState) {
			if qs[victim].used < usedBefore {
				once.Do(func() { close(dropped) })
			}
		})
		atk := newAttack()
		atk.hammer(nsA, 2)
		atk.hammer(nsB, 2)
		if err := k8s.Delete(ctx(t), &victims[0]); err != nil {
			atk.stop()
			t.Fatal(err)
		}
		// Attack until a second after the quota's count has dropped (the
		// moment a slot would open), within a deadline.
		var err error
		select {
		case <-dropped:
			time.Sleep(time.Second) // the attack's length, not a synchronisation
		case <-time.After(20 * time.Second):
			err = fmt.Errorf("the quota in %s never counted the delete", victim)
		}
		atk.stop()
		if err != nil {
			t.Fatalf("round %d: %v: no slot could open, the attack proves nothing", round, err)
		}
		held := countSubscriptions(t, nsA, nsB)
		if n := atk.admitted(); n > 0 {
			admittedRounds++
			t.Errorf("round %d: %d Subscription(s) admitted over the lowered limit after deleting one in %s (now %d held, limit %d)", round, n, victim, held, low)
		}
		_, mh, _, _ := obs.results()
		maxHard = max(maxHard, mh)
		t.Logf("round %d: deleted one in %s, %d creates admitted, %d refused; %d held, limit %d", round, victim, atk.admitted(), atk.refused.Load(), held, low)
	}
	events, _, _, violations := obs.results()
	for _, v := range violations {
		t.Errorf("over the lowered limit: %s", v)
	}
	summary := fmt.Sprintf("max Σ status.hard %d while the limit was %d", maxHard, low)
	if policy != v1.QuotaStrict {
		summary = "Σ status.hard not asserted (Shared)"
	}
	t.Logf("result (%s): %d rounds, %d quota events, %s, %d rounds with a replacement admitted, %.1fs",
		policy, rounds, events, summary, admittedRounds, time.Since(start).Seconds())
}

// attack creates Subscriptions as fast as the API server answers and
// counts what it lets in. It stops between requests, never cancelling
// one: a create cancelled after quota admission charged it leaves the
// quota counting one Subscription too many until kube-controller-manager
// next recounts it, which would hold the partner below its limit.
type attack struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	byNS     map[string]*atomic.Int64
	total    atomic.Int64
	refused  atomic.Int64
	stopped  chan struct{}
	stopOnce sync.Once
}

func newAttack() *attack {
	return &attack{byNS: map[string]*atomic.Int64{}, stopped: make(chan struct{})}
}

// hammer starts workers creating in ns until stop.
func (a *attack) hammer(ns string, workers int) {
	a.mu.Lock()
	n := a.byNS[ns]
	if n == nil {
		n = &atomic.Int64{}
		a.byNS[ns] = n
	}
	a.mu.Unlock()
	for range workers {
		a.wg.Go(func() {
			for {
				select {
				case <-a.stopped:
					return
				default:
				}
				if err := k8s.Create(context.Background(), subscription(ns)); err == nil {
					n.Add(1)
					a.total.Add(1)
				} else {
					a.refused.Add(1)
				}
			}
		})
	}
}

// stop ends the attack once the requests in flight are answered.
func (a *attack) stop() {
	a.stopOnce.Do(func() { close(a.stopped) })
	a.wg.Wait()
}

func (a *attack) admitted() int64 { return a.total.Load() }

func (a *attack) in(ns string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.byNS[ns]; n != nil {
		return n.Load()
	}
	return 0
}

// heldFor waits until held() ≥ want, then lets the attack go on for
// hold (what must not happen is given that long to happen); it gives up
// after timeout.
func heldFor(want int64, held func() int64, hold, timeout time.Duration) error {
	var since time.Time
	return testPoll(timeout, func() error {
		switch n := held(); {
		case n < want:
			return fmt.Errorf("%d held of %d", n, want)
		case since.IsZero():
			since = time.Now()
		}
		if time.Since(since) < hold {
			return fmt.Errorf("holding")
		}
		return nil
	})
}

func testPoll(timeout time.Duration, f func() error) error {
	return testcluster.PollEvery(20*time.Millisecond, timeout, f)
}

var seq atomic.Int64

// subscription is a new Subscription with a name of its own.
func subscription(ns string) *v1.Subscription {
	return &v1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s-%d", seq.Add(1))},
		Spec:       v1.SubscriptionSpec{Product: "Storage Suite", Customer: "Kunde"},
	}
}

func createOne(t *testing.T, ns string) {
	t.Helper()
	eventually(t, 30*time.Second, "a Subscription in "+ns, func() error { return k8s.Create(ctx(t), subscription(ns)) })
}

func countSubscriptions(t *testing.T, namespaces ...string) int64 {
	t.Helper()
	var n int64
	for _, ns := range namespaces {
		n += int64(len(listSubscriptions(t, ns)))
	}
	return n
}

func listSubscriptions(t *testing.T, ns string) []v1.Subscription {
	t.Helper()
	list := &v1.SubscriptionList{}
	if err := k8s.List(ctx(t), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// strictContract creates an open-ended contract for tier Advanced.
func strictContract(t *testing.T, name string, policy v1.QuotaPolicy, limit, maxNS int32) *v1.DistributorContract {
	t.Helper()
	ent := testenv.Tier(v1.TierAdvanced, limit, maxNS)
	ent.QuotaPolicy = policy
	c := testenv.Contract(name, "Bytec", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, ent)
	if err := k8s.Create(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// setLimit sets the contract's Subscription limit.
func setLimit(t *testing.T, name string, limit int32) {
	t.Helper()
	c := &v1.DistributorContract{}
	if err := k8s.Get(ctx(t), types.NamespacedName{Name: name}, c); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	c.Spec.Entitlements[0].Subscriptions = limit
	if err := k8s.Patch(ctx(t), c, patch); err != nil {
		t.Fatal(err)
	}
}

func patchPartner(t *testing.T, name string, edit func(*v1.Partner)) {
	t.Helper()
	p := &v1.Partner{}
	if err := k8s.Get(ctx(t), types.NamespacedName{Name: name}, p); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(p.DeepCopy())
	edit(p)
	if err := k8s.Patch(ctx(t), p, patch); err != nil {
		t.Fatal(err)
	}
}

// partnerReady: the partner is Entitled with the limit, Ready for its
// current generation.
func partnerReady(name string, limit int32) error {
	p := &v1.Partner{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Name: name}, p); err != nil {
		return err
	}
	if p.Status.Phase != v1.PartnerEntitled || p.Status.Subscriptions.Hard != limit {
		return fmt.Errorf("partner %s: phase %s, limit %d, want Entitled with %d", name, p.Status.Phase, p.Status.Subscriptions.Hard, limit)
	}
	if p.Status.ObservedGeneration != p.Generation {
		return fmt.Errorf("partner %s: observedGeneration %d of %d", name, p.Status.ObservedGeneration, p.Generation)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == v1.ConditionReady && c.Status == metav1.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("partner %s: not Ready", name)
}

// partnerUsed: the operator's status counts used Subscriptions.
func partnerUsed(name string, used int32) error {
	p := &v1.Partner{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Name: name}, p); err != nil {
		return err
	}
	if p.Status.Subscriptions.Used != used {
		return fmt.Errorf("partner %s: status counts %d used, want %d", name, p.Status.Subscriptions.Used, used)
	}
	return nil
}

// quotasInForce: each namespace's quota enforces exactly want (spec and
// status).
func quotasInForce(obs *quotaObserver, want map[string]int64) error {
	qs := obs.snapshot()
	for ns, w := range want {
		if q := qs[ns]; q.spec != w || q.status != w {
			return fmt.Errorf("quota in %s: hard %d/%d (spec/status), want %d", ns, q.spec, q.status, w)
		}
	}
	return nil
}
