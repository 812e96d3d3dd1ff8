// Package plugin_test drives `kubectl entitlements` against the local
// control plane with the operator running, and checks its forecast against
// what the operator then does.
package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/plugin"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var (
	cluster *testcluster.Cluster
	k8s     client.Client
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testcluster.RunTests(m, !testing.Short(), testcluster.Options{}, func(c *testcluster.Cluster) error {
		cluster = c
		var err error
		if k8s, err = testenv.AdminClient(c.Config); err != nil {
			return err
		}
		return nil
	}))
}

// startManager runs the operator against the control plane until the test
// ends, or skips the test under -short.
func startManager(t *testing.T, o testenv.ManagerOptions) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane")
	}
	m, err := testenv.StartManager(cluster.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
}

// run runs the plugin against the control plane with its admin kubeconfig.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runWith(plugin.Options{}, append(args, "--kubeconfig", cluster.KubeconfigPath)...)
}

func runWith(o plugin.Options, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := plugin.Run(context.Background(), args, &out, &errOut, o)
	return code, out.String(), errOut.String()
}

// TestForecastAgreesWithTheOperator: 200 partners over 5 contracts; the
// plugin forecasts what ending one contract at T does, then the contract
// really ends at T and the operator acts. Every partner must end up where
// the forecast said.
func TestForecastAgreesWithTheOperator(t *testing.T) {
	startManager(t, testenv.ManagerOptions{})
	ctx := context.Background()
	var names []string
	var created []client.Object
	defer func() { deleteAll(t, created...) }()
	for i := range 5 {
		c := testenv.Contract(fmt.Sprintf("pl-c%d", i), "D", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(5, 1)...)
		if i == 4 { // a contract of another region: never supplies these partners
			c.Spec.Region = "AT"
		}
		if err := k8s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		created = append(created, c)
	}
	lists := [][]string{{"pl-c0"}, {"pl-c0", "pl-c1"}, {"pl-c0", "pl-c4", "pl-c2"}, {"pl-c1", "pl-c0"}, {"pl-c0", "pl-c3", "pl-c1"}}
	for i := range 200 {
		name := fmt.Sprintf("pl-%03d", i)
		names = append(names, name)
		p := testenv.Partner(name, v1.TierReady, "DE", lists[i%len(lists)], name)
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		created = append(created, p)
	}
	if err := testcluster.Poll(3*time.Minute, func() error {
		list := &v1.PartnerList{}
		if err := k8s.List(ctx, list); err != nil {
			return err
		}
		ready := 0
		for _, p := range list.Items {
			if strings.HasPrefix(p.Name, "pl-") && p.Status.Phase == v1.PartnerEntitled {
				ready++
			}
		}
		if ready != 200 {
			return fmt.Errorf("%d of 200 entitled", ready)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	end := time.Now().Add(8 * time.Second).UTC().Truncate(time.Second)
	code, out, errOut := run(t, "forecast", "--end", "pl-c0="+end.Format(time.RFC3339), "-o", "json")
	if code != plugin.ExitOK {
		t.Fatalf("forecast: exit %d: %s", code, errOut)
	}
	var f plugin.Forecast
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatal(err)
	}
	want := map[string]plugin.ForecastRow{}
	counts := map[string]int{}
	for _, r := range f.Partners {
		if strings.HasPrefix(r.Partner, "pl-") {
			want[r.Partner] = r
			counts[r.Outcome]++
		}
	}
	t.Logf("forecast for pl-c0 ending at %s: %v", end.Format(time.RFC3339), counts)
	if counts["Revoke"] == 0 || counts["FailOver"] == 0 || counts["Unchanged"] == 0 {
		t.Fatalf("forecast %v: want some revoked, some failing over, some unchanged", counts)
	}
	// Now it really ends then.
	c0 := &v1.DistributorContract{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: "pl-c0"}, c0); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c0.DeepCopy())
	c0.Spec.EndsAt = &metav1.Time{Time: end}
	if err := k8s.Patch(ctx, c0, patch); err != nil {
		t.Fatal(err)
	}
	if err := testcluster.Poll(time.Minute, func() error {
		list := &v1.PartnerList{}
		if err := k8s.List(ctx, list); err != nil {
			return err
		}
		bad, first := 0, ""
		for _, p := range list.Items {
			w, ok := want[p.Name]
			if !ok {
				continue
			}
			if p.Status.Contract != w.Then {
				if bad == 0 {
					first = fmt.Sprintf("%s on %q, forecast %q (%s)", p.Name, p.Status.Contract, w.Then, w.Outcome)
				}
				bad++
			}
		}
		if bad > 0 {
			return fmt.Errorf("%d partners not where the forecast put them (first: %s)", bad, first)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}

	// The other commands, and their exit codes.
	if code, out, _ := run(t, "status"); code != 0 || !strings.Contains(out, "pl-c0") || !strings.Contains(out, "pl-000") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, "why", "pl-001"); code != 0 || !strings.Contains(out, "ContractExpired") || !strings.Contains(out, plugin.ReasonSupplies) {
		t.Errorf("why: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, "history", "pl-001"); code != 0 || !strings.Contains(out, "FailedOver") || !strings.Contains(out, "Granted") {
		t.Errorf("history: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "why", "no-such-partner"); code != plugin.ExitError || !strings.Contains(errOut, "not found") {
		t.Errorf("why for a missing partner: want exit 1 saying not found, got %d %q", code, errOut)
	}
	if code, _, _ := run(t, "forecast", "--end", "nonsense"); code != plugin.ExitUsage {
		t.Errorf("forecast --end nonsense: want exit 2, got %d", code)
	}
	if code, out, _ := run(t, "--help"); code != 0 || !strings.Contains(out, "Examples:") {
		t.Errorf("--help: want exit 0 with examples, got %d", code)
	}
}
