package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const partnerYAML = `apiVersion: entitlements.partnerops.io/v1alpha1
kind: Partner
metadata: {name: %s}
spec: {tier: Ready, region: DE, contracts: [a], namespaces: [x], access: [{kind: Group, name: g}]}
`

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadPaths(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"partners/one.yaml": strings.ReplaceAll(partnerYAML, "%s", "one") + "---\n---\n" + `apiVersion: v1
kind: Namespace
metadata: {name: skipped}
`,
		// kubectl get -o yaml of several objects is a List.
		"export.yml": `apiVersion: v1
kind: List
items:
- apiVersion: entitlements.partnerops.io/v1alpha1
  kind: DistributorContract
  metadata: {name: a}
  spec: {distributor: A, region: DE, startsAt: "2026-01-01T00:00:00Z", entitlements: [{tier: Ready, subscriptions: 1}]}
  status: {phase: Active}
`,
		"notes.md":             "# not a manifest",
		".git/config.yaml":     "not: read",
		"sub/dir/two.json":     `{"apiVersion":"entitlements.partnerops.io/v1alpha1","kind":"Partner","metadata":{"name":"two"},"spec":{"tier":"Ready","region":"DE","contracts":["a"],"namespaces":["y"],"access":[]}}`,
		"sub/subscription.yml": "apiVersion: entitlements.partnerops.io/v1alpha1\nkind: Subscription\nmetadata: {name: s, namespace: x}\n",
	})
	w, err := readPaths(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.partners) != 2 || w.partners[0].Name != "one" || w.partners[1].Name != "two" || len(w.contracts) != 1 || w.contracts["a"] == nil {
		t.Errorf("read %+v %+v", w.partners, w.contracts)
	}
	stdin := strings.NewReader(strings.ReplaceAll(partnerYAML, "%s", "piped"))
	if w, err := readPaths(stdin, "-"); err != nil || len(w.partners) != 1 || w.partners[0].Name != "piped" {
		t.Errorf("stdin: %v %+v", err, w.partners)
	}
}

// TestReadPathsRefuses what would make the answer wrong without a word.
func TestReadPathsRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"a misspelt field": {map[string]string{"c.yaml": `apiVersion: entitlements.partnerops.io/v1alpha1
kind: DistributorContract
metadata: {name: a}
spec: {distributor: A, region: DE, startsAt: "2026-01-01T00:00:00Z", endAt: "2026-02-01T00:00:00Z", entitlements: []}
`}, `c.yaml (document 1): DistributorContract: json: unknown field "endAt"`},
		"the same Partner twice": {map[string]string{
			"a.yaml": strings.ReplaceAll(partnerYAML, "%s", "one"),
			"b.yaml": strings.ReplaceAll(partnerYAML, "%s", "one"),
		}, "Partner one is also in"},
		"another version of the API": {map[string]string{"p.yaml": "apiVersion: entitlements.partnerops.io/v1beta1\nkind: Partner\nmetadata: {name: p}\n"},
			"this plugin reads entitlements.partnerops.io/v1alpha1"},
		"no name":    {map[string]string{"p.yaml": "apiVersion: entitlements.partnerops.io/v1alpha1\nkind: Partner\nspec: {tier: Ready}\n"}, "Partner without metadata.name"},
		"not YAML":   {map[string]string{"p.yaml": "kind: [unclosed\n"}, "p.yaml"},
		"wrong type": {map[string]string{"p.yaml": "apiVersion: entitlements.partnerops.io/v1alpha1\nkind: Partner\nmetadata: {name: p}\nspec: {contracts: a}\n"}, "cannot unmarshal"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.files)
			if _, err := readPaths(nil, dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want an error saying %q, got %v", tc.want, err)
			}
		})
	}
	if _, err := readPaths(nil, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing path: want an error")
	}
}
