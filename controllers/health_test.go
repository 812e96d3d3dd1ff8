package controllers

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllertest"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// TestCachesSyncedSaysWhatItWaitsFor: the readiness check passes once the
// cache has synced and otherwise names the cause — kinds still listing, a
// kind the API server does not serve, or a cache not started.
func TestCachesSyncedSaysWhatItWaitsFor(t *testing.T) {
	scheme := NewScheme()
	kind := func(obj client.Object) schema.GroupVersionKind {
		gvks, _, err := scheme.ObjectKinds(obj)
		if err != nil {
			t.Fatal(err)
		}
		return gvks[0]
	}
	// informers: every watched kind synced except those given.
	informers := func(unsynced ...client.Object) map[schema.GroupVersionKind]toolscache.SharedIndexInformer {
		m := map[schema.GroupVersionKind]toolscache.SharedIndexInformer{}
		for _, obj := range watchedKinds() {
			m[kind(obj)] = controllertest.NewFakeInformer(controllertest.Synced)
		}
		for _, obj := range unsynced {
			m[kind(obj)] = controllertest.NewFakeInformer()
		}
		return m
	}
	cases := []struct {
		name  string
		cache *informertest.FakeInformers
		want  string // "" = ready
	}{
		{"synced", &informertest.FakeInformers{Scheme: scheme, Synced: ptr.To(true), InformersByGVK: informers()}, ""},
		{"two kinds still listing",
			&informertest.FakeInformers{Scheme: scheme, Synced: ptr.To(false),
				InformersByGVK: informers(&v1.Partner{}, &corev1.Namespace{})},
			"still listing Partner, Namespace"},
		{"a kind not served",
			&informertest.FakeInformers{Scheme: scheme, Synced: ptr.To(false),
				Error: errors.New(`no matches for kind "Subscription" in version "entitlements.partnerops.io/v1alpha1"`)},
			`Partner: no matches for kind "Subscription"`},
		{"not started",
			&informertest.FakeInformers{Scheme: scheme, Synced: ptr.To(false), InformersByGVK: informers(watchedKinds()...)},
			"the cache has not started"},
		{"another kind still listing",
			&informertest.FakeInformers{Scheme: scheme, Synced: ptr.To(false), InformersByGVK: informers()},
			"an informer of another kind is still listing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CachesSynced(tc.cache)(httptest.NewRequest("GET", "/readyz/caches", nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("not ready: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("ready, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
