package controllers

import (
	"cmp"
	"context"
	"crypto/rand"
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

// gather reads everything PlanPartner needs, the API server's remembered
// refusals to bind a role included. It makes no writes.
func (r *PartnerReconciler) gather(ctx context.Context, p *v1.Partner) (entitlement.PartnerInput, error) {
	in := entitlement.PartnerInput{
		Partner:    p,
		Contracts:  map[string]*v1.DistributorContract{},
		Namespaces: map[string]entitlement.NamespaceObservation{},
		Roles:      map[string]entitlement.RoleObservation{},
		Claims:     map[string][]entitlement.Claim{},
		Now:        r.Clock.Now(),
		NewToken:   rand.Text,
	}
	if err := r.gatherContracts(ctx, p, &in); err != nil {
		return in, err
	}
	children, bound, err := r.childNamespaces(ctx, p.Name)
	if err != nil {
		return in, fmt.Errorf("listing children of Partner %s: %w", p.Name, err)
	}
	observe := func(name string) (entitlement.NamespaceObservation, error) {
		obs, err := r.observeNamespace(ctx, p, name)
		if err != nil {
			return obs, fmt.Errorf("observing namespace %s of Partner %s: %w", name, p.Name, err)
		}
		obs.Children, obs.Bound = children[name], bound[name]
		in.Namespaces[name] = obs
		return obs, nil
	}
	for _, n := range p.Spec.Namespaces {
		obs, err := observe(string(n))
		if err != nil {
			return in, err
		}
		if !obs.Exists {
			claims, err := r.claims(ctx, string(n))
			if err != nil {
				return in, fmt.Errorf("listing partners that list namespace %s: %w", n, err)
			}
			in.Claims[string(n)] = claims
		}
	}
	// Namespaces still labelled for the partner that it no longer lists.
	labelled := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, labelled, client.MatchingFields{IndexChildPartner: p.Name}); err != nil {
		return in, fmt.Errorf("listing namespaces of Partner %s: %w", p.Name, err)
	}
	for _, ns := range labelled.Items {
		if _, listed := in.Namespaces[ns.Name]; listed {
			continue
		}
		if _, err := observe(ns.Name); err != nil {
			return in, err
		}
		in.Unlisted = append(in.Unlisted, ns.Name)
	}
	sort.Strings(in.Unlisted)
	// Children in namespaces that are neither: their namespace was relabelled.
	for name := range children {
		if _, seen := in.Namespaces[name]; !seen {
			in.Strays = append(in.Strays, name)
		}
	}
	sort.Strings(in.Strays)
	return in, nil
}

func (r *PartnerReconciler) gatherContracts(ctx context.Context, p *v1.Partner, in *entitlement.PartnerInput) error {
	for _, name := range p.Spec.Contracts {
		c := &v1.DistributorContract{}
		if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, c); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("getting DistributorContract %s for Partner %s: %w", name, p.Name, err)
		}
		in.Contracts[name] = c
		ent := entitlement.EntitlementFor(c, p.Spec.Tier)
		if ent == nil {
			continue
		}
		role := entitlement.ClusterRoleFor(ent)
		if _, seen := in.Roles[role]; seen {
			continue
		}
		obs, err := observeRole(ctx, r.Client, r.APIReader, role)
		if err != nil {
			return fmt.Errorf("getting ClusterRole %s for Partner %s: %w", role, p.Name, err)
		}
		obs.Forbidden = r.refusals.of(role, in.Now, cmp.Or(r.StalledRecheck, DefaultStalledRecheck))
		in.Roles[role] = obs
	}
	return nil
}

// getCachedOrLive reads an object from the cache, and from the API server
// when the cache does not hold it: the cache holds only what the operator
// manages (label-selected), and a miss there may be an object it does not
// manage (a namespace someone else owns, a role not labelled bindable).
func getCachedOrLive(ctx context.Context, cache, live client.Reader, key types.NamespacedName, obj client.Object) (found bool, err error) {
	err = cache.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		err = live.Get(ctx, key, obj)
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func (r *PartnerReconciler) getCachedOrLive(ctx context.Context, key types.NamespacedName, obj client.Object) (bool, error) {
	return getCachedOrLive(ctx, r.Client, r.APIReader, key, obj)
}

// observeRole reads a ClusterRole for a decision (both reconcilers).
func observeRole(ctx context.Context, cache, live client.Reader, name string) (entitlement.RoleObservation, error) {
	role := &rbacv1.ClusterRole{}
	found, err := getCachedOrLive(ctx, cache, live, types.NamespacedName{Name: name}, role)
	if !found {
		return entitlement.RoleObservation{}, err
	}
	return entitlement.RoleObservation{Exists: true, Bindable: role.Labels[v1.LabelBindable] == "true", Rules: role.Rules}, nil
}

// childNamespaces returns the namespaces holding a RoleBinding or
// ResourceQuota the operator wrote for the partner (by its partner label,
// from the cache), wherever their namespace's labels now point, and those
// holding its RoleBinding.
func (r *PartnerReconciler) childNamespaces(ctx context.Context, partner string) (in, bound map[string]bool, err error) {
	in, bound = map[string]bool{}, map[string]bool{}
	for _, list := range []client.ObjectList{&rbacv1.RoleBindingList{}, &corev1.ResourceQuotaList{}} {
		if err := r.Client.List(ctx, list, client.MatchingFields{IndexChildPartner: partner}); err != nil {
			return nil, nil, err
		}
		switch l := list.(type) {
		case *rbacv1.RoleBindingList:
			for _, b := range l.Items {
				if b.Name == v1.RoleBindingName {
					in[b.Namespace], bound[b.Namespace] = true, true
				}
			}
		case *corev1.ResourceQuotaList:
			for _, q := range l.Items {
				if q.Name == v1.ResourceQuotaName {
					in[q.Namespace] = true
				}
			}
		}
	}
	return in, bound, nil
}

// claims lists the partners that list a namespace, with their creation
// times (from the cache's index on spec.namespaces).
func (r *PartnerReconciler) claims(ctx context.Context, namespace string) ([]entitlement.Claim, error) {
	list := &v1.PartnerList{}
	if err := r.Client.List(ctx, list, client.MatchingFields{IndexPartnerNamespaces: namespace}); err != nil {
		return nil, err
	}
	out := make([]entitlement.Claim, 0, len(list.Items))
	for _, p := range list.Items {
		out = append(out, entitlement.Claim{Partner: p.Name, Created: p.CreationTimestamp.Time})
	}
	return out, nil
}

func (r *PartnerReconciler) observeNamespace(ctx context.Context, p *v1.Partner, name string) (entitlement.NamespaceObservation, error) {
	partner := p.Name
	ns := &corev1.Namespace{}
	// Managed namespaces are in the cache; anything else is read directly,
	// so an unmanaged namespace of that name is seen (and never adopted).
	found, err := r.getCachedOrLive(ctx, types.NamespacedName{Name: name}, ns)
	if !found {
		return entitlement.NamespaceObservation{Name: name}, err
	}
	obs := entitlement.NamespaceObservation{
		Name:          name,
		Exists:        true,
		UID:           ns.UID,
		Owner:         ns.Labels[v1.LabelPartner],
		CreationToken: ns.Annotations[v1.AnnotationCreationToken],
		HandOverTo:    ns.Annotations[v1.AnnotationHandOverTo],
		Labels:        ns.Labels,
		Annotations:   ns.Annotations,
		Terminating:   !ns.DeletionTimestamp.IsZero() || ns.Status.Phase == corev1.NamespaceTerminating,
	}
	q := &corev1.ResourceQuota{}
	err = r.Client.Get(ctx, types.NamespacedName{Namespace: name, Name: v1.ResourceQuotaName}, q)
	if err == nil && staleQuota(p, name, q) {
		// The cache has not caught up with the limit the operator last
		// wrote there (its status records it): spreading from the older
		// one could hand the same room out twice.
		err = r.APIReader.Get(ctx, types.NamespacedName{Namespace: name, Name: v1.ResourceQuotaName}, q)
	}
	switch {
	case err == nil:
		obs.Quota = entitlement.ObserveQuota(q)
		if u, ok := q.Status.Used[v1.SubscriptionQuotaResource]; ok {
			obs.Used = u.Value()
		}
	case !apierrors.IsNotFound(err):
		return obs, err
	}
	if obs.Owner != partner {
		return obs, nil // someone else's: its content is none of our business
	}
	// The quota's count can lag (see entitlement.NamespaceUsage): count the
	// Subscriptions too, from the cache (its own lag is
	// short: a Subscription arriving in it re-queues the partner).
	subs := &v1.SubscriptionList{}
	if err := r.Client.List(ctx, subs, client.InNamespace(name)); err != nil {
		return obs, fmt.Errorf("listing Subscriptions: %w", err)
	}
	obs.Subscriptions = int64(len(subs.Items))
	for _, s := range subs.Items {
		obs.Sales = append(obs.Sales, entitlement.Sale{Created: s.CreationTimestamp.Time, Units: int64(max(s.Spec.Units, 1))})
	}
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

// observeLive reads the quota and counts the Subscriptions of each of the
// partner's namespaces from the API server (see
// entitlement.PartnerPlan.ConfirmLive). Only what quota admission reads is
// read again: a count is the larger of the cached and the live one (a
// Subscription deleted since is in neither, one created since is in the
// live one).
func (r *PartnerReconciler) observeLive(ctx context.Context, p *v1.Partner, in *entitlement.PartnerInput) error {
	for name, obs := range in.Namespaces {
		if !obs.Exists || obs.Owner != p.Name {
			continue
		}
		q := &corev1.ResourceQuota{}
		switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: name, Name: v1.ResourceQuotaName}, q); {
		case err == nil:
			obs.Quota = entitlement.ObserveQuota(q)
			u := q.Status.Used[v1.SubscriptionQuotaResource]
			obs.Used = u.Value()
		case apierrors.IsNotFound(err):
			obs.Quota, obs.Used = entitlement.QuotaObservation{}, 0
		default:
			return fmt.Errorf("reading ResourceQuota %s/%s of Partner %s: %w", name, v1.ResourceQuotaName, p.Name, err)
		}
		subs := &metav1.PartialObjectMetadataList{}
		subs.SetGroupVersionKind(v1.GroupVersion.WithKind("SubscriptionList"))
		if err := r.APIReader.List(ctx, subs, client.InNamespace(name)); err != nil {
			return fmt.Errorf("listing Subscriptions in %s of Partner %s: %w", name, p.Name, err)
		}
		obs.Subscriptions = max(obs.Subscriptions, int64(len(subs.Items)))
		in.Namespaces[name] = obs
	}
	in.Live = true
	return nil
}

// staleQuota reports whether a cached quota's Subscription limit differs
// from the one the partner's status records the operator last wrote there.
func staleQuota(p *v1.Partner, ns string, q *corev1.ResourceQuota) bool {
	for _, n := range p.Status.Namespaces {
		if n.Name == ns {
			h := q.Spec.Hard[v1.SubscriptionQuotaResource]
			return q.Labels[v1.LabelPartner] == p.Name && h.Value() != int64(n.SubscriptionsHard)
		}
	}
	return false
}
