package api_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// The defaults the API documents (docs/api.md, design): what the API server
// fills in when a manifest leaves the field out. "[]" stands for every item
// of a list.
var documentedDefaults = []struct {
	kind  string
	path  string
	value any
}{
	{"DistributorContract", "spec.noticePeriod", "720h"},
	{"DistributorContract", "spec.gracePeriod", "0s"},
	{"DistributorContract", "spec.entitlements[].maxNamespaces", 1},
	{"DistributorContract", "spec.entitlements[].quotaPolicy", "Shared"},
	{"Partner", "spec.type", "Reseller"},
	{"Partner", "spec.deletionPolicy", "Retain"},
	{"Subscription", "spec.units", 1},
}

// sample is one manifest from config/samples.
type sample struct {
	file string
	obj  *unstructured.Unstructured
}

// readSamples reads every manifest under config/samples and checks that each
// file is listed in the kustomization.yaml of its directory.
func readSamples(t *testing.T) []sample {
	t.Helper()
	root := repoPath(t, "config", "samples")
	listed := map[string]bool{}
	var files []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		if d.Name() != "kustomization.yaml" {
			files = append(files, path)
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k struct {
			Resources []string `json:"resources"`
		}
		if err := yaml.Unmarshal(b, &k); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		for _, r := range k.Resources {
			p := filepath.Join(filepath.Dir(path), r)
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s lists %s: %v", path, r, err)
			}
			listed[p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []sample
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if !listed[f] {
			t.Errorf("config/samples/%s is not in the kustomization.yaml beside it", rel)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range splitDocuments(string(b)) {
			obj, err := parseObject(doc)
			if err != nil {
				t.Fatalf("config/samples/%s: %v", rel, err)
			}
			out = append(out, sample{file: rel, obj: obj})
		}
	}
	if len(out) == 0 {
		t.Fatal("no samples in config/samples")
	}
	return out
}

// TestSamplesAreAccepted applies every sample with server-side apply (as
// Argo CD and Flux do), strictly validated, and reads it back: what is
// stored is what the sample says plus the documented defaults, nothing
// else.
func TestSamplesAreAccepted(t *testing.T) {
	needCluster(t)
	ctx := testContext(t)
	samples := readSamples(t)

	// Cluster-scoped first, then Subscriptions into namespaces that the
	// operator would have created (here the test does).
	order := map[string]int{"DistributorContract": 0, "Partner": 1, "Subscription": 2}
	sort.SliceStable(samples, func(i, j int) bool { return order[samples[i].obj.GetKind()] < order[samples[j].obj.GetKind()] })

	exercised := map[string]int{}
	for _, s := range samples {
		obj := s.obj
		id := s.file + ": " + obj.GetKind() + " " + obj.GetName()
		if obj.GetAPIVersion() != group+"/v1alpha1" {
			t.Errorf("%s: apiVersion %q, want %s/v1alpha1", id, obj.GetAPIVersion(), group)
			continue
		}
		ri, err := resourceFor(obj)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if ns := obj.GetNamespace(); ns != "" {
			if err := ensureNamespace(ctx, ns); err != nil {
				t.Fatal(err)
			}
		}
		body, err := json.Marshal(obj.Object)
		if err != nil {
			t.Fatal(err)
		}
		force := true
		if _, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
			FieldManager: "samples-test", Force: &force, FieldValidation: metav1.FieldValidationStrict,
		}); err != nil {
			t.Errorf("%s refused: %v", id, err)
			continue
		}
		got, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}

		want := obj.DeepCopy()
		for _, d := range documentedDefaults {
			if d.kind == obj.GetKind() {
				n := fillDefault(want.Object, strings.Split(d.path, "."), d.value)
				exercised[d.kind+" "+d.path] += n
			}
		}
		wantSpec, err := normalize(want.Object["spec"])
		if err != nil {
			t.Fatal(err)
		}
		gotSpec, err := normalize(got.Object["spec"])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(wantSpec, gotSpec) {
			w, _ := json.MarshalIndent(wantSpec, "", "  ")
			g, _ := json.MarshalIndent(gotSpec, "", "  ")
			t.Errorf("%s: stored spec is not the sample plus documented defaults\nwant %s\ngot  %s", id, w, g)
		}
	}
	// Each documented default is shown by at least one sample that leaves
	// the field out, so the check above is not vacuous.
	for _, d := range documentedDefaults {
		if exercised[d.kind+" "+d.path] == 0 {
			t.Errorf("no sample leaves %s %s out, so its default %v is untested", d.kind, d.path, d.value)
		}
	}
	t.Logf("%d samples accepted; defaults exercised: %v", len(samples), exercised)
}

// fillDefault sets value at path wherever it is absent and returns how many
// places it filled. A segment ending in [] descends into every list item.
func fillDefault(obj map[string]any, path []string, value any) int {
	seg := path[0]
	if len(path) == 1 {
		if _, ok := obj[seg]; ok {
			return 0
		}
		obj[seg] = value
		return 1
	}
	if name, ok := strings.CutSuffix(seg, "[]"); ok {
		items, _ := obj[name].([]any)
		n := 0
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				n += fillDefault(m, path[1:], value)
			}
		}
		return n
	}
	child, ok := obj[seg].(map[string]any)
	if !ok {
		return 0
	}
	return fillDefault(child, path[1:], value)
}

// TestSamplesTellTheStory keeps config/samples covering what the design's
// story needs, so that later edits do not quietly drop a part of it.
func TestSamplesTellTheStory(t *testing.T) {
	samples := readSamples(t)
	ending := map[string]bool{} // contracts with an end
	distributors := map[string]string{}
	tiers, ptypes := map[string]bool{}, map[string]bool{}
	var middlewareSI, onlyEnding, subs bool
	for _, s := range samples {
		o := s.obj.Object
		switch s.obj.GetKind() {
		case "DistributorContract":
			d, _, _ := unstructured.NestedString(o, "spec", "distributor")
			distributors[s.obj.GetName()] = d
			if _, ok, _ := unstructured.NestedString(o, "spec", "endsAt"); ok {
				ending[s.obj.GetName()] = true
			}
		case "Subscription":
			subs = true
		}
	}
	for _, s := range samples {
		if s.obj.GetKind() != "Partner" {
			continue
		}
		o := s.obj.Object
		tier, _, _ := unstructured.NestedString(o, "spec", "tier")
		tiers[tier] = true
		pt, ok, _ := unstructured.NestedString(o, "spec", "type")
		if !ok {
			pt = "Reseller"
		}
		ptypes[pt] = true
		specs, _, _ := unstructured.NestedStringSlice(o, "spec", "specializations")
		if pt == "SystemIntegrator" && slices.Contains(specs, "Middleware") {
			middlewareSI = true
		}
		contracts, _, _ := unstructured.NestedStringSlice(o, "spec", "contracts")
		all := len(contracts) > 0
		for _, c := range contracts {
			if _, ok := distributors[c]; !ok {
				t.Errorf("partner %s lists contract %s, which no sample defines", s.obj.GetName(), c)
			}
			all = all && ending[c]
		}
		onlyEnding = onlyEnding || all
	}
	if len(distributors) < 3 || len(ending) != 1 {
		t.Errorf("want three distributor contracts, exactly one of them ending; got %v, ending %v", distributors, ending)
	}
	for _, tier := range []string{"Ready", "Advanced", "Premier"} {
		if !tiers[tier] {
			t.Errorf("no sample partner of tier %s", tier)
		}
	}
	for _, pt := range []string{"Reseller", "SystemIntegrator", "ApplicationDeveloper", "ServiceProvider"} {
		if !ptypes[pt] {
			t.Errorf("no sample partner of type %s", pt)
		}
	}
	if !middlewareSI {
		t.Error("no sample system integrator with the Middleware specialization")
	}
	if !onlyEnding {
		t.Error("no sample partner that lists only the ending contract")
	}
	if !subs {
		t.Error("no sample Subscription")
	}
}
