package controllers

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

// gather reads everything PlanPartner needs.
func (r *PartnerReconciler) gather(ctx context.Context, p *v1.Partner) (entitlement.PartnerInput, error) {
	in := entitlement.PartnerInput{
		Partner:    p,
		Contracts:  map[string]*v1.DistributorContract{},
		Namespaces: map[string]entitlement.NamespaceObservation{},
		Roles:      map[string]entitlement.RoleObservation{},
		Now:        r.Clock.Now(),
	}
	for _, name := range p.Spec.Contracts {
		c := &v1.DistributorContract{}
		if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, c); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return in, fmt.Errorf("getting DistributorContract %s for Partner %s: %w", name, p.Name, err)
		}
		in.Contracts[name] = c
		if ent := entitlement.EntitlementFor(c, p.Spec.Tier); ent != nil {
			role := entitlement.ClusterRoleFor(ent)
			if _, seen := in.Roles[role]; !seen {
				obs, err := r.observeRole(ctx, role)
				if err != nil {
					return in, fmt.Errorf("getting ClusterRole %s for Partner %s: %w", role, p.Name, err)
				}
				in.Roles[role] = obs
			}
		}
	}
	for _, n := range p.Spec.Namespaces {
		obs, err := r.observeNamespace(ctx, p.Name, string(n))
		if err != nil {
			return in, fmt.Errorf("observing namespace %s of Partner %s: %w", n, p.Name, err)
		}
		in.Namespaces[string(n)] = obs
	}
	// Namespaces still labelled for the partner that it no longer lists.
	labelled := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, labelled, client.MatchingLabels{v1.LabelPartner: p.Name}); err != nil {
		return in, fmt.Errorf("listing namespaces of Partner %s: %w", p.Name, err)
	}
	for _, ns := range labelled.Items {
		if _, listed := in.Namespaces[ns.Name]; listed {
			continue
		}
		obs, err := r.observeNamespace(ctx, p.Name, ns.Name)
		if err != nil {
			return in, fmt.Errorf("observing namespace %s of Partner %s: %w", ns.Name, p.Name, err)
		}
		in.Namespaces[ns.Name] = obs
		in.Unlisted = append(in.Unlisted, ns.Name)
	}
	sort.Strings(in.Unlisted)
	return in, nil
}

func (r *PartnerReconciler) observeRole(ctx context.Context, name string) (entitlement.RoleObservation, error) {
	role := &rbacv1.ClusterRole{}
	// The cache holds only bindable roles; a miss is confirmed directly.
	err := r.Client.Get(ctx, types.NamespacedName{Name: name}, role)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, types.NamespacedName{Name: name}, role)
	}
	if apierrors.IsNotFound(err) {
		return entitlement.RoleObservation{}, nil
	}
	if err != nil {
		return entitlement.RoleObservation{}, err
	}
	return entitlement.RoleObservation{Exists: true, Bindable: role.Labels[v1.LabelBindable] == "true"}, nil
}

func (r *PartnerReconciler) observeNamespace(ctx context.Context, partner, name string) (entitlement.NamespaceObservation, error) {
	ns := &corev1.Namespace{}
	// Managed namespaces are in the cache; anything else is read directly,
	// so an unmanaged namespace of that name is seen (and never adopted).
	err := r.Client.Get(ctx, types.NamespacedName{Name: name}, ns)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, types.NamespacedName{Name: name}, ns)
	}
	if apierrors.IsNotFound(err) {
		return entitlement.NamespaceObservation{}, nil
	}
	if err != nil {
		return entitlement.NamespaceObservation{}, err
	}
	obs := entitlement.NamespaceObservation{
		Exists:      true,
		Owner:       ns.Labels[v1.LabelPartner],
		Terminating: !ns.DeletionTimestamp.IsZero() || ns.Status.Phase == corev1.NamespaceTerminating,
	}
	q := &corev1.ResourceQuota{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: name, Name: v1.ResourceQuotaName}, q); err == nil {
		if u, ok := q.Status.Used[v1.SubscriptionQuotaResource]; ok {
			obs.Used = u.Value()
		}
	} else if !apierrors.IsNotFound(err) {
		return obs, err
	}
	if obs.Owner != partner {
		return obs, nil // someone else's: its content is none of our business
	}
	// The quota's count can lag (see entitlement.NamespaceUsage): count the
	// Subscriptions too, from the metadata-only cache (its own lag is
	// short: a Subscription arriving in it re-queues the partner).
	subs := &metav1.PartialObjectMetadataList{}
	subs.SetGroupVersionKind(v1.GroupVersion.WithKind("SubscriptionList"))
	if err := r.Client.List(ctx, subs, client.InNamespace(name)); err != nil {
		return obs, fmt.Errorf("listing Subscriptions: %w", err)
	}
	obs.Subscriptions = int64(len(subs.Items))
	if obs.Subscriptions > obs.Used {
		// More objects than the cached quota counts: either the quota's count
		// lags (kube-controller-manager), or only our copy of the quota does
		// (its admission update not seen yet). Only the live quota tells;
		// spreading from a stale copy would refuse Subscriptions the partner
		// may have.
		live := &corev1.ResourceQuota{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: name, Name: v1.ResourceQuotaName}, live)
		switch {
		case err == nil:
			if u, ok := live.Status.Used[v1.SubscriptionQuotaResource]; ok {
				obs.Used = u.Value()
			}
		case !apierrors.IsNotFound(err):
			return obs, fmt.Errorf("reading ResourceQuota %s/%s: %w", name, v1.ResourceQuotaName, err)
		}
	}
	return obs, nil
}
