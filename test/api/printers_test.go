package api_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
)

// tableAccept asks the API server to print, as kubectl get does.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"

// TestPrinterColumns asks the API server for the tables `kubectl get`
// prints and checks their columns, in order, and the cells of one object
// with a status as the operator writes it.
func TestPrinterColumns(t *testing.T) {
	needCluster(t)
	ctx := testContext(t)
	const ns = "api-tables"
	if err := ensureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	objects := []struct {
		manifest string
		status   string
	}{
		{`
apiVersion: entitlements.partnerops.io/v1alpha1
kind: DistributorContract
metadata: {name: table-contract}
spec:
  distributor: Bytec
  region: DE
  startsAt: "2021-07-01T00:00:00Z"
  endsAt: "2026-11-30T23:59:59Z"
  entitlements: [{tier: Advanced, subscriptions: 50}]
`, `{phase: Expiring, partners: 4, nextTransitionAt: "2026-11-30T23:59:59Z", conditions: [{type: Ready, status: "True", reason: Reconciled, message: ok, lastTransitionTime: "2026-11-01T00:00:00Z"}]}`},
		{`
apiVersion: entitlements.partnerops.io/v1alpha1
kind: Partner
metadata: {name: table-partner}
spec:
  tier: Advanced
  type: SystemIntegrator
  region: DE
  contracts: [table-contract]
  namespaces: [table-partner]
  access: [{kind: Group, name: table-admins}]
`, `{phase: Entitled, contract: table-contract, entitledUntil: "2026-11-30T23:59:59Z", subscriptions: {used: 3, hard: 50, summary: 3/50}, conditions: [{type: Ready, status: "False", reason: QuotaNotCounted, message: waiting, lastTransitionTime: "2026-11-01T00:00:00Z"}]}`},
		{`
apiVersion: entitlements.partnerops.io/v1alpha1
kind: Subscription
metadata: {name: table-sub, namespace: ` + ns + `}
spec: {product: Directory Server, customer: Stadtwerke Musterstadt}
`, ``},
	}
	for _, o := range objects {
		obj, err := parseObject(o.manifest)
		if err != nil {
			t.Fatal(err)
		}
		created, err := createStrict(ctx, obj, false)
		if err != nil {
			t.Fatal(err)
		}
		if o.status == "" {
			continue
		}
		st, err := parseObject(o.status)
		if err != nil {
			t.Fatal(err)
		}
		created.Object["status"] = st.Object
		ri, _ := resourceFor(created)
		if _, err := ri.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("status of %s: %v", created.GetName(), err)
		}
	}

	tests := []struct {
		path   string // collection to list
		name   string // the row to check
		prefix []string
		cells  []string // cells of that row before Age
		wide   []string // priority 1 columns (kubectl get -o wide)
	}{
		{
			path:   "/apis/entitlements.partnerops.io/v1alpha1/partners",
			name:   "table-partner",
			prefix: []string{"Name", "Ready", "Tier", "Contract", "Phase", "Subscriptions", "Expires", "Age"},
			cells:  []string{"table-partner", "False", "Advanced", "table-contract", "Entitled", "3/50", "2026-11-30T23:59:59Z"},
			wide:   []string{"Type", "Specializations", "Meets", "Qualifies", "Region", "Reason", "Next", "Next-At"},
		},
		{
			path:   "/apis/entitlements.partnerops.io/v1alpha1/distributorcontracts",
			name:   "table-contract",
			prefix: []string{"Name", "Ready", "Distributor", "Region", "Phase", "Ends", "Partners", "Age"},
			cells:  []string{"table-contract", "True", "Bytec", "DE", "Expiring", "2026-11-30T23:59:59Z", "4"},
			wide:   []string{"Starts", "Next", "FailOver", "Revoke"},
		},
		{
			path:   "/apis/entitlements.partnerops.io/v1alpha1/namespaces/" + ns + "/subscriptions",
			name:   "table-sub",
			prefix: []string{"Name", "Product", "Customer", "Units", "Age"},
			cells:  []string{"table-sub", "Directory Server", "Stadtwerke Musterstadt", "1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.path[strings.LastIndex(tc.path, "/")+1:], func(t *testing.T) {
			raw, err := kube.CoreV1().RESTClient().Get().AbsPath(tc.path).SetHeader("Accept", tableAccept).DoRaw(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var table metav1.Table
			if err := json.Unmarshal(raw, &table); err != nil {
				t.Fatal(err)
			}
			if table.Kind != "Table" {
				t.Fatalf("got %s, not a Table: %.200s", table.Kind, raw)
			}
			var names, wide []string
			for i, c := range table.ColumnDefinitions {
				if i < len(tc.prefix) {
					names = append(names, c.Name)
					if c.Priority != 0 {
						t.Errorf("column %s has priority %d; kubectl get would hide it", c.Name, c.Priority)
					}
				} else if c.Priority == 0 {
					t.Errorf("column %s after the documented ones has priority 0", c.Name)
				} else {
					wide = append(wide, c.Name)
				}
			}
			if !slices.Equal(names, tc.prefix) {
				t.Errorf("columns begin %v, want %v", names, tc.prefix)
			}
			if !slices.Equal(wide, tc.wide) {
				t.Errorf("wide columns %v, want %v", wide, tc.wide)
			}
			found := false
			for _, row := range table.Rows {
				if len(row.Cells) == 0 || fmt.Sprint(row.Cells[0]) != tc.name {
					continue
				}
				found = true
				var cells []string
				for _, c := range row.Cells[:min(len(tc.cells), len(row.Cells))] {
					cells = append(cells, fmt.Sprint(c))
				}
				if !slices.Equal(cells, tc.cells) {
					t.Errorf("row %s: cells %q, want %q", tc.name, cells, tc.cells)
				}
			}
			if !found {
				t.Errorf("no row for %s", tc.name)
			}
		})
	}
}

// TestDiscovery: short names and the entitlements category, so that
// `kubectl get ptr,dc,sub` and `kubectl get entitlements` work.
func TestDiscovery(t *testing.T) {
	needCluster(t)
	dc, err := discovery.NewDiscoveryClientForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	list, err := dc.ServerResourcesForGroupVersion(group + "/v1alpha1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		kind       string
		namespaced bool
		shortNames []string
	}{
		"partners":             {"Partner", false, []string{"partner", "ptr"}},
		"distributorcontracts": {"DistributorContract", false, []string{"dc"}},
		"subscriptions":        {"Subscription", true, []string{"sub"}},
	}
	seen := map[string]bool{}
	for _, r := range list.APIResources {
		w, ok := want[r.Name]
		if !ok {
			continue // subresources such as partners/status
		}
		seen[r.Name] = true
		if r.Kind != w.kind || r.Namespaced != w.namespaced {
			t.Errorf("%s: kind %s namespaced %v, want %s %v", r.Name, r.Kind, r.Namespaced, w.kind, w.namespaced)
		}
		if !slices.Equal(r.ShortNames, w.shortNames) {
			t.Errorf("%s: short names %v, want %v", r.Name, r.ShortNames, w.shortNames)
		}
		if !slices.Contains(r.Categories, "entitlements") {
			t.Errorf("%s: categories %v, want entitlements among them", r.Name, r.Categories)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s not in discovery", name)
		}
	}

	// What kubectl does with `kubectl get entitlements` and `kubectl get ptr`.
	cached := memory.NewMemCacheClient(dc)
	expanded, ok := restmapper.NewDiscoveryCategoryExpander(cached).Expand("entitlements")
	if !ok {
		t.Fatal("category entitlements does not expand")
	}
	var got []string
	for _, gr := range expanded {
		got = append(got, gr.String())
	}
	slices.Sort(got)
	wantGR := []string{"distributorcontracts." + group, "partners." + group, "subscriptions." + group}
	if !slices.Equal(got, wantGR) {
		t.Errorf("entitlements expands to %v, want %v", got, wantGR)
	}
	mapper := restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)
	for short, resource := range map[string]string{"ptr": "partners", "partner": "partners", "dc": "distributorcontracts", "sub": "subscriptions"} {
		gvr, err := mapper.ResourceFor(schema.GroupVersionResource{Resource: short})
		if err != nil {
			t.Errorf("kubectl get %s: %v", short, err)
			continue
		}
		if gvr.Group != group || gvr.Resource != resource {
			t.Errorf("kubectl get %s resolves to %s, want %s.%s", short, gvr, resource, group)
		}
	}
}
