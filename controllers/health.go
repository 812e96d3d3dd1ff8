package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// watchedKinds are the kinds the reconcilers watch (watches.go): the
// informers readiness names when the cache is not synced.
func watchedKinds() []client.Object {
	return []client.Object{&v1.Partner{}, &v1.DistributorContract{}, &v1.Subscription{},
		&corev1.Namespace{}, &rbacv1.RoleBinding{}, &corev1.ResourceQuota{}, &rbacv1.ClusterRole{}}
}

// CachesSynced is the manager's readiness check: ready once every informer
// has synced, since before that the operator would decide from an empty
// cache. Its error names what it waits for — the cache not started, a kind
// the API server does not serve (a CRD not installed), or the kinds still
// listing — so that `/readyz/caches`, a probe's failure and the log say
// which, instead of only "not synced".
func CachesSynced(c cache.Informers) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if c.WaitForCacheSync(ctx) {
			return nil
		}
		var pending, errs []string
		for _, obj := range watchedKinds() {
			kind := reflect.TypeOf(obj).Elem().Name()
			// ctx has expired; this does not wait, and must not on it.
			inf, err := c.GetInformer(req.Context(), obj, cache.BlockUntilSynced(false))
			switch {
			case err != nil:
				errs = append(errs, fmt.Sprintf("%s: %v", kind, err))
			case !inf.HasSynced():
				pending = append(pending, kind)
			}
		}
		switch {
		case len(errs) > 0:
			return fmt.Errorf("informer caches have not synced: %s", strings.Join(errs, "; "))
		case len(pending) == len(watchedKinds()):
			return errors.New("informer caches have not synced: the cache has not started, or is still listing every kind")
		case len(pending) > 0:
			return fmt.Errorf("informer caches have not synced: still listing %s", strings.Join(pending, ", "))
		default:
			// Every watched kind has synced and yet the cache has not:
			// it is starting, or another informer is still listing.
			return errors.New("informer caches have not synced: the cache is starting, or an informer of another kind is still listing")
		}
	}
}
