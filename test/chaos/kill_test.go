package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// killer runs the manager and SIGKILLs it at planned moments, starting a
// new one at once each time, as a Deployment's restart would.
type killer struct {
	t     *testing.T
	cur   *testcluster.ManagerProcess
	kills int
	n     int // managers started
}

func (k *killer) start() {
	k.n++
	k.cur = startManager(k.t, fmt.Sprintf("manager-%d", k.n))
}

// killAt kills the running manager at each moment (in order), restarting it
// after each kill.
func (k *killer) killAt(moments []time.Time) {
	for _, at := range moments {
		if d := time.Until(at); d > 0 {
			time.Sleep(d) // the kill moment itself is the experiment, not a synchronisation
		}
		k.cur.Kill()
		k.kills++
		k.start()
	}
}

// seeded returns n moments after base, spread over span by the seeded
// source, sorted.
func seeded(r *rand.Rand, base time.Time, span time.Duration, n int) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = base.Add(time.Duration(r.Int64N(int64(span))))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// TestKillStorm SIGKILLs the manager at seeded random moments while N
// partners are granted and again around the instant their contract ends
// (half fail over to a second contract, half are revoked), restarting it
// each time. Afterwards every partner must be exactly where the story puts
// it, with nothing lost and nothing announced twice.
func TestKillStorm(t *testing.T) {
	needCluster(t)
	n := setting("CHAOS_PARTNERS", 40)
	kills := setting("CHAOS_KILLS", 6)
	seed := uint64(setting("CHAOS_SEED", int(time.Now().UnixNano()%1_000_000)))
	t.Logf("chaos: %d partners, %d kills, CHAOS_SEED=%d", n, kills, seed)
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))

	end := time.Now().Add(time.Hour) // moved near once all are granted
	ending := testenv.Contract("ks-ending", "Bytec", "DE", time.Now().Add(-time.Hour), end, 0, 0, testenv.AllTiers(3, 1)...)
	next := testenv.Contract("ks-next", "Magirus", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(3, 1)...)
	for _, c := range []client.Object{ending, next} {
		if err := k8s.Create(ctx(t), c); err != nil {
			t.Fatal(err)
		}
	}
	failsOver := func(i int) bool { return i%2 == 0 }
	name := func(i int) string { return fmt.Sprintf("ks-%03d", i) }

	k := &killer{t: t}
	k.start()
	grantStart := time.Now()
	for i := range n {
		contracts := []string{ending.Name}
		if failsOver(i) {
			contracts = append(contracts, next.Name)
		}
		if err := k8s.Create(ctx(t), testenv.Partner(name(i), v1.TierReady, "DE", contracts, name(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Kills while the grant is under way: within the first seconds after
	// the partners were applied.
	k.killAt(seeded(r, grantStart, 3*time.Second, kills/2))
	eventually(t, 3*time.Minute, "every partner granted and Ready", func() error {
		return allPartners(n, func(i int, p *v1.Partner) error {
			if p.Status.Phase != v1.PartnerEntitled || p.Status.Contract != ending.Name {
				return fmt.Errorf("phase %s contract %q", p.Status.Phase, p.Status.Contract)
			}
			return ready(p)
		})
	})
	t.Logf("grant of %d under %d kills: all Ready %.1fs after they were applied", n, k.kills, time.Since(grantStart).Seconds())

	// Data to keep: one Subscription per partner; the UIDs of namespaces
	// and Subscriptions.
	for i := range n {
		sub := &v1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: name(i), Name: "keep"},
			Spec: v1.SubscriptionSpec{Product: "Storage Suite", Customer: "Kunde " + strconv.Itoa(i)}}
		eventually(t, 30*time.Second, "Subscription in "+name(i), func() error { return client.IgnoreAlreadyExists(k8s.Create(ctx(t), sub)) })
	}
	before := uids(t)

	// The contract ends a few seconds from now; kills fall around it.
	end = time.Now().Add(6 * time.Second).Truncate(time.Second)
	patch := client.MergeFrom(ending.DeepCopy())
	ending.Spec.EndsAt = &metav1.Time{Time: end}
	if err := k8s.Patch(ctx(t), ending, patch); err != nil {
		t.Fatal(err)
	}
	k.killAt(seeded(r, end.Add(-1500*time.Millisecond), 4*time.Second, kills-kills/2))
	eventually(t, 3*time.Minute, "every partner failed over or revoked, Ready", func() error {
		return allPartners(n, func(i int, p *v1.Partner) error {
			want, contract := v1.PartnerRevoked, ""
			if failsOver(i) {
				want, contract = v1.PartnerEntitled, next.Name
			}
			if p.Status.Phase != want || p.Status.Contract != contract {
				return fmt.Errorf("phase %s contract %q, want %s %q", p.Status.Phase, p.Status.Contract, want, contract)
			}
			return ready(p)
		})
	})
	t.Logf("expiry of %d under %d kills in all: all done %.1fs after the end", n, k.kills, time.Since(end).Seconds())

	// Exactly the expected children, nothing lost.
	rbs := &rbacv1.RoleBindingList{}
	if err := k8s.List(ctx(t), rbs, client.MatchingLabels{v1.LabelManagedBy: v1.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	bound := map[string]int{}
	for _, b := range rbs.Items {
		bound[b.Namespace]++
	}
	for i := range n {
		want := 0
		if failsOver(i) {
			want = 1
		}
		if bound[name(i)] != want {
			t.Errorf("namespace %s: %d RoleBindings, want %d", name(i), bound[name(i)], want)
		}
		q := &corev1.ResourceQuota{}
		if err := k8s.Get(ctx(t), types.NamespacedName{Namespace: name(i), Name: v1.ResourceQuotaName}, q); err != nil {
			t.Errorf("quota in %s: %v", name(i), err)
			continue
		}
		hard := q.Spec.Hard[v1.SubscriptionQuotaResource]
		if wantHard := map[bool]int64{true: 3, false: 0}[failsOver(i)]; hard.Value() != wantHard {
			t.Errorf("quota in %s: hard %d, want %d", name(i), hard.Value(), wantHard)
		}
	}
	after := uids(t)
	lost := 0
	for key, uid := range before {
		if after[key] != uid {
			lost++
			t.Errorf("%s: UID %s before, %q after: deleted", key, uid, after[key])
		}
	}
	// The record survives every kill, one entry per transition.
	if err := allPartners(n, func(i int, p *v1.Partner) error {
		want := []v1.HistoryOutcome{v1.HistoryRevoked, v1.HistoryGranted}
		if failsOver(i) {
			want[0] = v1.HistoryFailedOver
		}
		var got []v1.HistoryOutcome
		for _, h := range p.Status.History {
			got = append(got, h.Outcome)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("history %v, want %v", got, want)
		}
		return nil
	}); err != nil {
		t.Errorf("status.history after the kills: %v", err)
	}
	twice := announcedTwice(t, n, name)
	t.Logf("chaos result: %d kills survived, %d objects lost, %d transitions announced twice", k.kills, lost, twice)
	if twice > 0 {
		t.Errorf("%d transitions announced twice", twice)
	}
}

// allPartners applies check to each partner ks-000… and joins the failures.
func allPartners(n int, check func(i int, p *v1.Partner) error) error {
	list := &v1.PartnerList{}
	if err := k8s.List(context.Background(), list); err != nil {
		return err
	}
	by := map[string]*v1.Partner{}
	for i := range list.Items {
		by[list.Items[i].Name] = &list.Items[i]
	}
	bad, first := 0, ""
	for i := range n {
		nm := fmt.Sprintf("ks-%03d", i)
		p := by[nm]
		if p == nil {
			return fmt.Errorf("partner %s missing", nm)
		}
		if err := check(i, p); err != nil {
			if bad == 0 {
				first = nm + ": " + err.Error()
			}
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d partners not there yet (first: %s)", bad, n, first)
	}
	return nil
}

func ready(p *v1.Partner) error {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.ConditionReady {
			if c.Status != metav1.ConditionTrue || p.Status.ObservedGeneration != p.Generation {
				return fmt.Errorf("Ready %s (%s), observedGeneration %d of %d", c.Status, c.Reason, p.Status.ObservedGeneration, p.Generation)
			}
			for _, ns := range p.Status.Namespaces {
				if ns.UID == "" {
					return fmt.Errorf("namespace %s: no UID recorded", ns.Name)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("no Ready condition")
}

// uids maps "Namespace/name" and "Subscription/ns/name" to UIDs, for the
// chaos partners' objects.
func uids(t *testing.T) map[string]types.UID {
	t.Helper()
	out := map[string]types.UID{}
	nss := &corev1.NamespaceList{}
	if err := k8s.List(ctx(t), nss, client.MatchingLabels{v1.LabelManagedBy: v1.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss.Items {
		out["Namespace/"+ns.Name] = ns.UID
	}
	subs := &v1.SubscriptionList{}
	if err := k8s.List(ctx(t), subs); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs.Items {
		out["Subscription/"+s.Namespace+"/"+s.Name] = s.UID
	}
	return out
}

// announcedTwice counts partners with more than one event of a transition
// reason (Granted, FailedOver, Revoked). An event may be missing (the
// manager was killed between the status patch and the event); it must
// never be sent twice for one transition.
func announcedTwice(t *testing.T, n int, name func(int) string) int {
	t.Helper()
	evs := &eventsv1.EventList{}
	if err := k8s.List(ctx(t), evs); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range evs.Items {
		if e.Regarding.Kind != "Partner" {
			continue
		}
		switch e.Reason {
		case v1.EventGranted, v1.EventFailedOver, v1.EventRevoked:
			c := 1
			if e.Series != nil {
				c = int(e.Series.Count)
			}
			count[e.Regarding.Name+"/"+e.Reason] += c
		}
	}
	twice := 0
	for i := range n {
		for _, reason := range []string{v1.EventGranted, v1.EventFailedOver, v1.EventRevoked} {
			if c := count[name(i)+"/"+reason]; c > 1 {
				twice++
				t.Errorf("partner %s: %d %s events, want at most 1", name(i), c, reason)
			}
		}
	}
	return twice
}
