package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// TestUpdatePredicates: the update filters pass spec changes and periodic
// resyncs (same resourceVersion: otherwise --sync-period is no backstop),
// and drop the operator's own status writes.
func TestUpdatePredicates(t *testing.T) {
	base := func() *v1.Partner {
		return &v1.Partner{ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 3, ResourceVersion: "100", Finalizers: []string{v1.Finalizer}}}
	}
	now := metav1.NewTime(time.Unix(1_800_000_000, 0))
	cases := []struct {
		name        string
		mutate      func(*v1.Partner)
		partner     bool // partnerChanged
		specOrRsync bool // specChangedOrResync
	}{
		{"resync: same object again", func(*v1.Partner) {}, true, true},
		{"status write", func(p *v1.Partner) { p.ResourceVersion = "101"; p.Status.Phase = v1.PartnerEntitled }, false, false},
		{"spec change", func(p *v1.Partner) { p.ResourceVersion = "101"; p.Generation = 4 }, true, true},
		{"finalizer removed", func(p *v1.Partner) { p.ResourceVersion = "101"; p.Finalizers = nil }, true, false},
		{"deletion started", func(p *v1.Partner) { p.ResourceVersion = "101"; p.DeletionTimestamp = &now }, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := base()
			tc.mutate(n)
			e := event.UpdateEvent{ObjectOld: client.Object(base()), ObjectNew: n}
			if got := partnerChanged().Update(e); got != tc.partner {
				t.Errorf("partnerChanged = %v, want %v", got, tc.partner)
			}
			if got := specChangedOrResync().Update(e); got != tc.specOrRsync {
				t.Errorf("specChangedOrResync = %v, want %v", got, tc.specOrRsync)
			}
		})
	}
	if !specChangedOrResync().Create(event.CreateEvent{Object: base()}) || !specChangedOrResync().Delete(event.DeleteEvent{Object: base()}) {
		t.Error("specChangedOrResync must pass creates and deletes")
	}
}

// TestRetryLimiterCaps: a reconcile that keeps failing is retried at least
// every MaxRetryDelay (its error loses the boundary requeue).
func TestRetryLimiterCaps(t *testing.T) {
	rl := retryLimiter()
	item := reconcile.Request{NamespacedName: types.NamespacedName{Name: "p"}}
	var d time.Duration
	for range 40 {
		d = rl.When(item)
	}
	if d != MaxRetryDelay {
		t.Errorf("delay after 40 failures %v, want the cap %v", d, MaxRetryDelay)
	}
	rl.Forget(item)
	if d := rl.When(item); d > 10*time.Millisecond {
		t.Errorf("delay after success %v, want the 5ms start again", d)
	}
}
