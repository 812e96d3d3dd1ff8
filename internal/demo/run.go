package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// run is one playing of the story and what the API server answered.
type run struct {
	*story
	c   client.Client
	cfg *rest.Config
	n   *Narrator
	// answers are the API server's answers to the sales, by Subscription
	// name (nil: admitted).
	answers map[string]error
	// timedOut says what the end of the story was still waiting for.
	timedOut error
}

func (r *run) apply(ctx context.Context) error {
	b := r.contracts[0]
	r.n.Say("contract %s (%s): Active now, Expiring at %s, ends at %s, grace until %s, then Expired", b.Name, b.Spec.Distributor,
		r.n.rel(b.Spec.EndsAt.Add(-bytecNotice)), r.n.rel(b.Spec.EndsAt.Time), r.n.rel(r.supplyEnds))
	for _, c := range r.contracts[1:] {
		r.n.Say("contract %s (%s): open-ended", c.Name, c.Spec.Distributor)
	}
	for _, p := range r.partners {
		kind := string(p.Spec.Type)
		if len(p.Spec.Specializations) > 0 {
			kind += fmt.Sprintf(" %v", p.Spec.Specializations)
		}
		r.n.Say("partner %s (%s, %s %s): contracts [%s], namespace %s", p.Name, p.Spec.DisplayName, p.Spec.Tier,
			kind, strings.Join(p.Spec.Contracts, ", "), p.Spec.Namespaces[0])
	}
	for _, o := range append(objects(r.contracts), objects(r.partners)...) {
		if err := r.c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	r.n.Say("created %d DistributorContracts and %d Partners", len(r.contracts), len(r.partners))
	return nil
}

func objects[T client.Object](in []T) []client.Object {
	out := make([]client.Object, len(in))
	for i, o := range in {
		out[i] = o
	}
	return out
}

// sell creates a Subscription as the partner's own user (impersonated):
// the RoleBinding the operator made is what lets them. A sale that must be
// refused is tried once; one that must be admitted is tried again while
// the API server catches up with a new grant (its RBAC cache, the quota's
// first count).
func (r *run) sell(ctx context.Context, sl sale) {
	cfg := rest.CopyConfig(r.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: sl.user}
	var answer error
	uc, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err == nil {
		_ = testcluster.PollContext(ctx, 30*time.Second, func() error {
			if answer = uc.Create(ctx, sl.sub.DeepCopy()); apierrors.IsAlreadyExists(answer) {
				answer = nil // an earlier try went through after all
			}
			if answer == nil || sl.refused {
				return nil
			}
			return answer
		})
	} else {
		answer = err
	}
	if ctx.Err() != nil {
		return // interrupted: no answer to tell
	}
	r.answers[sl.sub.Name] = answer
	subject := "Subscription/" + sl.sub.Namespace + "/" + sl.sub.Name
	if answer != nil {
		r.n.line(time.Now(), subject, "refused by the API server: "+oneLine(answer.Error()))
		return
	}
	r.n.line(time.Now(), subject, fmt.Sprintf("created by %s: %s for %s", sl.user, sl.sub.Spec.Product, sl.sub.Spec.Customer))
}

// waitForTheEnd tells Bytec's forecast, waits until bytec-de has expired
// and its partners have moved on (the events included), then tells their
// history. It gives up some time after the contract's supply ended and
// notes what it still waited for: the checks then say what is wrong.
func (r *run) waitForTheEnd(ctx context.Context) {
	r.tellForecast(ctx)
	r.n.Say("waiting for %s to end (grace until %s)", ContractBytec, r.n.rel(r.supplyEnds))
	err := testcluster.PollContext(ctx, time.Until(r.supplyEnds)+30*time.Second, func() error {
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
		r.n.Say("the story did not reach its end: %s", oneLine(err.Error()))
		return
	}
	for _, name := range []string{PartnerFailover, PartnerRevoked} {
		if p := (&v1.Partner{}); r.c.Get(ctx, client.ObjectKey{Name: name}, p) == nil {
			r.n.Say("history of %s (status.history): %s", name, history(p))
		}
	}
}

// tellForecast narrates what bytec-de's status says its end will do,
// before it happens (status.forecast).
func (r *run) tellForecast(ctx context.Context) {
	c := &v1.DistributorContract{}
	err := testcluster.PollContext(ctx, 10*time.Second, func() error {
		if err := r.c.Get(ctx, client.ObjectKey{Name: ContractBytec}, c); err != nil {
			return err
		}
		if f := c.Status.Forecast; f == nil || f.FailOver+f.Revoke < 2 {
			return fmt.Errorf("status.forecast of %s: %+v, want both partners", ContractBytec, f)
		}
		return nil
	})
	if err != nil {
		r.n.Say("no forecast: %v", err)
		return
	}
	var parts []string
	for _, p := range c.Status.Forecast.Partners {
		if p.Outcome == v1.NextFailOver {
			parts = append(parts, p.Name+" fails over to "+p.Contract)
		} else {
			parts = append(parts, p.Name+" is revoked")
		}
	}
	r.n.Say("forecast of %s (status.forecast): at its end %s; %d Subscription(s) of revoked partners kept",
		ContractBytec, strings.Join(parts, ", "), c.Status.Forecast.Subscriptions)
}

// history tells a partner's recorded changes (status.history), oldest first.
func history(p *v1.Partner) string {
	var steps []string
	for i := len(p.Status.History) - 1; i >= 0; i-- {
		h := p.Status.History[i]
		steps = append(steps, strings.TrimSuffix(string(h.Outcome)+" on "+h.Contract, " on "))
	}
	return strings.Join(steps, ", then ")
}

func (r *run) eventSeen(partner, reason string) error {
	if _, ok := r.n.event(partner, reason); !ok {
		return fmt.Errorf("no %s event for %s yet", reason, partner)
	}
	return nil
}

// partnerIs: the partner's status shows phase (and contract when given),
// computed for its current generation and Ready.
func (r *run) partnerIs(ctx context.Context, name string, phase v1.PartnerPhase, contract string) error {
	p := &v1.Partner{}
	if err := r.c.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
		return err
	}
	ready := meta.IsStatusConditionTrue(p.Status.Conditions, v1.ConditionReady)
	if p.Status.Phase != phase || (contract != "" && p.Status.Contract != contract) || p.Status.ObservedGeneration != p.Generation || !ready {
		return fmt.Errorf("partner %s: phase %q contract %q (want %s %s), observedGeneration %d of %d, Ready %v",
			name, p.Status.Phase, p.Status.Contract, phase, contract, p.Status.ObservedGeneration, p.Generation, ready)
	}
	return nil
}
