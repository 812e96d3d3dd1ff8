package controllers

import (
	"sync"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
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
// first pass's writes yet (one pass, then status, never a loop).
type accessFirst struct {
	mu   sync.Mutex
	done map[string]string
}

// deferStatus reports whether this pass should leave the status for the
// next one (not when a pass at this resourceVersion already did), and
// marks that it did.
func (a *accessFirst) deferStatus(p *v1.Partner) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done[p.Name] == p.ResourceVersion {
		return false
	}
	if a.done == nil {
		a.done = map[string]string{}
	}
	a.done[p.Name] = p.ResourceVersion
	return true
}

// forget clears the mark once status is written (or the partner gone).
func (a *accessFirst) forget(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.done, name)
}
