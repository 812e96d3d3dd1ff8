package controllers

import (
	"slices"
	"sync"
	"time"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// CacheCatchUp is how soon a pass skipped on a copy older than the
// operator's own status write looks again (see ownWrites).
const CacheCatchUp = 50 * time.Millisecond

// ownWrites remembers, for each partner, the resourceVersions its status
// writes replaced, until the cache shows a copy newer than all of them.
//
// The operator's own status writes send no reconcile (partnerChanged), but
// its RoleBinding and quota writes do, and kube-controller-manager's
// recount of the quota does, often before the cache holds the status just
// written. A pass on that older copy decided again from the status the
// operator had already replaced: at a transition it deferred the status a
// second time (accessFirst), then wrote it from the stale copy and met a
// 409 — two passes and a refused Partner write for each of 84 of 200
// partners in the staggered expiry. Now such a pass does nothing and looks
// again after CacheCatchUp: only a cache read.
type ownWrites struct {
	mu       sync.Mutex
	replaced map[string][]string
}

// wrote records that a status write replaced the copy at resourceVersion
// rv.
func (o *ownWrites) wrote(name, rv string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.replaced == nil {
		o.replaced = map[string][]string{}
	}
	o.replaced[name] = append(o.replaced[name], rv)
}

// stale reports whether p is a copy a status write of the operator's has
// already replaced; a copy it has not replaced ends the watch for p's name.
func (o *ownWrites) stale(p *v1.Partner) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if slices.Contains(o.replaced[p.Name], p.ResourceVersion) {
		return true
	}
	delete(o.replaced, p.Name)
	return false
}

// forget drops a partner's record (deleted).
func (o *ownWrites) forget(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.replaced, name)
}
