package controllers

import (
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// heldEvent is one event a transition held back, with the object as the
// transition left it.
type heldEvent struct {
	obj                       *v1.Partner
	typ, reason, action, note string
}

// heldEvents are the events of transitions, held for the partner's next
// pass. At an instant when many partners change, the writes that grant or
// take away access and each partner's status come first; the events (one
// API write each) follow in the lower-priority pass that also writes the
// namespaces' labels and view (entitlement.PartnerPlan.DeferViews), a few
// milliseconds later when nothing else is due. A crash in between loses
// them, as it can lose any event: status.history is the record
// (docs/reliability.md).
type heldEvents struct {
	mu sync.Mutex
	m  map[string][]heldEvent
}

func (h *heldEvents) hold(name string, evs []heldEvent) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string][]heldEvent{}
	}
	h.m[name] = append(h.m[name], evs...)
}

// has reports whether events are held for the partner.
func (h *heldEvents) has(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m[name]) > 0
}

// emit sends the events held for the partner, oldest first, then evs.
func (h *heldEvents) emit(rec recorder.EventRecorder, name string, evs []heldEvent) {
	h.mu.Lock()
	held := h.m[name]
	delete(h.m, name)
	h.mu.Unlock()
	for _, e := range append(held, evs...) {
		rec.Eventf(e.obj, nil, e.typ, e.reason, e.action, "%s", e.note)
	}
}

// drop forgets what is held for a partner that is gone.
func (h *heldEvents) drop(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, name)
}
