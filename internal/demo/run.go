package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

type storyRun struct {
	s      *story
	c      client.Client
	cfg    *rest.Config
	tl     *Timeline
	n      *Narrator
	onTime time.Duration

	// refusal is the API server's answer to the over-quota Subscription.
	refusal error
	// created were admitted; notCreated were refused though within quota.
	created, notCreated []string
	// revokedUserErr is the API server's answer when the revoked partner's
	// user tries to sell again.
	revokedUserErr error
	// timedOut says what the end of the story was still waiting for.
	timedOut error
}

func (r *storyRun) apply(ctx context.Context) error {
	tl, s := r.tl, r.s
	b := s.contracts[0]
	tl.Stepf("contract %s (%s): Active now, Expiring at %s, ends at %s, grace until %s, then Expired",
		b.Name, b.Spec.Distributor, tl.Rel(b.Spec.EndsAt.Add(-s.t.Notice)), tl.Rel(b.Spec.EndsAt.Time), tl.Rel(s.bytecSupplyEnds))
	for _, c := range s.contracts[1:] {
		tl.Stepf("contract %s (%s): open-ended", c.Name, c.Spec.Distributor)
	}
	for _, p := range s.partners {
		kind := string(p.Spec.Type)
		if len(p.Spec.Specializations) > 0 {
			var sp []string
			for _, x := range p.Spec.Specializations {
				sp = append(sp, string(x))
			}
			kind += " [" + strings.Join(sp, ", ") + "]"
		}
		tl.Stepf("partner %s (%s, %s %s): contracts [%s], namespace %s",
			p.Name, p.Spec.DisplayName, p.Spec.Tier, kind, strings.Join(p.Spec.Contracts, ", "), p.Spec.Namespaces[0])
	}
	for _, c := range s.contracts {
		if err := r.c.Create(ctx, c); err != nil {
			return fmt.Errorf("creating DistributorContract %s: %w", c.Name, err)
		}
	}
	for _, p := range s.partners {
		if err := r.c.Create(ctx, p); err != nil {
			return fmt.Errorf("creating Partner %s: %w", p.Name, err)
		}
	}
	tl.Stepf("created 3 DistributorContracts and 3 Partners")
	return nil
}

// sell waits for every partner to be entitled with its quota counted, then
// creates its Subscriptions as the partner's own user (impersonated): the
// RoleBinding the operator made is what lets them.
func (r *storyRun) sell(ctx context.Context) error {
	for _, p := range r.s.partners {
		want := expectedInitialContract(p)
		if err := poll(ctx, 60*time.Second, func() error { return r.partnerIs(ctx, p.Name, v1.PartnerEntitled, want) }); err != nil {
			return fmt.Errorf("partner %s was not entitled: %w", p.Name, err)
		}
	}
	for i := range r.s.sales {
		sl := &r.s.sales[i]
		uc, err := r.userClient(sl.user)
		if err != nil {
			return err
		}
		subj := subject("Subscription", sl.namespace, sl.sub.Name)
		// The quota admission refuses everything until the quota's status
		// is computed; wait for that, not for a fixed time.
		if err := poll(ctx, 60*time.Second, func() error { return quotaCounted(ctx, r.c, sl.namespace) }); err != nil {
			return fmt.Errorf("quota of %s: %w", sl.namespace, err)
		}
		var createErr error
		err = poll(ctx, 30*time.Second, func() error {
			createErr = uc.Create(ctx, sl.sub.DeepCopy())
			if apierrors.IsAlreadyExists(createErr) {
				createErr = nil // an earlier try went through after all
			}
			if createErr == nil || (apierrors.IsForbidden(createErr) && strings.Contains(createErr.Error(), "exceeded quota")) {
				return nil
			}
			// RBAC of the new RoleBinding not seen yet, or the quota
			// status catching up: try again.
			return createErr
		})
		if err != nil && ctx.Err() != nil {
			return context.Cause(ctx)
		}
		switch {
		case sl.overQuota:
			r.refusal = createErr
			if createErr != nil {
				r.tl.Line(Warning, subj, "refused by the API server: "+oneLine(createErr.Error()))
			} else {
				r.tl.Line(Bad, subj, fmt.Sprintf("created by %s although %s was at its quota", sl.user, sl.partner))
			}
		case createErr != nil:
			r.notCreated = append(r.notCreated, fmt.Sprintf("%s/%s: %v", sl.namespace, sl.sub.Name, oneLine(createErr.Error())))
			r.tl.Line(Bad, subj, fmt.Sprintf("%s could not create it: %s", sl.user, oneLine(createErr.Error())))
		default:
			r.created = append(r.created, sl.namespace+"/"+sl.sub.Name)
			r.tl.Line(Info, subj, fmt.Sprintf("created by %s: %s for %s", sl.user, sl.sub.Spec.Product, sl.sub.Spec.Customer))
		}
	}
	return nil
}

func expectedInitialContract(p *v1.Partner) string { return p.Spec.Contracts[0] }

// userClient acts as a partner's user.
func (r *storyRun) userClient(user string) (client.Client, error) {
	cfg := rest.CopyConfig(r.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	return client.New(cfg, client.Options{Scheme: Scheme()})
}

// waitForTheEnd waits until bytec-de has expired and its partners have
// moved on: the fail-over partner entitled through magirus-de, the other
// revoked. It gives up some time after the contract's supply ended and
// notes what it still waited for (the checks then say what is wrong).
// tellForecast narrates what the contract's status says its end will do,
// before it happens (status.forecast).
func (r *storyRun) tellForecast(ctx context.Context) {
	var f *v1.ContractForecast
	_ = poll(ctx, 10*time.Second, func() error {
		c := &v1.DistributorContract{}
		if err := r.c.Get(ctx, client.ObjectKey{Name: ContractBytec}, c); err != nil {
			return err
		}
		if f = c.Status.Forecast; f == nil || f.FailOver+f.Revoke < 2 {
			return fmt.Errorf("no forecast yet")
		}
		return nil
	})
	if f == nil {
		return
	}
	var parts []string
	for _, p := range f.Partners {
		if p.Outcome == v1.NextFailOver {
			parts = append(parts, p.Name+" fails over to "+p.Contract)
		} else {
			parts = append(parts, p.Name+" is revoked")
		}
	}
	r.tl.Stepf("forecast of %s (status.forecast): at its end %s; %d Subscription(s) of revoked partners kept",
		ContractBytec, strings.Join(parts, ", "), f.Subscriptions)
}

// tellHistory narrates a partner's recorded changes (status.history),
// oldest first.
func (r *storyRun) tellHistory(ctx context.Context, name string) {
	p := &v1.Partner{}
	if err := r.c.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
		return
	}
	var steps []string
	for i := len(p.Status.History) - 1; i >= 0; i-- {
		h := p.Status.History[i]
		step := string(h.Outcome)
		if h.Contract != "" {
			step += " on " + h.Contract
		}
		steps = append(steps, step)
	}
	r.tl.Stepf("history of %s (status.history): %s", name, strings.Join(steps, ", then "))
}

func (r *storyRun) waitForTheEnd(ctx context.Context) {
	deadline := time.Until(r.s.bytecSupplyEnds) + 30*time.Second
	r.tellForecast(ctx)
	r.tl.Stepf("waiting for %s to end (grace until %s)", ContractBytec, r.tl.Rel(r.s.bytecSupplyEnds))
	err := poll(ctx, deadline, func() error {
		c := &v1.DistributorContract{}
		if err := r.c.Get(ctx, client.ObjectKey{Name: ContractBytec}, c); err != nil {
			return err
		}
		if c.Status.Phase != v1.ContractExpired {
			return fmt.Errorf("contract %s is %s", c.Name, c.Status.Phase)
		}
		return errors.Join(
			r.partnerIs(ctx, PartnerFailover, v1.PartnerEntitled, ContractMagirus),
			r.partnerIs(ctx, PartnerRevoked, v1.PartnerRevoked, ""),
			// A transition's events follow its status, in the pass after it.
			r.eventSeen(PartnerFailover, v1.EventFailedOver),
			r.eventSeen(PartnerFailover, v1.ReasonBelowRequirements),
			r.eventSeen(PartnerRevoked, v1.EventRevoked),
		)
	})
	if err != nil && ctx.Err() == nil {
		r.timedOut = err
		r.tl.Line(Bad, "demo", "the story did not reach its end: "+oneLine(err.Error()))
		return
	}
	r.tellHistory(ctx, PartnerFailover)
	r.tellHistory(ctx, PartnerRevoked)
}

// eventSeen reports whether the narrator has seen the partner's event.
func (r *storyRun) eventSeen(partner, reason string) error {
	if _, ok := r.n.Event("Partner", partner, reason); !ok {
		return fmt.Errorf("no %s event for %s yet", reason, partner)
	}
	return nil
}

// afterRevocation has the revoked partner's user try to sell once more.
func (r *storyRun) afterRevocation(ctx context.Context) {
	var sl *sale
	for i := range r.s.sales {
		if r.s.sales[i].partner == PartnerRevoked {
			sl = &r.s.sales[i]
		}
	}
	uc, err := r.userClient(sl.user)
	if err != nil {
		r.revokedUserErr = err
		return
	}
	sub := sl.sub.DeepCopy()
	sub.Name = "nordwind-4"
	sub.Spec.Customer = "Stadtwerke Musterstadt"
	subj := subject("Subscription", sl.namespace, sub.Name)
	// The API server's RBAC follows the deleted RoleBinding within moments.
	_ = poll(ctx, 15*time.Second, func() error {
		r.revokedUserErr = uc.Create(ctx, sub.DeepCopy())
		if deniedByRBAC(r.revokedUserErr) {
			return nil
		}
		return fmt.Errorf("not refused by RBAC yet: %v", r.revokedUserErr)
	})
	if r.revokedUserErr == nil {
		r.tl.Line(Bad, subj, fmt.Sprintf("created by %s after %s was revoked", sl.user, PartnerRevoked))
		return
	}
	r.tl.Line(Warning, subj, "refused by the API server: "+oneLine(r.revokedUserErr.Error()))
}

func deniedByRBAC(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "cannot create resource")
}

// partnerIs: the partner's status shows phase (and contract when given),
// computed for its current generation and Ready.
func (r *storyRun) partnerIs(ctx context.Context, name string, phase v1.PartnerPhase, contract string) error {
	p := &v1.Partner{}
	if err := r.c.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
		return err
	}
	if p.Status.Phase != phase || (contract != "" && p.Status.Contract != contract) ||
		p.Status.ObservedGeneration != p.Generation || !meta.IsStatusConditionTrue(p.Status.Conditions, v1.ConditionReady) {
		return fmt.Errorf("partner %s: phase %q contract %q (want %s %s), observedGeneration %d of %d, Ready %v",
			name, p.Status.Phase, p.Status.Contract, phase, contract, p.Status.ObservedGeneration, p.Generation,
			meta.IsStatusConditionTrue(p.Status.Conditions, v1.ConditionReady))
	}
	return nil
}

// quotaCounted: the partner quota exists and its status has caught up with
// its spec.
func quotaCounted(ctx context.Context, c client.Client, ns string) error {
	q := &corev1.ResourceQuota{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1.ResourceQuotaName}, q); err != nil {
		return err
	}
	spec, ok := q.Spec.Hard[v1.SubscriptionQuotaResource]
	st, sok := q.Status.Hard[v1.SubscriptionQuotaResource]
	if !ok || !sok || spec.Cmp(st) != 0 {
		return fmt.Errorf("quota %s/%s: status hard %s, spec hard %s", ns, q.Name, st.String(), spec.String())
	}
	return nil
}

func roleBinding(ctx context.Context, c client.Client, ns string) (*rbacv1.RoleBinding, error) {
	rb := &rbacv1.RoleBinding{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1.RoleBindingName}, rb)
	return rb, err
}

// poll calls f until it returns nil, the timeout passes (its last error is
// returned) or ctx ends.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	return testcluster.PollContext(ctx, timeout, f)
}
