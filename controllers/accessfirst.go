package controllers

import (
	"sync"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

// PriorityStatus is the priority of the pass that writes a transition's
// status after its access writes (see accessFirst): after the transitions
// still due, before the ordinary events.
const PriorityStatus = 5

// accessFirst carries out entitlement.PartnerPlan.StatusAfterAccess: a
// transition is split into two passes, the RoleBinding and quota writes
// (if any) at the transition's priority, the status (one write of a whole
// Partner, three and a half to four times the API server's cost of a
// RoleBinding or quota write: BenchmarkWriteCost) in a pass at
// PriorityStatus. When a thousand partners change at one instant, every
// revoked partner's access is gone before any of the statuses are written,
// instead of each waiting behind the statuses of those before it, its own
// or a failover's. The status says Entitled for those seconds while the
// access is already gone: it never claims less access than there is.
//
// It remembers, by the Partner's resourceVersion, that the first pass was
// made, so the second writes status even if its cache does not show the
// first pass's writes yet (one pass, then status, never a loop). It also
// remembers what the first pass planned and applied: a second pass whose
// plan writes the same children writes the status from that outcome and
// sends nothing else. Applying from its cache, which a millisecond after
// the first pass often does not show the quota just written, cost 0.57
// extra quota applies a partner in the staggered expiry
// (docs/benchmarks.md): no-ops on the server, but each a round trip in
// front of the status write. Whatever changed in the cluster between the
// two passes is seen by the deferred pass that always follows a reused
// one.
type accessFirst struct {
	mu   sync.Mutex
	done map[string]accessPass
}

// accessPass is what a transition's first pass wrote: at which
// resourceVersion of the Partner, to what plan (its writes only: a
// thousand partners can be between their two passes at once), with what
// outcome.
type accessPass struct {
	rv      string
	plan    entitlement.PartnerPlan
	applied applied
}

// deferStatus reports whether this pass should leave the status for the
// next one (not when a pass at this resourceVersion already did), and
// marks that it did, with the plan it carried out and what that applied.
func (a *accessFirst) deferStatus(p *v1.Partner, plan *entitlement.PartnerPlan, done applied) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done[p.Name].rv == p.ResourceVersion {
		return false
	}
	if a.done == nil {
		a.done = map[string]accessPass{}
	}
	a.done[p.Name] = accessPass{rv: p.ResourceVersion, plan: plan.Writes(), applied: done}
	return true
}

// applied returns what the access pass of this transition applied, when
// it was made at p's resourceVersion to the same writes as plan: the
// status pass then need not apply again.
func (a *accessFirst) applied(p *v1.Partner, plan *entitlement.PartnerPlan) (applied, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	prev, ok := a.done[p.Name]
	if !ok || prev.rv != p.ResourceVersion || !plan.SameWrites(&prev.plan) {
		return applied{}, false
	}
	return prev.applied, true
}

// forget clears the mark once status is written (or the partner gone).
func (a *accessFirst) forget(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.done, name)
}
