package scale

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
)

// sellEvery is how often each seller tries to sell across the instant.
const sellEvery = 50 * time.Millisecond

// sales is what the sellers saw across a contract's end.
type sales struct {
	// refusedAt is, per revoked partner, when its first refused create
	// was sent: selling has stopped for a request sent then.
	refusedAt map[string]time.Time
	// admittedAfterRefusal counts a revoked partner's creates admitted
	// after one was refused (selling must stay stopped).
	admittedAfterRefusal int
	// failoverRefused counts the failover partners' refused creates.
	failoverRefused int
	// failoverSales counts their creates in all.
	failoverSales int
	// errors counts answers that were neither an admission nor a refusal.
	errors int
}

// sellAcross has partners' users try to sell from a second before the
// instant until done is closed: each creates a Subscription with dry run
// (the whole admission chain — RBAC as a member of the partner's group,
// the admission policies, quota — and nothing stored) every sellEvery, in
// its partner's namespace.
func (s *scaleRun) sellAcross(instant time.Time, revoked, failover []string, done <-chan struct{}) func() sales {
	out := sales{refusedAt: map[string]time.Time{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sell := func(partner string, isRevoked bool) {
		defer wg.Done()
		cfg := rest.CopyConfig(cluster.Config)
		cfg.QPS, cfg.Burst = -1, 0
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "seller@" + partner, Groups: []string{partner + "-admins", "system:authenticated"}}
		c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
		s.must(err)
		tick := time.NewTicker(sellEvery)
		defer tick.Stop()
		select {
		case <-time.After(time.Until(instant) - time.Second):
		case <-s.ctx.Done():
			return
		}
		for i := 0; ; i++ {
			sub := &v1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: partner, Name: fmt.Sprintf("sale-%d", i)},
				Spec: v1.SubscriptionSpec{Product: "Storage Suite", Customer: "Musterstadt"}}
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			at := time.Now()
			err := c.Create(ctx, sub, client.DryRunAll)
			cancel()
			refused := apierrors.IsForbidden(err) || apierrors.IsInvalid(err)
			mu.Lock()
			switch {
			case err != nil && !refused:
				out.errors++
			case isRevoked && refused && at.After(instant):
				if _, seen := out.refusedAt[partner]; !seen {
					out.refusedAt[partner] = at
				}
			case isRevoked && err == nil:
				if _, seen := out.refusedAt[partner]; seen {
					out.admittedAfterRefusal++
				}
			case !isRevoked:
				out.failoverSales++
				if refused {
					out.failoverRefused++
				}
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-s.ctx.Done():
				return
			case <-tick.C:
			}
		}
	}
	for _, p := range revoked {
		wg.Add(1)
		go sell(p, true)
	}
	for _, p := range failover {
		wg.Add(1)
		go sell(p, false)
	}
	return func() sales {
		wg.Wait()
		return out
	}
}

// sellers picks k revoked (odd) and k failover (even) partners spread over
// the run's partners.
func (s *scaleRun) sellers(k int) (revoked, failover []string) {
	step := max(s.n/(2*k), 1)
	for i := 0; i+1 < s.n && len(revoked) < k; i += 2 * step {
		revoked = append(revoked, s.partners[i+1])
		failover = append(failover, s.partners[i])
	}
	return revoked, failover
}

// refusalLags are the revoked sellers' first refusals after the instant
// (ms, sorted); a seller never refused counts as the whole window.
func refusalLags(refusedAt map[string]time.Time, revoked []string, instant, end time.Time) []float64 {
	var l []float64
	for _, p := range revoked {
		at, ok := refusedAt[p]
		if !ok {
			at = end
		}
		l = append(l, float64(at.Sub(instant).Milliseconds()))
	}
	sort.Float64s(l)
	return l
}

// phaseSeen watches a contract and returns when its status first showed
// the phase.
func (s *scaleRun) phaseSeen(name string, phase v1.ContractPhase) func() time.Time {
	list := &v1.DistributorContractList{}
	s.must(k8s.List(s.ctx, list))
	w, err := watcher.Watch(s.ctx, &v1.DistributorContractList{}, &client.ListOptions{Raw: rawFrom(list.ResourceVersion)})
	s.must(err)
	var at time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if c, ok := ev.Object.(*v1.DistributorContract); ok && c.Name == name && c.Status.Phase == phase {
				at = time.Now()
				return
			}
		}
	}()
	return func() time.Time {
		select {
		case <-done:
		case <-time.After(time.Minute):
		}
		w.Stop()
		<-done
		return at
	}
}

// sellingStopped reports when the sellers of revoked partners were
// refused, that failover partners sold on, and what the operator had
// written by then.
// It returns when the last revoked seller was refused, after the instant
// (ms).
func (s *scaleRun) sellingStopped(r *report, sold sales, revoked, failover []string, statusAt time.Time, writesBefore float64) float64 {
	l := refusalLags(sold.refusedAt, revoked, s.firstEnds, time.Now())
	r.add("contract's end: revoked partners' sales refused, p50 (ms)", quantile(l, 0.5), 0)
	r.add("contract's end: revoked partners' sales refused, p99 (ms)", quantile(l, 0.99), 0)
	r.add("contract's end: revoked partners' sales refused, last (ms)", l[len(l)-1], 0)
	r.add("contract's end: revoked partners' sales admitted after a refusal", float64(sold.admittedAfterRefusal), 0)
	r.add("contract's end: failover partners' sales refused", float64(sold.failoverRefused), 0)
	if !statusAt.IsZero() {
		r.add("contract's end: the contract's status Expired, after the instant (ms)", float64(statusAt.Sub(s.firstEnds).Milliseconds()), 0)
	}
	r.Notes = append(r.Notes, fmt.Sprintf("contract's end: %d revoked and %d failover partners' users sold every %s from a second before the instant, a sale's time the time it was sent (%d failover sales, %d answers neither admitted nor refused); the manager's writes from a second before the instant until every partner was done: %.0f",
		len(revoked), len(failover), sellEvery, sold.failoverSales, sold.errors, s.m.writes(s.b)-writesBefore))
	return l[len(l)-1]
}
