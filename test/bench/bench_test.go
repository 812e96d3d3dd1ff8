// Package bench measures the operator on the real local control plane:
// convergence and failover at scale, the quota overshoot window, and what
// unrelated namespaces cost the manager. Run with `make bench`; each
// benchmark prints its figures (b.ReportMetric) next to a baseline measured
// in the same run, so ratios, not absolute numbers, are what to compare.
package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var (
	cluster *testcluster.Cluster
	k8s     client.Client
	watcher client.WithWatch
	seq     atomic.Int64
)

func TestMain(m *testing.M) {
	flag.Parse()
	// Only benchmarks use the control plane; `go test ./...` runs nothing here.
	benchmarking := false
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		benchmarking = true
	}
	os.Exit(testcluster.RunTests(m, benchmarking, testcluster.Options{}, func(c *testcluster.Cluster) error {
		cluster = c
		var err error
		if k8s, err = client.New(c.Config, client.Options{Scheme: controllers.NewScheme()}); err != nil {
			return err
		}
		if watcher, err = client.NewWithWatch(c.Config, client.Options{Scheme: controllers.NewScheme()}); err != nil {
			return err
		}
		for _, r := range testenv.TierRoles() {
			if err := k8s.Create(context.Background(), r); err != nil {
				return err
			}
		}
		return nil
	}))
}

func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// waitAll watches partners until ok holds for every one of names and
// returns when each first did (event arrival time: no polling load on the
// API server that would distort what is measured).
func waitAll(b *testing.B, timeout time.Duration, names []string, ok func(*v1.Partner) bool) map[string]time.Time {
	b.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	done := map[string]time.Time{}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w, err := watcher.Watch(ctx, &v1.PartnerList{})
	must(b, err)
	defer w.Stop()
	for len(done) < len(names) {
		select {
		case ev, open := <-w.ResultChan():
			if !open {
				b.Fatalf("watch closed with %d of %d partners done", len(done), len(names))
			}
			p, isPartner := ev.Object.(*v1.Partner)
			if !isPartner || !want[p.Name] {
				continue
			}
			if _, seen := done[p.Name]; !seen && ok(p) {
				done[p.Name] = time.Now()
			}
		case <-ctx.Done():
			b.Fatalf("%d of %d partners done after %s", len(done), len(names), timeout)
		}
	}
	return done
}

// BenchmarkConverge: time for N new partners (one namespace each) to be
// entitled, per partner, for N=10 (baseline) and N=100.
func BenchmarkConverge(b *testing.B) {
	m, err := testenv.StartManager(cluster.Config, testenv.ManagerOptions{})
	must(b, err)
	defer m.Stop()
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("partners=%d", n), func(b *testing.B) {
			for range b.N {
				c := testenv.Contract(uniq("cv-c"), "Magirus", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(10, 1)...)
				must(b, k8s.Create(context.Background(), c))
				writes := m.Writes.Load()
				start := time.Now()
				names := make([]string, n)
				for i := range n {
					names[i] = uniq("cv-p")
					must(b, k8s.Create(context.Background(), testenv.Partner(names[i], v1.TierReady, "DE", []string{c.Name}, names[i])))
				}
				waitAll(b, 5*time.Minute, names, func(p *v1.Partner) bool { return p.Status.Phase == v1.PartnerEntitled })
				el := time.Since(start)
				b.ReportMetric(float64(el.Milliseconds())/float64(n), "ms/partner")
				b.ReportMetric(float64(m.Writes.Load()-writes)/float64(n), "writes/partner")
			}
		})
	}
}

// BenchmarkFailoverAtScale: N partners supplied by a contract that ends a
// few seconds ahead fail over to the next one. Reports the lag of the
// median and the last partner after the instant, for N=10 and N=100.
func BenchmarkFailoverAtScale(b *testing.B) {
	m, err := testenv.StartManager(cluster.Config, testenv.ManagerOptions{})
	must(b, err)
	defer m.Stop()
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("partners=%d", n), func(b *testing.B) {
			for range b.N {
				second := testenv.Contract(uniq("fs-next"), "Magirus", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(10, 1)...)
				ends := time.Now().Truncate(time.Second).Add(time.Duration(10+n/10) * time.Second)
				first := testenv.Contract(uniq("fs-first"), "Bytec", "DE", time.Now().Add(-time.Hour), ends, 0, 0, testenv.AllTiers(10, 1)...)
				must(b, k8s.Create(context.Background(), second))
				must(b, k8s.Create(context.Background(), first))
				names := make([]string, n)
				for i := range n {
					names[i] = uniq("fs-p")
					must(b, k8s.Create(context.Background(), testenv.Partner(names[i], v1.TierReady, "DE", []string{first.Name, second.Name}, names[i])))
				}
				waitAll(b, 5*time.Minute, names, func(p *v1.Partner) bool { return p.Status.Contract == first.Name })
				if time.Now().After(ends) {
					b.Fatalf("partners converged only after the contract ended; raise the lead time")
				}
				moved := waitAll(b, 5*time.Minute, names, func(p *v1.Partner) bool { return p.Status.Contract == second.Name })
				lags := make([]float64, 0, n)
				for _, at := range moved {
					lags = append(lags, at.Sub(ends).Seconds()*1000)
				}
				sort.Float64s(lags)
				b.ReportMetric(lags[len(lags)/2], "p50-lag-ms")
				b.ReportMetric(lags[len(lags)-1], "max-lag-ms")
			}
		})
	}
}

// BenchmarkQuotaOvershoot: a partner with a limit of 10 over two
// namespaces; 20 Subscriptions are created at once in each. Reports how
// many were admitted beyond the limit: the documented window of quotaPolicy
// Shared, and none for Strict.
func BenchmarkQuotaOvershoot(b *testing.B) {
	m, err := testenv.StartManager(cluster.Config, testenv.ManagerOptions{})
	must(b, err)
	defer m.Stop()
	const limit = 10
	for _, policy := range []v1.QuotaPolicy{v1.QuotaShared, v1.QuotaStrict} {
		b.Run("policy="+string(policy), func(b *testing.B) {
			var total, worst, rounds int
			ent := testenv.Tier(v1.TierAdvanced, limit, 2)
			ent.QuotaPolicy = policy
			c := testenv.Contract(uniq("qo-c"), "Magirus", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, ent)
			must(b, k8s.Create(context.Background(), c))
			for range b.N {
				name := uniq("qo-p")
				nsA, nsB := name+"-a", name+"-b"
				must(b, k8s.Create(context.Background(), testenv.Partner(name, v1.TierAdvanced, "DE", []string{c.Name}, nsA, nsB)))
				share := int64(limit)
				if policy == v1.QuotaStrict {
					share = limit / 2
				}
				for _, ns := range []string{nsA, nsB} {
					must(b, waitQuota(ns, share))
				}
				var admitted atomic.Int64
				var wg sync.WaitGroup
				for _, ns := range []string{nsA, nsB} {
					for i := range 20 {
						wg.Go(func() {
							if k8s.Create(context.Background(), subscription(ns, fmt.Sprintf("s-%d", i))) == nil {
								admitted.Add(1)
							}
						})
					}
				}
				wg.Wait()
				over := max(int(admitted.Load())-limit, 0)
				total += over
				worst = max(worst, over)
				rounds++
			}
			b.ReportMetric(float64(total)/float64(rounds), "overshoot/round")
			b.ReportMetric(float64(worst), "max-overshoot")
			b.ReportMetric(limit, "limit")
		})
	}
}

// BenchmarkStrictHeadroomMove: quotaPolicy Strict, a limit of 10 over two
// namespaces (5 each). Subscriptions are created one after the other in
// the first namespace only, each retried every 20 ms until admitted: once
// its share is used, each create waits for the operator to lower the other
// namespace's limit, for kube-controller-manager to put it in force, and
// for the raise. Reports how long the creates that had to wait waited.
func BenchmarkStrictHeadroomMove(b *testing.B) {
	m, err := testenv.StartManager(cluster.Config, testenv.ManagerOptions{})
	must(b, err)
	defer m.Stop()
	const limit = 10
	ent := testenv.Tier(v1.TierAdvanced, limit, 2)
	ent.QuotaPolicy = v1.QuotaStrict
	c := testenv.Contract(uniq("hm-c"), "Magirus", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, ent)
	must(b, k8s.Create(context.Background(), c))
	var waits []float64
	for range b.N {
		name := uniq("hm-p")
		nsA, nsB := name+"-a", name+"-b"
		must(b, k8s.Create(context.Background(), testenv.Partner(name, v1.TierAdvanced, "DE", []string{c.Name}, nsA, nsB)))
		must(b, waitQuota(nsA, limit/2))
		must(b, waitQuota(nsB, limit/2))
		for i := range limit {
			start, refused := time.Now(), false
			must(b, testcluster.PollEvery(20*time.Millisecond, time.Minute, func() error {
				err := k8s.Create(context.Background(), subscription(nsA, fmt.Sprintf("s-%d", i)))
				refused = refused || err != nil
				return err
			}))
			if refused {
				waits = append(waits, float64(time.Since(start).Milliseconds()))
			}
		}
	}
	sort.Float64s(waits)
	if len(waits) == 0 {
		b.Fatal("no create had to wait: the share was never used up")
	}
	b.ReportMetric(waits[len(waits)/2], "p50-wait-ms")
	b.ReportMetric(waits[len(waits)-1], "max-wait-ms")
	b.ReportMetric(float64(len(waits))/float64(b.N), "waits/round")
}

func subscription(ns, name string) *v1.Subscription {
	return &v1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.SubscriptionSpec{Product: "p", Customer: "c"}}
}

// waitQuota waits until a namespace's quota has limit as both its spec and
// its status (in force) limit.
func waitQuota(ns string, limit int64) error {
	return testcluster.Poll(time.Minute, func() error {
		q := &corev1.ResourceQuota{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: v1.ResourceQuotaName}, q); err != nil {
			return err
		}
		h, sh := q.Spec.Hard[v1.SubscriptionQuotaResource], q.Status.Hard[v1.SubscriptionQuotaResource]
		if h.Value() != limit || sh.Value() != limit {
			return fmt.Errorf("quota %s: spec hard %s, status hard %s, want %d", ns, h.String(), sh.String(), limit)
		}
		return nil
	})
}

// BenchmarkQuotaUndercount measures the quota undercount race
// (docs/architecture.md): one namespace (no spread, so no overshoot
// window of the operator's), filled to the limit; each round deletes one
// Subscription — kube-controller-manager then recounts from its informer —
// while 10 creates race it. Kubernetes guarantees at most the freed slot;
// anything more is the undercount. Reported: the largest and the mean
// excess over the limit right after a round.
func BenchmarkQuotaUndercount(b *testing.B) {
	m, err := testenv.StartManager(cluster.Config, testenv.ManagerOptions{})
	must(b, err)
	defer m.Stop()
	const limit, rounds = 10, 10
	var worst, sum, n int
	for range b.N {
		c := testenv.Contract(uniq("qu-c"), "Magirus", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierReady, limit, 1))
		name := uniq("qu-p")
		must(b, k8s.Create(context.Background(), c))
		must(b, k8s.Create(context.Background(), testenv.Partner(name, v1.TierReady, "DE", []string{c.Name}, name)))
		next := 0
		create := func() bool {
			next++
			s := &v1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: fmt.Sprintf("s-%d", next)},
				Spec: v1.SubscriptionSpec{Product: "p", Customer: "c"}}
			return k8s.Create(context.Background(), s) == nil
		}
		for held := 0; held < limit; {
			must(b, testcluster.Poll(time.Minute, func() error {
				if !create() {
					return fmt.Errorf("Subscription %d of %d not admitted yet", held+1, limit)
				}
				return nil
			}))
			held++
		}
		for range rounds {
			list := &v1.SubscriptionList{}
			must(b, k8s.List(context.Background(), list, client.InNamespace(name)))
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); _ = k8s.Delete(context.Background(), &list.Items[0]) }()
			names := make([]string, 10)
			for i := range names {
				next++
				names[i] = fmt.Sprintf("s-%d", next)
			}
			for _, nm := range names {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := &v1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: nm}, Spec: v1.SubscriptionSpec{Product: "p", Customer: "c"}}
					_ = k8s.Create(context.Background(), s)
				}()
			}
			wg.Wait()
			after := &v1.SubscriptionList{}
			must(b, k8s.List(context.Background(), after, client.InNamespace(name)))
			excess := max(0, len(after.Items)-limit)
			worst, sum, n = max(worst, excess), sum+excess, n+1
		}
	}
	b.ReportMetric(float64(worst), "max-excess")
	b.ReportMetric(float64(sum)/float64(n), "mean-excess/round")
	b.ReportMetric(limit, "limit")
}

// BenchmarkUnrelatedNamespaces: what 3000 namespaces the operator does not
// manage cost a starting manager, in bytes read from the API server until
// its caches are synced and its first reconciles done, against the same
// manager before they existed (baseline), and against a manager whose cache
// is not label-selected.
func BenchmarkUnrelatedNamespaces(b *testing.B) {
	for range b.N {
		base := managerStartBytes(b, false)
		for i := range 3000 {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%d-%d", seq.Load(), i)}}
			must(b, k8s.Create(context.Background(), ns))
		}
		seq.Add(1)
		with := managerStartBytes(b, false)
		unfiltered := managerStartBytes(b, true)
		b.ReportMetric(base/1024, "KiB-baseline")
		b.ReportMetric(with/1024, "KiB-with-3000-unrelated")
		b.ReportMetric(with/base, "ratio-selected")
		b.ReportMetric(unfiltered/base, "ratio-unselected")
	}
}

// managerStartBytes starts a manager, waits until it is idle, and returns
// how many response bytes it read.
func managerStartBytes(b *testing.B, unfiltered bool) float64 {
	b.Helper()
	m, err := testenv.StartManager(cluster.Config, testenv.ManagerOptions{UnfilteredCache: unfiltered})
	must(b, err)
	defer m.Stop()
	// Idle: no request for half a second (the first reconciles are done).
	must(b, testcluster.Poll(time.Minute, func() error {
		r := m.Requests.Load()
		time.Sleep(500 * time.Millisecond)
		if m.Requests.Load() != r {
			return fmt.Errorf("still busy")
		}
		return nil
	}))
	return float64(m.BytesRead.Load())
}
