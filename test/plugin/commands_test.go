package plugin_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/plugin"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// requests records the plugin's requests to the API server.
type requests struct {
	mu   sync.Mutex
	list []string // method and URL path?query
}

func (r *requests) wrap(cfg *rest.Config) *rest.Config {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			r.mu.Lock()
			r.list = append(r.list, req.Method+" "+req.URL.RequestURI())
			r.mu.Unlock()
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// counted runs the plugin and returns the requests it made.
func counted(t *testing.T, o plugin.Options, args ...string) []string {
	t.Helper()
	var r requests
	o.WrapConfig = r.wrap
	if code, _, errOut := runWith(o, append(args, "--kubeconfig", cluster.KubeconfigPath)...); code != 0 {
		t.Fatalf("%q: exit %d: %s", args, code, errOut)
	}
	return r.list
}

const api = "/apis/entitlements.partnerops.io/v1alpha1/"

// TestCommands: every command answers in every output format, with the
// kubeconfig flags, reading only what it needs.
func TestCommands(t *testing.T) {
	startManager(t, testenv.ManagerOptions{})
	ctx := context.Background()
	start, end := time.Now().Add(-time.Hour), time.Now().Add(240*time.Hour)
	c1 := testenv.Contract("cmd-c1", "One", "DE", start, end, 0, 0, testenv.AllTiers(5, 1)...)
	c2 := testenv.Contract("cmd-c2", "Two", "DE", start, time.Time{}, 0, 0, testenv.Tier(v1.TierReady, 5, 1))
	p1 := testenv.Partner("cmd-p1", v1.TierReady, "DE", []string{"cmd-c1", "cmd-c2"}, "cmd-p1")
	p2 := testenv.Partner("cmd-p2", v1.TierAdvanced, "DE", []string{"cmd-c1"}, "cmd-p2")
	p3 := testenv.Partner("cmd-p3", v1.TierReady, "DE", []string{"cmd-missing"}, "cmd-p3")
	objs := []client.Object{c1, c2, p1, p2, p3}
	for _, o := range objs {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	defer deleteAll(t, objs...)
	if err := testcluster.Poll(2*time.Minute, func() error {
		for _, name := range []string{"cmd-p1", "cmd-p2"} {
			p := &v1.Partner{}
			if err := k8s.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
				return err
			}
			if p.Status.Phase != v1.PartnerEntitled || len(p.Status.History) == 0 {
				return fmt.Errorf("%s: %s, %d history entries", name, p.Status.Phase, len(p.Status.History))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after := t.TempDir()
	changed := p2.DeepCopy()
	changed.Spec.Tier, changed.Spec.Contracts = v1.TierReady, []string{"cmd-c1", "cmd-c2"}
	changed.TypeMeta.APIVersion, changed.TypeMeta.Kind = v1.GroupVersion.String(), "Partner"
	changed.ObjectMeta = metav1.ObjectMeta{Name: changed.Name}
	writeYAML(t, filepath.Join(after, "cmd-p2.yaml"), changed)

	endStamp := end.UTC().Truncate(time.Second).Format(time.RFC3339)
	for _, tc := range []struct {
		args []string
		// check looks at the -o json answer, read into a fresh report.
		report any
		check  func(any) error
		names  []string
		wide   string
	}{{
		args: []string{"status"}, report: &plugin.Status{}, wide: "SUBSCRIPTIONS",
		names: []string{"distributorcontract.entitlements.partnerops.io/cmd-c1", "partner.entitlements.partnerops.io/cmd-p3"},
		check: func(r any) error {
			s := r.(*plugin.Status)
			p := find(s.Partners, func(p plugin.PartnerState) bool { return p.Name == "cmd-p1" })
			if p == nil || p.Contract != "cmd-c1" || p.Next == nil || p.Next.Outcome != v1.NextFailOver || p.Next.Contract != "cmd-c2" || p.Next.At.UTC().Format(time.RFC3339) != endStamp {
				return fmt.Errorf("cmd-p1: %+v", p)
			}
			return nil
		},
	}, {
		args: []string{"forecast", "--in", "250h"}, report: &plugin.Forecast{}, wide: "SUBSCRIPTIONS",
		names: []string{"partner.entitlements.partnerops.io/cmd-p1", "partner.entitlements.partnerops.io/cmd-p2"},
		check: func(r any) error {
			f := r.(*plugin.Forecast)
			p := find(f.Partners, func(p plugin.ForecastRow) bool { return p.Partner == "cmd-p2" })
			if p == nil || p.Outcome != "Revoke" || p.Subscriptions == nil || *p.Subscriptions != 0 {
				return fmt.Errorf("cmd-p2: %+v", p)
			}
			return nil
		},
	}, {
		args: []string{"why", "cmd-p1"}, report: &plugin.Why{}, wide: "PHASE",
		names: []string{"partner.entitlements.partnerops.io/cmd-p1"},
		check: func(r any) error {
			y := r.(*plugin.Why)
			if y.Contract != "cmd-c1" || len(y.Contracts) != 2 || y.Contracts[0].Reason != plugin.ReasonSupplies || y.Contracts[1].Reason != plugin.ReasonNotNeeded {
				return fmt.Errorf("%+v", y)
			}
			return nil
		},
	}, {
		args: []string{"why", "cmd-p3"}, report: &plugin.Why{}, wide: "PHASE",
		names: []string{"partner.entitlements.partnerops.io/cmd-p3"},
		check: func(r any) error {
			y := r.(*plugin.Why)
			if y.Phase != v1.PartnerRevoked || len(y.Contracts) != 1 || y.Contracts[0].Reason != v1.ReasonContractNotFound {
				return fmt.Errorf("%+v", y)
			}
			return nil
		},
	}, {
		args: []string{"history", "cmd-p1"}, report: &plugin.History{},
		names: []string{"partner.entitlements.partnerops.io/cmd-p1"},
		check: func(r any) error {
			h := r.(*plugin.History)
			if len(h.Entries) == 0 || h.Entries[len(h.Entries)-1].Outcome != v1.HistoryGranted || h.Entries[0].Contract != "cmd-c1" {
				return fmt.Errorf("%+v", h)
			}
			return nil
		},
	}, {
		args: []string{"diff", after}, report: &plugin.Diff{}, wide: "NEXT AFTER",
		names: []string{"partner.entitlements.partnerops.io/cmd-p2"},
		check: func(r any) error {
			d := r.(*plugin.Diff)
			p := find(d.Partners, func(p plugin.PartnerDiff) bool { return p.Name == "cmd-p2" })
			if p == nil || p.Outcome != "FailOver" || p.To != "cmd-c2" || p.At == nil || p.At.UTC().Format(time.RFC3339) != endStamp || p.Change != plugin.Modified || d.Summary.Revoke != 0 {
				return fmt.Errorf("cmd-p2: %+v", p)
			}
			return nil
		},
	}, {
		args: []string{"version"}, report: &plugin.Version{},
		check: func(r any) error {
			if v := r.(*plugin.Version); v.Version == "" || v.GoVersion == "" {
				return fmt.Errorf("%+v", v)
			}
			return nil
		},
	}} {
		name := strings.Join(tc.args, " ")
		if tc.args[0] == "diff" {
			name = "diff against the cluster"
		}
		t.Run(name, func(t *testing.T) {
			code, js, errOut := run(t, append(tc.args, "-o", "json")...)
			if code != 0 {
				t.Fatalf("-o json: exit %d: %s", code, errOut)
			}
			if err := yaml.UnmarshalStrict([]byte(js), tc.report); err != nil {
				t.Fatalf("-o json: %v\n%s", err, js)
			}
			if err := tc.check(tc.report); err != nil {
				t.Errorf("-o json: %v", err)
			}
			_, ym, _ := run(t, append(tc.args, "-o", "yaml")...)
			var fromJSON, fromYAML any
			if yaml.Unmarshal([]byte(js), &fromJSON) != nil || yaml.Unmarshal([]byte(ym), &fromYAML) != nil || !reflect.DeepEqual(fromJSON, fromYAML) {
				t.Errorf("-o yaml is not -o json:\n%s\n%s", ym, js)
			}
			if kind, _ := fromJSON.(map[string]any)["kind"].(string); kind == "" || !strings.Contains(js, plugin.ReportVersion.String()) {
				t.Errorf("-o json: no apiVersion and kind:\n%s", js)
			}
			_, names, _ := run(t, append(tc.args, "-o", "name")...)
			for _, n := range tc.names {
				if !slices.Contains(strings.Split(names, "\n"), n) {
					t.Errorf("-o name: want %s in\n%s", n, names)
				}
			}
			_, table, _ := run(t, tc.args...)
			code, wide, _ := run(t, append(tc.args, "-o", "wide")...)
			if code != 0 || len(wide) < len(table) || tc.wide != "" && (strings.Contains(table, tc.wide) || !strings.Contains(wide, tc.wide)) {
				t.Errorf("-o wide: exit %d; want the table with column %q in wide only:\n%s\n%s", code, tc.wide, table, wide)
			}
			if code, _, errOut := run(t, append(tc.args, "-n", "default", "--request-timeout", "30s")...); code != 0 {
				t.Errorf("-n default: exit %d: %s", code, errOut)
			}
		})
	}

	t.Run("why and history read only what they need", func(t *testing.T) {
		got := counted(t, plugin.Options{}, "history", "cmd-p1")
		if want := []string{"GET " + api + "partners/cmd-p1"}; !slices.Equal(got, want) {
			t.Errorf("history: requests %q, want %q", got, want)
		}
		got = counted(t, plugin.Options{}, "why", "cmd-p1")
		want := []string{"GET " + api + "partners/cmd-p1", "GET " + api + "distributorcontracts/cmd-c1", "GET " + api + "distributorcontracts/cmd-c2"}
		if !slices.Equal(got, want) {
			t.Errorf("why: requests %q, want %q", got, want)
		}
	})
	t.Run("lists are paginated", func(t *testing.T) {
		got := counted(t, plugin.Options{PageSize: 2}, "status")
		pages := 0
		for _, r := range got {
			if !strings.HasPrefix(r, "GET "+api) || !strings.Contains(r, "limit=2") {
				t.Errorf("status: request %q: want a list of this API's, in pages of 2", r)
			}
			if strings.Contains(r, "partners?") && strings.Contains(r, "continue=") {
				pages++
			}
		}
		if pages < 1 {
			t.Errorf("status read 3 partners in pages of 2 without a second page: %q", got)
		}
	})
	t.Run("kubeconfig flags", func(t *testing.T) {
		kc := twoContexts(t)
		if code, _, errOut := runWith(plugin.Options{}, "status", "--kubeconfig", kc); code != plugin.ExitError || !strings.Contains(errOut, "127.0.0.1:1") {
			t.Errorf("the current context is unreachable: want exit 1 naming it, got %d %q", code, errOut)
		}
		if code, out, errOut := runWith(plugin.Options{}, "why", "cmd-p1", "--kubeconfig", kc, "--context", "test", "-n", "kube-system"); code != 0 || !strings.Contains(out, "cmd-c1") {
			t.Errorf("--context test: exit %d: %s%s", code, out, errOut)
		}
		if code, _, errOut := run(t, "history", "cmd-p1", "--as", "somebody"); code != plugin.ExitError || !strings.Contains(errOut, "forbidden") {
			t.Errorf("--as somebody: want exit 1, forbidden, got %d %q", code, errOut)
		}
		if code, _, errOut := run(t, "history", "no-such-partner"); code != plugin.ExitError || !strings.Contains(errOut, `partners.entitlements.partnerops.io "no-such-partner" not found`) {
			t.Errorf("a missing partner: want exit 1 saying not found, got %d %q", code, errOut)
		}
	})
}

func find[T any](s []T, f func(T) bool) *T {
	for i := range s {
		if f(s[i]) {
			return &s[i]
		}
	}
	return nil
}

// twoContexts is the admin kubeconfig with another, unreachable context
// made current, and the real one named "test".
func twoContexts(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(cluster.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	real := cfg.Contexts[cfg.CurrentContext]
	cfg.Contexts["test"] = real
	cfg.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.Contexts["broken"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: real.AuthInfo}
	cfg.CurrentContext = "broken"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeYAML(t *testing.T, path string, obj any) {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// deleteAll deletes objects and waits until they are gone (a Partner's
// finalizer needs the manager running).
func deleteAll(t *testing.T, objs ...client.Object) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		if err := k8s.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
	if err := testcluster.Poll(2*time.Minute, func() error {
		for _, o := range objs {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object)); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s still there (%v)", o.GetName(), err)
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}
