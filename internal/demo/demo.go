// Package demo is the operator's story, as `make demo` tells it and
// test/e2e checks it: the vendor ends its contract with the distributor
// Bytec by mutual agreement and from then on works in Germany only with
// Magirus and LXPN. Against a control plane where the manager runs, it
// creates the three contracts (Bytec's ends within a minute), three
// partners and their Subscriptions, narrates what the operator does as
// events and status show it, and checks the outcome through status, events
// and the API server's answers: ACME fails over to Magirus and is measured
// below Magirus's Advanced requirements, Nordwind is revoked with its
// namespace and Subscriptions kept and new ones refused, Kontor on LXPN is
// untouched, all on time.
package demo

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/plugin"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// Run plays the story against a control plane where the manager runs and
// the tier ClusterRoles are installed, narrating on n, and returns its
// checks. An error means the story could not be played (the API server
// refused its objects, ctx ended); failed checks are in the result. n goes
// on narrating until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, n *Narrator) (*Result, error) {
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, err
	}
	if err := n.watch(ctx, cfg); err != nil {
		return nil, err
	}
	r := &run{story: newStory(time.Now()), c: c, cfg: cfg, n: n, answers: map[string]error{}}
	if err := r.apply(ctx); err != nil {
		return nil, err
	}
	for _, p := range r.partners {
		if err := testcluster.PollContext(ctx, 60*time.Second, func() error { return r.partnerIs(ctx, p.Name, v1.PartnerEntitled, p.Spec.Contracts[0]) }); err != nil {
			return nil, fmt.Errorf("partner %s was not entitled: %w", p.Name, err)
		}
	}
	for _, sl := range r.sales {
		r.sell(ctx, sl)
	}
	r.waitForTheEnd(ctx)
	for _, sl := range r.lateSales {
		r.sell(ctx, sl)
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	var status bytes.Buffer
	plugin.Run(ctx, []string{"status"}, &status, &status, plugin.Options{Config: cfg})
	n.Printf("\n$ kubectl entitlements status\n%s", status.String())
	res := r.check(ctx)
	n.Printf("\nChecks\n")
	for _, ch := range res.Checks {
		n.Printf("%s  %s: %s\n", map[bool]string{true: "PASS", false: "FAIL"}[ch.OK], ch.Name, ch.Detail)
	}
	return res, context.Cause(ctx)
}
