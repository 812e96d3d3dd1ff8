package plugin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/plugin"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// TestDiffAgreesWithTheOperator: with the fixture repository applied and
// the operator's clock at fixtureAt, each change is previewed against the
// cluster, then applied: every partner must end up with the phase,
// contract and next change the diff said (its After), an immediate effect
// recorded in history as the diff said, and then the repository is
// restored.
func TestDiffAgreesWithTheOperator(t *testing.T) {
	startManager(t, testenv.ManagerOptions{Clock: clocktesting.NewFakePassiveClock(fixtureAt)})
	changes := fixtureChanges(t)
	// new-pending adds a partner: last, as a Partner once deleted leaves
	// namespaces a new one of its name may not adopt.
	var order []string
	for n := range changes {
		if n != "new-pending" {
			order = append(order, n)
		}
	}
	sort.Strings(order)
	order = append(order, "new-pending")
	applied := map[string]client.Object{}
	defer func() {
		var objs []client.Object
		for _, o := range applied {
			objs = append(objs, o)
		}
		deleteAll(t, objs...)
	}()
	base := filepath.Join(fixtures, "base")
	apply(t, base, applied)
	for _, change := range order {
		before, after := assemble(t, change)
		code, out, errOut := runWith(plugin.Options{Now: func() time.Time { return fixtureAt }}, "diff", before, after, "-o", "json")
		d := checkDiff(t, change+": directories", code, out, changes[change])
		if t.Failed() {
			t.Fatalf("%s: %s", change, errOut)
		}
		// Without the change, the operator has what the diff says before.
		settle(t, change+": base", d, func(p plugin.PartnerDiff) *plugin.PartnerState { return p.Before })

		// The preview against the live cluster says the same, and knows
		// what the revoked hold.
		code, out, _ = runWith(plugin.Options{Now: func() time.Time { return fixtureAt }}, "diff", after, "--prune", "-o", "json", "--kubeconfig", cluster.KubeconfigPath)
		live := checkDiff(t, change+": live --prune", code, out, changes[change])
		if live.Summary.Revoke > 0 && live.Summary.Subscriptions == nil {
			t.Errorf("%s: live diff: the Subscriptions the revoked hold are unknown", change)
		}

		apply(t, after, applied)
		settle(t, change+": applied", d, func(p plugin.PartnerDiff) *plugin.PartnerState { return p.After })
		checkHistory(t, change, d)
		apply(t, base, applied)
	}
}

// apply makes the fixture objects in dir the cluster's: created or their
// spec replaced, and those of earlier directories not in dir deleted.
func apply(t *testing.T, dir string, applied map[string]client.Object) {
	t.Helper()
	ctx := context.Background()
	objs := fixtureObjects(t, dir)
	for key, o := range applied {
		if objs[key] == nil {
			if err := k8s.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
	}
	// Contracts first, so that partners find them.
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		want := objs[key]
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			live := want.DeepCopy()
			switch err := k8s.Get(ctx, client.ObjectKeyFromObject(want), live); {
			case apierrors.IsNotFound(err):
				return k8s.Create(ctx, want.DeepCopy())
			case err != nil:
				return err
			}
			live.Object["spec"] = want.Object["spec"]
			return k8s.Update(ctx, live)
		})
		if err != nil {
			t.Fatalf("applying %s: %v", key, err)
		}
		applied[key] = want
	}
}

// fixtureObjects are the Partners and DistributorContracts of dir, by
// "kind/name" (DistributorContract sorts first).
func fixtureObjects(t *testing.T, dir string) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(b, &u.Object); err != nil {
			t.Fatal(err)
		}
		if u.GetAPIVersion() == v1.GroupVersion.String() {
			out[u.GetKind()+"/"+u.GetName()] = u
		}
	}
	return out
}

// settle waits until every partner of the diff has, in status, what state
// says the operator decides; then checks for a while that it stays so.
func settle(t *testing.T, how string, d *plugin.Diff, state func(plugin.PartnerDiff) *plugin.PartnerState) {
	t.Helper()
	check := func() error {
		list := &v1.PartnerList{}
		if err := k8s.List(context.Background(), list); err != nil {
			return err
		}
		live := map[string]*v1.Partner{}
		for i := range list.Items {
			live[list.Items[i].Name] = &list.Items[i]
		}
		var bad []string
		for _, pd := range d.Partners {
			want, p := state(pd), live[pd.Name]
			switch {
			case want == nil && p != nil && p.DeletionTimestamp == nil:
				bad = append(bad, pd.Name+" is still there")
			case want == nil:
			case p == nil:
				bad = append(bad, pd.Name+" does not exist")
			case p.Status.ObservedGeneration != p.Generation || p.Status.Phase != want.Phase || p.Status.Contract != want.Contract || !sameNext(p.Status.Next, want.Next):
				bad = append(bad, fmt.Sprintf("%s: %s %q next %s (generation %d observed %d), the diff says %s %q next %s",
					pd.Name, p.Status.Phase, p.Status.Contract, nextString(p.Status.Next), p.Generation, p.Status.ObservedGeneration, want.Phase, want.Contract, nextString(want.Next)))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%s", strings.Join(bad, "; "))
		}
		return nil
	}
	if err := testcluster.Poll(2*time.Minute, check); err != nil {
		t.Fatalf("%s: %v", how, err)
	}
	// Must not change afterwards: the operator acts on the change in one go.
	testenv.Consistently(t, 3*time.Second, how+": settled, then", check)
}

func sameNext(a, b *v1.NextChange) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.At.Equal(&b.At) && a.Outcome == b.Outcome && a.Contract == b.Contract
}

func nextString(n *v1.NextChange) string {
	if n == nil {
		return "none"
	}
	return fmt.Sprintf("%s %q at %s", n.Outcome, n.Contract, n.At.UTC().Format(time.RFC3339))
}

// checkHistory: an effect at the instant the change is applied is the
// newest history entry, with the contracts the diff named.
func checkHistory(t *testing.T, change string, d *plugin.Diff) {
	t.Helper()
	recorded := map[v1.NextOutcome]v1.HistoryOutcome{v1.NextFailOver: v1.HistoryFailedOver, v1.NextRevoke: v1.HistoryRevoked, v1.NextGrant: v1.HistoryGranted}
	for _, pd := range d.Partners {
		for _, e := range pd.Effects {
			if !e.At.Time.Equal(fixtureAt) {
				continue
			}
			p := &v1.Partner{}
			if err := k8s.Get(context.Background(), client.ObjectKey{Name: pd.Name}, p); err != nil {
				t.Fatal(err)
			}
			h := p.Status.History
			if len(h) == 0 || h[0].Outcome != recorded[e.Outcome] || !h[0].Time.Time.Equal(fixtureAt) || h[0].PreviousContract != e.From || h[0].Contract != e.To {
				t.Errorf("%s: %s: the diff said %s %q -> %q at %s; history %+v", change, pd.Name, e.Outcome, e.From, e.To, e.At.UTC().Format(time.RFC3339), h)
			}
		}
	}
}
