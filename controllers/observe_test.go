package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// TestObserveNamespaceCountsAgainstTheLiveQuota pins down how a namespace's
// usage is observed when the views disagree. The fake clients stand in for
// the manager's cache and the API server, which is exactly what is under
// test here: which one is believed. (The real API server's side is covered
// by TestQuotaCountLagIsNotAnOpening and TestBackToBackWithinQuota.)
func TestObserveNamespaceCountsAgainstTheLiveQuota(t *testing.T) {
	cases := []struct {
		name                  string
		cachedUsed, liveUsed  int64
		subscriptions         int
		wantUsed, wantObjects int64
	}{
		// The cache saw the new Subscription but not yet the quota update that
		// admitted it: the live quota is read and believed.
		{"cached quota behind", 0, 1, 1, 1, 1},
		// The quota itself lags (kube-controller-manager recount): live also
		// says 1; the objects say 2.
		{"quota count lags", 1, 1, 2, 1, 2},
		// Views agree: the cache is enough (the live value would differ, to
		// show it is not read).
		{"agree", 2, 9, 2, 2, 2},
		// Quota counts more (a deletion not yet replenished): cache is enough.
		{"quota ahead", 3, 9, 2, 3, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "acme-prod", Labels: map[string]string{v1.LabelPartner: "acme"}}}
			cached := []client.Object{ns.DeepCopy(), quota(tc.cachedUsed)}
			for i := range tc.subscriptions {
				cached = append(cached, &v1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "acme-prod", Name: string(rune('a' + i))}})
			}
			r := &PartnerReconciler{
				Client:    fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(cached...).Build(),
				APIReader: fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(ns.DeepCopy(), quota(tc.liveUsed)).Build(),
			}
			obs, err := r.observeNamespace(context.Background(), &v1.Partner{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}, "acme-prod")
			if err != nil {
				t.Fatal(err)
			}
			if obs.Used != tc.wantUsed || obs.Subscriptions != tc.wantObjects {
				t.Errorf("cached used %d, live used %d, %d objects: want Used %d, Subscriptions %d; got %d, %d",
					tc.cachedUsed, tc.liveUsed, tc.subscriptions, tc.wantUsed, tc.wantObjects, obs.Used, obs.Subscriptions)
			}
		})
	}
}

func quota(used int64) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: "acme-prod", Name: v1.ResourceQuotaName},
		Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{
			v1.SubscriptionQuotaResource: *resource.NewQuantity(used, resource.DecimalSI),
		}},
	}
}

// TestStaleCachedQuotaIsReadLive: a cached quota whose limit is not the one
// the partner's status records the operator last wrote is read live: the
// spread must not hand out the room of a limit already lowered.
func TestStaleCachedQuotaIsReadLive(t *testing.T) {
	q := func(hard string) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "acme-prod", Name: v1.ResourceQuotaName,
			Labels: map[string]string{v1.LabelPartner: "acme"}},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{v1.SubscriptionQuotaResource: resource.MustParse(hard)}}}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "acme-prod", Labels: map[string]string{v1.LabelPartner: "acme"}}}
	r := &PartnerReconciler{
		Client:    fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(ns.DeepCopy(), q("6")).Build(),
		APIReader: fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(ns.DeepCopy(), q("2")).Build(),
	}
	p := &v1.Partner{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}
	p.Status.Namespaces = []v1.NamespaceStatus{{Name: "acme-prod", SubscriptionsHard: 2}}
	obs, err := r.observeNamespace(context.Background(), p, "acme-prod")
	if err != nil || obs.Quota.SpecHard != 2 {
		t.Errorf("cached limit 6, last written 2: want the live 2, got %d (%v)", obs.Quota.SpecHard, err)
	}
	p.Status.Namespaces[0].SubscriptionsHard = 6
	if obs, _ = r.observeNamespace(context.Background(), p, "acme-prod"); obs.Quota.SpecHard != 6 {
		t.Errorf("cached limit as last written: want the cache's 6, got %d", obs.Quota.SpecHard)
	}
}
