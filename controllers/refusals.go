package controllers

import (
	"sync"
	"time"
)

// refusals remembers the API server's refusals to let the operator bind a
// ClusterRole (its RBAC escalation check), so that a stalled partner does
// not send the doomed binding on every pass: a refusal counts until it is
// older than the recheck period, then the binding is tried again. It is
// per role, not per partner, and losing it (a restart) costs one refused
// binding, nothing else.
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

// of returns the refusal to bind role within the last recheck period ("" if
// none), and forgets an older one.
func (f *refusals) of(role string, now time.Time, recheck time.Duration) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ref, ok := f.m[role]
	if !ok {
		return ""
	}
	if now.Sub(ref.at) >= recheck {
		delete(f.m, role)
		return ""
	}
	return ref.message
}
