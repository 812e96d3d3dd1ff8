package controllers

import (
	"slices"
	"sync"
	"time"
)

// cacheCatchUp is how soon a reconcile that found its cached Partner older
// than its own last status write tries again: the watch event of the
// written copy normally arrives within milliseconds.
const cacheCatchUp = 20 * time.Millisecond

// staleCopies remembers, per partner, the resourceVersions its status
// writes replaced, for staleRetry. A reconcile that starts from one of
// them would decide from a status the operator already overwrote and its
// optimistically locked status write would fail with a conflict, after
// the apply's reads and a wasted write, and retry only after staleRetry;
// it waits for the cache instead. (Events of the operator's own status
// writes are filtered out, so other events — its children's — are what
// bring such a reconcile, while the written copy is on its way.)
type staleCopies struct {
	mu sync.Mutex
	m  map[string]staleEntry
}

type staleEntry struct {
	rvs []string
	at  time.Time
}

// replaced records that a status write replaced the copy at rv.
func (s *staleCopies) replaced(name, rv string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]staleEntry{}
	}
	e := s.m[name]
	if now.Sub(e.at) > staleRetry {
		e.rvs = nil
	}
	e.rvs, e.at = append(e.rvs, rv), now
	s.m[name] = e
}

// stale reports whether the cached copy at rv is one a status write
// replaced within staleRetry (after that the conflict path takes over: a
// cache that lags so long is not waited for). A newer copy clears the
// record.
func (s *staleCopies) stale(name, rv string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[name]
	if !ok {
		return false
	}
	if !slices.Contains(e.rvs, rv) || now.Sub(e.at) > staleRetry {
		delete(s.m, name)
		return false
	}
	return true
}

func (s *staleCopies) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
}
