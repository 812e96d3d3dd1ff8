package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

func rawFrom(rv string) *metav1.ListOptions { return &metav1.ListOptions{ResourceVersion: rv} }

// scaleRun is one run's partners and contracts.
type scaleRun struct {
	b   *testing.B
	n   int
	m   *manager
	ctx context.Context
	// first supplies every partner and ends at firstEnds; second supplies
	// the even-numbered ones after it.
	first, second string
	firstEnds     time.Time
	partners      []string
	grantTook     time.Duration
	// withRecord is the bare client's time with the record (record_test.go),
	// zero when SCALE_SKIP has record.
	withRecord struct{ grant, expiry time.Duration }
}

func newScaleRun(b *testing.B, n int) *scaleRun {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	b.Cleanup(cancel)
	return &scaleRun{b: b, n: n, ctx: ctx}
}

func (s *scaleRun) must(err error) {
	s.b.Helper()
	if err != nil {
		s.b.Fatal(err)
	}
}

// baselineGrant is the minimal API work of a grant, by a bare client with
// 8 workers: a namespace, a RoleBinding to the tier's role and a quota
// each.
func (s *scaleRun) baselineGrant(prefix string) time.Duration {
	start := time.Now()
	s.must(parallel(s.n, workers, func(i int) error {
		_, err := s.bareChildren(prefix, fmt.Sprintf("%s-%d", prefix, i))
		return err
	}))
	return time.Since(start)
}

// bareChildren creates one partner's namespace, RoleBinding and quota as
// the bare client does, and returns the namespace as created.
func (s *scaleRun) bareChildren(prefix, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": prefix}}}
	if err := k8s.Create(s.ctx, ns); err != nil {
		return nil, err
	}
	if err := k8s.Create(s.ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: v1.RoleBindingName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: v1.DefaultClusterRole(v1.TierReady)},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: name + "-admins"}},
	}); err != nil {
		return nil, err
	}
	return ns, k8s.Create(s.ctx, &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: v1.ResourceQuotaName},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			v1.SubscriptionQuotaResource: resource.MustParse("10")}},
	})
}

// quotasCounted waits until kube-controller-manager has counted
// Subscriptions in every quota of the prefix's namespaces and caught up
// with its spec (status.hard is spec.hard): until the count the API
// server refuses every Subscription there, so a namespace is not usable
// before (the operator's Ready waits for the same); after a change of
// the spec, waiting for the recount keeps it out of the clocks that
// follow.
func (s *scaleRun) quotasCounted(prefix string) {
	s.must(testcluster.PollEvery(200*time.Millisecond, 30*time.Minute, func() error {
		list := &corev1.ResourceQuotaList{}
		if err := k8s.List(s.ctx, list); err != nil {
			return err
		}
		counted, pending := 0, ""
		for _, q := range list.Items {
			if !strings.HasPrefix(q.Namespace, prefix+"-") {
				continue
			}
			want, got := q.Spec.Hard[v1.SubscriptionQuotaResource], q.Status.Hard[v1.SubscriptionQuotaResource]
			if _, ok := q.Status.Used[v1.SubscriptionQuotaResource]; ok && want.Cmp(got) == 0 {
				counted++
			} else if pending == "" {
				pending = q.Namespace
			}
		}
		if counted < s.n {
			return fmt.Errorf("%d of %d quotas counted (%s is not)", counted, s.n, pending)
		}
		return nil
	}))
}

// baselineExpiry is the minimal API work of the mass expiry: for the half
// that is revoked, delete the RoleBinding and zero the quota (the half that
// fails over to a contract with the same role and limits needs no child
// written).
func (s *scaleRun) baselineExpiry(prefix string) time.Duration {
	start := time.Now()
	s.must(parallel(s.n/2, workers, func(i int) error {
		return s.bareRevoke(fmt.Sprintf("%s-%d", prefix, 2*i+1))
	}))
	return time.Since(start)
}

// bareRevoke is the bare client's revocation of one namespace: its
// RoleBinding deleted and its quota zeroed with a merge patch.
func (s *scaleRun) bareRevoke(ns string) error {
	if err := k8s.Delete(s.ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1.RoleBindingName}}); err != nil {
		return err
	}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"hard":{%q:"0"}}}`, v1.SubscriptionQuotaResource))
	return k8s.Patch(s.ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1.ResourceQuotaName}}, patch)
}

// bareAfter runs the bare client's grant a second time, last: on a
// cluster that holds the operator's N partners and namespaces as well as
// the bare client's first N, where its first grant ran on an empty one and
// the operator's on one with the bare client's N. If the bare client's
// per-partner time grows as much as the operator's from 1,000 to 10,000
// when it too runs on the fuller cluster, the growth is the control
// plane's cost per object stored, not the operator's.
func (s *scaleRun) bareAfter(r *report) {
	first := 0.0
	for _, f := range r.Figures {
		if f.Name == "grant: until every Partner is Entitled (s)" {
			first = f.Baseline
		}
	}
	// Quiet first: the jobs before leave writes behind (the expiry's held
	// events and views, kube-controller-manager's recounts), which would
	// be counted against the bare client.
	total := func() float64 {
		var n float64
		for k, v := range serverWrites(s.b) {
			if !strings.HasPrefix(k, "PUT leases") {
				n += v
			}
		}
		return n
	}
	last, quietSince := total(), time.Now()
	s.must(testcluster.PollEvery(time.Second, 10*time.Minute, func() error {
		if now := total(); now != last {
			last, quietSince = now, time.Now()
		}
		if time.Since(quietSince) < 10*time.Second {
			return fmt.Errorf("writes still coming (%v total)", last)
		}
		return nil
	}))
	again := s.baselineGrant("sa")
	r.add("grant: the bare client again, last, on the fuller cluster (s)", again.Seconds(), first)
}

// grant: N partners, one namespace each, until every one is Entitled. The
// even-numbered partners list a second, open-ended contract after the
// first. Then the first contract's end is set (the distributor announces
// it), far enough ahead for every partner to have planned for it.
func (s *scaleRun) grant(r *report) {
	baseStart := time.Now()
	base := s.baselineGrant("sg")
	s.quotasCounted("sg")
	baseUsable := time.Since(baseStart)
	s.first, s.second = "scale-first", "scale-second"
	if !strings.Contains(os.Getenv("SCALE_SKIP"), "record") {
		// Before the manager starts, and waited out (the quota recounts),
		// so that none of it lands in the operator's clocks.
		s.installRecordCRD()
		var rvs []string
		s.withRecord.grant, rvs = s.recordGrant("sr")
		s.quotasCounted("sr")
		s.withRecord.expiry = s.recordExpiry("sr", rvs)
		s.quotasCounted("sr")
	}
	s.m = startManager(s.b, "manager")
	start := time.Now()
	first := testenv.Contract(s.first, "Bytec", "DE", start.Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(10, 1)...)
	second := testenv.Contract(s.second, "Magirus", "DE", start.Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(10, 1)...)
	s.must(k8s.Create(s.ctx, first))
	s.must(k8s.Create(s.ctx, second))
	writes, server, lat, conflicts := s.m.writes(s.b), serverWrites(s.b), s.m.means(s.b), s.m.conflicts(s.b)
	requests := serverRequests(s.b, true)
	profiled := s.profile("grant", 30*time.Second)
	cpu, cpuFrom := cpuTimes(), time.Now()
	s.partners = make([]string, s.n)
	for i := range s.n {
		s.partners[i] = fmt.Sprintf("sp-%d", i)
	}
	s.must(parallel(s.n, workers, func(i int) error {
		contracts := []string{s.first}
		if i%2 == 0 {
			contracts = append(contracts, s.second)
		}
		return k8s.Create(s.ctx, testenv.Partner(s.partners[i], v1.TierReady, "DE", contracts, s.partners[i]))
	}))
	// Entitled in status (namespace, RoleBinding and quota written) comes
	// first; Ready also needs the quota counted by kube-controller-manager,
	// so that the API server admits Subscriptions.
	entitledAt := map[string]time.Time{}
	var cpuEntitled, requestsEntitled string
	waitPartners(s.b, 30*time.Minute, s.partners, func(p *v1.Partner) bool {
		entitled := p.Status.Phase == v1.PartnerEntitled && p.Status.Contract == s.first
		if _, seen := entitledAt[p.Name]; entitled && !seen {
			entitledAt[p.Name] = time.Now()
			if len(entitledAt) == s.n {
				// Where the time to Entitled went, reads included (the
				// grant's per-partner growth from 1,000 to 10,000).
				cpuEntitled = cpuSince(cpu, cpuFrom)
				requestsEntitled = breakdown(requests, serverRequests(s.b, true), s.n)
			}
		}
		return entitled && conditionTrue(p, v1.ConditionReady)
	})
	took := time.Since(start)
	var lastEntitled time.Time
	for _, at := range entitledAt {
		if at.After(lastEntitled) {
			lastEntitled = at
		}
	}
	r.add("grant: until every Partner is Entitled (s)", lastEntitled.Sub(start).Seconds(), base.Seconds())
	if s.withRecord.grant > 0 {
		r.add("grant: until every Partner is Entitled, against the bare client with the record (s)", lastEntitled.Sub(start).Seconds(), s.withRecord.grant.Seconds())
	}
	r.add("grant: until every Partner is Ready, its quota counted (s)", took.Seconds(), baseUsable.Seconds())
	r.add("grant: writes per partner", (s.m.writes(s.b)-writes)/float64(s.n), 3)
	r.add("grant: conflicts (409) per partner", (s.m.conflicts(s.b)-conflicts)/float64(s.n), 0)
	r.Notes = append(r.Notes, "grant, writes per partner at the API server (every client): "+breakdown(server, serverWrites(s.b), s.n),
		"grant, the manager's mean latencies (count): "+s.m.means(s.b).since(lat),
		"grant, CPU until every partner was Ready: "+cpuSince(cpu, cpuFrom),
		"grant, CPU until every partner was Entitled: "+cpuEntitled,
		"grant, requests per partner at the API server until every partner was Entitled (every client, reads included): "+requestsEntitled)
	profiled()
	r.GrantMsPerPartner = float64(took.Milliseconds()) / float64(s.n)
	s.grantTook = took

	// Announce the end: every partner re-plans (status.next, the
	// namespaces' view) before it comes. The lead is the grant's time
	// plus 20 s: re-planning writes less than granting.
	writes = s.m.writes(s.b)
	announced := time.Now()
	s.firstEnds = announced.Add(20*time.Second + took).Truncate(time.Second).Add(time.Second)
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"endsAt":%q}}`, s.firstEnds.UTC().Format(time.RFC3339)))
	s.must(k8s.Patch(s.ctx, first, patch))
	waitPartners(s.b, time.Until(s.firstEnds)-time.Second, s.partners, func(p *v1.Partner) bool {
		return p.Status.EntitledUntil != nil && p.Status.EntitledUntil.Time.Equal(s.firstEnds)
	})
	r.add("end announced: until every Partner shows it (s)", time.Since(announced).Seconds(), 0)
	r.add("end announced: writes per partner", (s.m.writes(s.b)-writes)/float64(s.n), 0)
}

func conditionTrue(p *v1.Partner, t string) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// massExpiry: the first contract ends; half the partners fail over to the
// second, half are revoked. Lags are from the instant to each partner's
// status showing it (written after its children).
func (s *scaleRun) massExpiry(r *report) {
	cpu, cpuFrom := cpuTimes(), time.Now()
	base := s.baselineExpiry("sg")
	r.Notes = append(r.Notes, "mass expiry, CPU of the bare client's run: "+cpuSince(cpu, cpuFrom))
	writes, server, lat := s.m.writes(s.b), serverRequests(s.b, true), s.m.means(s.b)
	select {
	case <-time.After(time.Until(s.firstEnds) - time.Second):
	case <-s.ctx.Done():
	}
	var revoked []string
	for i := 1; i < s.n; i += 2 {
		revoked = append(revoked, s.partners[i])
	}
	access := s.accessGone(revoked)
	statusAt := s.phaseSeen(s.first, v1.ContractExpired)
	sellRevoked, sellFailover := s.sellers(setting("SCALE_SELLERS", 10))
	doneSelling := make(chan struct{})
	sold := s.sellAcross(s.firstEnds, sellRevoked, sellFailover, doneSelling)
	writesBefore := s.m.writes(s.b)
	profiled := s.profile("expiry", 20*time.Second)
	cpu, cpuFrom = cpuTimes(), time.Now()
	at := waitPartners(s.b, 30*time.Minute, s.partners, func(p *v1.Partner) bool {
		var i int
		_, _ = fmt.Sscanf(p.Name, "sp-%d", &i)
		if i%2 == 0 {
			return p.Status.Contract == s.second && p.Status.Phase == v1.PartnerEntitled
		}
		return p.Status.Phase == v1.PartnerRevoked
	})
	close(doneSelling)
	lastRefused := s.sellingStopped(r, sold(), sellRevoked, sellFailover, statusAt(), writesBefore)
	l := lags(at, func(string) time.Time { return s.firstEnds })
	if l[0] < 0 {
		s.b.Fatalf("a partner moved %.0f ms before its contract ended", -l[0])
	}
	r.add("mass expiry: last partner done after the instant (s)", l[len(l)-1]/1000, base.Seconds())
	if s.withRecord.expiry > 0 {
		r.add("mass expiry: last partner done, against the bare client with the record (s)", l[len(l)-1]/1000, s.withRecord.expiry.Seconds())
	}
	r.add("mass expiry: p50 lag (s)", quantile(l, 0.5)/1000, base.Seconds()/2)
	r.add("mass expiry: p99 lag (s)", quantile(l, 0.99)/1000, base.Seconds())
	r.add("mass expiry: writes per partner", (s.m.writes(s.b)-writes)/float64(s.n), 1)
	gone := lags(access(), func(string) time.Time { return s.firstEnds })
	stillBound := 0
	for _, g := range gone {
		if g > lastRefused {
			stillBound++
		}
	}
	r.add("contract's end: revoked partners' RoleBindings still there when the last seller was refused", float64(stillBound), 0)
	r.add("mass expiry: revoked partners' access gone, p50 (s)", quantile(gone, 0.5)/1000, 0)
	r.add("mass expiry: revoked partners' access gone, last (s)", gone[len(gone)-1]/1000, 0)
	r.Notes = append(r.Notes, "mass expiry, requests per partner at the API server until the last was done: "+breakdown(server, serverRequests(s.b, true), s.n),
		"mass expiry, the manager's mean latencies (count): "+s.m.means(s.b).since(lat),
		"mass expiry, CPU from a second before the instant to the last partner done: "+cpuSince(cpu, cpuFrom))
	for _, name := range []string{s.partners[0], s.partners[1]} {
		r.Notes = append(r.Notes, s.objectSize(name))
	}
	profiled()
}

// steadyState: once the manager is quiet after the expiry (no write for
// 5 s), the writes it makes in the window that follows.
func (s *scaleRun) steadyState(r *report, window time.Duration) {
	settled := s.m.quiet(s.b, 5*time.Second, 5*time.Minute)
	r.Notes = append(r.Notes, fmt.Sprintf("after the mass expiry the manager's last write came %.1f s after the last partner was done", settled.Seconds()))
	before := s.m.writes(s.b)
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		if err := s.m.Exited(); err != nil {
			s.b.Fatal(err)
		}
		select {
		case <-time.After(time.Second):
		case <-s.ctx.Done():
			s.b.Fatal(s.ctx.Err())
		}
	}
	r.add(fmt.Sprintf("steady state: writes in %s", window), s.m.writes(s.b)-before, 0)
}

// staggered: k contracts, one partner each, ending in turn: ten per second
// (contract ends are whole seconds, so 100 ms apart on average). Lag is
// from each partner's own contract end to its status showing it revoked.
func (s *scaleRun) staggered(r *report, k int) {
	start := time.Now()
	// Ahead by 20 s plus twice what granting k partners took above.
	lead := 20*time.Second + 2*s.grantTook*time.Duration(k)/time.Duration(s.n)
	t0 := start.Add(lead).Truncate(time.Second)
	ends := map[string]time.Time{}
	names := make([]string, k)
	s.must(parallel(k, workers, func(i int) error {
		end := t0.Add(time.Duration(i/10) * time.Second)
		c := testenv.Contract(fmt.Sprintf("st-c-%d", i), "Bytec", "DE", start.Add(-time.Hour), end, 0, 0, testenv.AllTiers(10, 1)...)
		if err := k8s.Create(s.ctx, c); err != nil {
			return err
		}
		names[i] = fmt.Sprintf("st-p-%d", i)
		return k8s.Create(s.ctx, testenv.Partner(names[i], v1.TierReady, "DE", []string{c.Name}, names[i]))
	}))
	for i, n := range names {
		ends[n] = t0.Add(time.Duration(i/10) * time.Second)
	}
	waitPartners(s.b, time.Until(t0), names, func(p *v1.Partner) bool { return p.Status.Phase == v1.PartnerEntitled })
	select {
	case <-time.After(time.Until(t0) - 500*time.Millisecond):
	case <-s.ctx.Done():
	}
	writes, server := s.m.writes(s.b), serverRequests(s.b, false)
	at := waitPartners(s.b, 10*time.Minute, names, func(p *v1.Partner) bool { return p.Status.Phase == v1.PartnerRevoked })
	l := lags(at, func(name string) time.Time { return ends[name] })
	r.add("staggered expiry: p50 lag (ms)", quantile(l, 0.5), 0)
	r.add("staggered expiry: p99 lag (ms)", quantile(l, 0.99), 0)
	r.add("staggered expiry: max lag (ms)", l[len(l)-1], 0)
	// Every write a revocation brought, its contract's and the deferred
	// pass's included: until the manager has been quiet for 5 s.
	s.m.quiet(s.b, 5*time.Second, 5*time.Minute)
	r.add("staggered expiry: writes per partner", (s.m.writes(s.b)-writes)/float64(k), 0)
	r.Notes = append(r.Notes, "staggered expiry, writes per partner at the API server (every client, its contract's included): "+breakdown(server, serverRequests(s.b, false), k))
}

// memory: the manager's peak RSS from a fresh start until it is quiet,
// without and then with unrelated namespaces and ConfigMaps in the cluster.
func (s *scaleRun) memory(r *report, namespaces, configMaps int) {
	s.m.Stop()
	peak := func(name string) float64 {
		m := startManager(s.b, name)
		defer m.Stop()
		m.quiet(s.b, 10*time.Second, 10*time.Minute)
		return m.peakRSS(s.b)
	}
	without := peak("memory-without")
	s.must(parallel(namespaces, 2*workers, func(i int) error {
		return k8s.Create(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%d", i)}})
	}))
	s.must(parallel(configMaps, 2*workers, func(i int) error {
		return k8s.Create(s.ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("unrelated-%d", i%namespaces), Name: fmt.Sprintf("cm-%d", i)},
			Data:       map[string]string{"payload": fmt.Sprintf("%0512d", i)},
		})
	}))
	with := peak("memory-with")
	r.add(fmt.Sprintf("peak RSS with %d unrelated namespaces and %d ConfigMaps (MiB)", namespaces, configMaps), with, without)
}

// objectSize describes a Partner's size in JSON, whole and its parts: each
// status write costs the API server in proportion (decode, patch,
// validate, encode, send to each watcher).
func (s *scaleRun) objectSize(name string) string {
	p := &v1.Partner{}
	s.must(k8s.Get(s.ctx, types.NamespacedName{Name: name}, p))
	size := func(v any) int {
		data, err := json.Marshal(v)
		s.must(err)
		return len(data)
	}
	return fmt.Sprintf("Partner %s (%s): %d bytes of JSON; managedFields %d, spec %d, status %d (conditions %d, history %d, namespaces %d)",
		name, p.Status.Phase, size(p), size(p.ManagedFields), size(p.Spec), size(p.Status),
		size(p.Status.Conditions), size(p.Status.History), size(p.Status.Namespaces))
}

// accessGone watches the RoleBindings of the named namespaces from now and
// returns a function that waits until each is deleted and returns when
// each was: how long a revoked partner's people kept access.
func (s *scaleRun) accessGone(namespaces []string) func() map[string]time.Time {
	want := map[string]bool{}
	for _, ns := range namespaces {
		want[ns] = true
	}
	list := &rbacv1.RoleBindingList{}
	s.must(k8s.List(s.ctx, list, client.MatchingLabels{v1.LabelManagedBy: v1.ManagedByValue}))
	w, err := watcher.Watch(s.ctx, &rbacv1.RoleBindingList{}, client.MatchingLabels{v1.LabelManagedBy: v1.ManagedByValue},
		&client.ListOptions{Raw: rawFrom(list.ResourceVersion)})
	s.must(err)
	at := map[string]time.Time{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			rb, ok := ev.Object.(*rbacv1.RoleBinding)
			if ok && ev.Type == watch.Deleted && want[rb.Namespace] && rb.Name == v1.RoleBindingName {
				at[rb.Namespace] = time.Now()
				if len(at) == len(want) {
					return
				}
			}
		}
	}()
	return func() map[string]time.Time {
		select {
		case <-done:
		case <-time.After(time.Minute):
		}
		w.Stop()
		<-done
		if len(at) < len(want) {
			s.b.Fatalf("%d of %d revoked partners' RoleBinding deletions seen (a minute after every partner was done, or the watch closed)", len(at), len(want))
		}
		return at
	}
}
