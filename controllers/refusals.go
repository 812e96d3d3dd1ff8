package controllers

import (
	"sync"
	"time"

	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

// refusals remembers the API server's refusals to let the operator bind a
// ClusterRole (its RBAC escalation check), so that a stalled partner does
// not send the doomed binding on every reconcile: a refusal counts until
// it is older than the recheck period, then the binding is tried again.
type refusals struct {
	mu sync.Mutex
	m  map[string]refusal
}

type refusal struct {
	message string
	at      time.Time
}

func (f *refusals) remember(role, message string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]refusal{}
	}
	f.m[role] = refusal{message, now}
}

// apply marks the observed roles that were refused within the last recheck
// period, and forgets older refusals.
func (f *refusals) apply(roles map[string]entitlement.RoleObservation, now time.Time, recheck time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for role, ref := range f.m {
		if now.Sub(ref.at) >= recheck {
			delete(f.m, role)
			continue
		}
		if obs, ok := roles[role]; ok {
			obs.Forbidden = ref.message
			roles[role] = obs
		}
	}
}
