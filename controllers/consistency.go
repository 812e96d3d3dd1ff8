package controllers

import (
	"context"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// CacheCatchUp is how soon a reconcile skipped on a cached copy older than
// the operator's own status write looks again.
const CacheCatchUp = 50 * time.Millisecond

// ownWrites remembers, per object, the resourceVersions the operator's own
// status writes replaced, until the cache shows a newer copy. A reconcile
// started by an event of a child the pass just wrote (a RoleBinding, a
// quota, a namespace) often finds the cache still holding the copy the
// pass's status write replaced; deciding again from it would write status
// from a stale copy, fail on the resourceVersion lock and be retried. Losing
// this memory (a restart) costs such a retry, never an outcome.
type ownWrites struct {
	mu       sync.Mutex
	replaced map[types.NamespacedName][]string
}

func (o *ownWrites) wrote(key types.NamespacedName, rv string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.replaced == nil {
		o.replaced = map[types.NamespacedName][]string{}
	}
	o.replaced[key] = append(o.replaced[key], rv)
}

// stale reports whether rv is a copy a status write has replaced; a copy
// it has not replaced ends the memory of the object's writes.
func (o *ownWrites) stale(key types.NamespacedName, rv string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if slices.Contains(o.replaced[key], rv) {
		return true
	}
	delete(o.replaced, key)
	return false
}

// recordingClient records in ownWrites the version every status update
// replaced.
type recordingClient struct {
	client.Client
	writes *ownWrites
}

func (c recordingClient) Status() client.SubResourceWriter {
	return recordingStatus{SubResourceWriter: c.Client.Status(), writes: c.writes}
}

type recordingStatus struct {
	client.SubResourceWriter
	writes *ownWrites
}

func (s recordingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	rv := obj.GetResourceVersion()
	if err := s.SubResourceWriter.Update(ctx, obj, opts...); err != nil {
		return err
	}
	s.writes.wrote(client.ObjectKeyFromObject(obj), rv)
	return nil
}

// consistent wraps a reconciler, as cluster-api's controllers do: a
// reconcile of an object whose cached copy is one of the reconciler's own
// status writes already replaced does nothing and looks again after
// CacheCatchUp (only a cache read).
type consistent struct {
	inner     reconcile.Reconciler
	cache     client.Reader
	newObject func() client.Object
	writes    *ownWrites
}

func (c consistent) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj := c.newObject()
	if err := c.cache.Get(ctx, req.NamespacedName, obj); err == nil && c.writes.stale(req.NamespacedName, obj.GetResourceVersion()) {
		return ctrl.Result{RequeueAfter: CacheCatchUp}, nil
	}
	return c.inner.Reconcile(ctx, req)
}
