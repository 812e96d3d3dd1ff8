package install_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// schemaValues are the dotted paths of the values in values.schema.json:
// an object with properties is descended into, anything else is a value.
func schemaValues(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(path("dist", "chart", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Type       any                `json:"type"`
		Properties map[string]*schema `json:"properties"`
	}
	var root schema
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(s *schema, prefix string)
	walk = func(s *schema, prefix string) {
		for name, p := range s.Properties {
			if p.Type == "object" && len(p.Properties) > 0 {
				walk(p, prefix+name+".")
				continue
			}
			out = append(out, prefix+name)
		}
	}
	walk(&root, "")
	sort.Strings(out)
	return out
}

// TestChartReadmeListsEveryValue: every value of values.schema.json has a
// row in dist/chart/README.md, and every row there is a value of the
// schema (no row for a value that went away).
func TestChartReadmeListsEveryValue(t *testing.T) {
	readme, err := os.ReadFile(path("dist", "chart", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-zA-Z0-9_.]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = true
	}
	values := schemaValues(t)
	if len(values) < 40 {
		t.Fatalf("read only %d values from values.schema.json: %v", len(values), values)
	}
	for _, v := range values {
		if v == "global" {
			continue // Helm's own, for subcharts
		}
		if !rows[v] {
			t.Errorf("dist/chart/README.md has no row for the value %s (a line starting \"| `%s` |\")", v, v)
		}
	}
	for r := range rows {
		if !slices.Contains(values, r) {
			t.Errorf("dist/chart/README.md lists %s, which values.schema.json does not have", r)
		}
	}
}

// TestChartPDBNeverBlocksDrain: the PodDisruptionBudget is rendered only
// where a drain can still evict a replica.
func TestChartPDBNeverBlocksDrain(t *testing.T) {
	pdbs := func(vals map[string]any) []*unstructured.Unstructured {
		t.Helper()
		objs, err := renderChart(vals)
		if err != nil {
			t.Fatal(err)
		}
		return ofKind(objs, "PodDisruptionBudget")
	}
	for _, vals := range []map[string]any{
		{"replicaCount": 1},
		{"replicaCount": 1, "leaderElection": map[string]any{"enabled": false}},
		{"replicaCount": 0},
	} {
		if p := pdbs(vals); len(p) != 0 {
			t.Errorf("%v renders %s: with one replica it blocks every node drain", vals, id(p[0]))
		}
	}
	for vals, want := range map[string]map[string]any{
		"1":   {"replicaCount": 2},
		"50%": {"replicaCount": 3, "podDisruptionBudget": map[string]any{"minAvailable": "50%"}},
	} {
		p := pdbs(want)
		if len(p) != 1 {
			t.Fatalf("%v renders %d PodDisruptionBudgets, want 1", want, len(p))
		}
		if got, _, _ := unstructured.NestedFieldNoCopy(p[0].Object, "spec", "minAvailable"); toYAML(got) != toYAML(intOrString(vals)) {
			t.Errorf("%v: minAvailable %v, want %s", want, got, vals)
		}
	}
	if _, err := renderChart(map[string]any{"replicaCount": 2, "podDisruptionBudget": map[string]any{"minAvailable": 2}}); err == nil || !strings.Contains(err.Error(), "drain") {
		t.Errorf("minAvailable 2 of 2 replicas: err %v, want a refusal naming the drain", err)
	}
	if p := pdbs(map[string]any{"podDisruptionBudget": map[string]any{"enabled": false}}); len(p) != 0 {
		t.Errorf("podDisruptionBudget.enabled=false renders %s", id(p[0]))
	}
}

func intOrString(s string) any {
	if s == "1" {
		return 1
	}
	return s
}

// TestChartMetadata: Chart.yaml says which Kubernetes it needs (Helm
// refuses older ones) and carries Artifact Hub's annotations, whose CRDs
// and examples are the chart's.
func TestChartMetadata(t *testing.T) {
	chrt, err := loader.Load(path("dist", "chart"))
	if err != nil {
		t.Fatal(err)
	}
	if chrt.Metadata.KubeVersion != ">=1.30.0-0" {
		t.Errorf("kubeVersion %q, want >=1.30.0-0", chrt.Metadata.KubeVersion)
	}
	if _, err := renderChartFor(nil, &chartutil.KubeVersion{Version: "v1.29.9", Major: "1", Minor: "29"}); err == nil {
		t.Error("Kubernetes 1.29: rendered, want Helm's refusal (kubeVersion)")
	}
	if _, err := renderChartFor(nil, &chartutil.KubeVersion{Version: "v1.30.0-eks-1234", Major: "1", Minor: "30"}); err != nil {
		t.Errorf("Kubernetes 1.30 with a vendor suffix: %v", err)
	}

	ann := chrt.Metadata.Annotations
	for _, k := range []string{"artifacthub.io/license", "artifacthub.io/links", "artifacthub.io/crds", "artifacthub.io/crdsExamples", "artifacthub.io/changes", "artifacthub.io/category"} {
		if strings.TrimSpace(ann[k]) == "" {
			t.Errorf("Chart.yaml has no annotation %s", k)
		}
	}
	if ann["artifacthub.io/license"] != "Apache-2.0" {
		t.Errorf("artifacthub.io/license %q, want the LICENSE's Apache-2.0", ann["artifacthub.io/license"])
	}
	var links []struct{ Name, URL string }
	if err := yaml.UnmarshalStrict([]byte(ann["artifacthub.io/links"]), &links); err != nil || len(links) == 0 {
		t.Errorf("artifacthub.io/links: %v (%d links)", err, len(links))
	}
	for _, l := range links {
		if l.Name == "" || !strings.HasPrefix(l.URL, "https://") {
			t.Errorf("artifacthub.io/links: %+v", l)
		}
	}
	var changes []struct{ Kind, Description string }
	if err := yaml.UnmarshalStrict([]byte(ann["artifacthub.io/changes"]), &changes); err != nil || len(changes) == 0 {
		t.Errorf("artifacthub.io/changes: %v (%d changes)", err, len(changes))
	}
	for _, c := range changes {
		if !slices.Contains([]string{"added", "changed", "deprecated", "removed", "fixed", "security"}, c.Kind) || c.Description == "" {
			t.Errorf("artifacthub.io/changes: %+v (kind must be one Artifact Hub knows)", c)
		}
	}

	// The CRDs it lists are the chart's, and every example is of one of them.
	crds := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, o := range ofKind(chartDefault(t), "CustomResourceDefinition") {
		c := fromUnstructured[apiextensionsv1.CustomResourceDefinition](t, o)
		crds[c.Spec.Names.Kind] = c
	}
	var listed []struct {
		Kind, Version, Name, DisplayName, Description string
	}
	if err := yaml.UnmarshalStrict([]byte(ann["artifacthub.io/crds"]), &listed); err != nil {
		t.Fatalf("artifacthub.io/crds: %v", err)
	}
	if len(listed) != len(crds) {
		t.Errorf("artifacthub.io/crds lists %d CRDs, the chart has %d", len(listed), len(crds))
	}
	for _, l := range listed {
		c, ok := crds[l.Kind]
		if !ok || c.Name != l.Name || !slices.ContainsFunc(c.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Name == l.Version && v.Served }) {
			t.Errorf("artifacthub.io/crds lists %+v, which is not a CRD of the chart", l)
		}
		if l.DisplayName == "" || l.Description == "" {
			t.Errorf("artifacthub.io/crds: %s without displayName or description", l.Kind)
		}
	}
	examples := crdExamples(t, ann["artifacthub.io/crdsExamples"])
	var kinds []string
	for _, e := range examples {
		kinds = append(kinds, e.GetKind())
		if _, ok := crds[e.GetKind()]; !ok || e.GetAPIVersion() != "entitlements.partnerops.io/v1alpha1" {
			t.Errorf("artifacthub.io/crdsExamples: %s %s is not of a CRD of the chart", e.GetAPIVersion(), e.GetKind())
		}
	}
	sort.Strings(kinds)
	if !slices.Equal(kinds, []string{"DistributorContract", "Partner", "Subscription"}) {
		t.Errorf("artifacthub.io/crdsExamples has %v, want one of each kind", kinds)
	}
}

func crdExamples(t *testing.T, s string) []*unstructured.Unstructured {
	t.Helper()
	var list []map[string]any
	if err := yaml.Unmarshal([]byte(s), &list); err != nil {
		t.Fatalf("artifacthub.io/crdsExamples: %v", err)
	}
	var out []*unstructured.Unstructured
	for _, m := range list {
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

// TestChartNotes: NOTES.txt tells what Helm does with the templated CRDs
// (there is no crds/ directory to apply) and warns when scrapes would be
// refused.
func TestChartNotes(t *testing.T) {
	notes := func(vals map[string]any) string {
		t.Helper()
		rel, err := renderRelease(vals, kubeVersion())
		if err != nil {
			t.Fatal(err)
		}
		return rel.Info.Notes
	}
	if _, err := os.Stat(path("dist", "chart", "crds")); err == nil {
		t.Fatal("dist/chart has a crds/ directory: the CRDs are templates (files/crds)")
	}
	def := notes(nil)
	for _, want := range []string{"templates", "`helm upgrade` applies", "`helm uninstall` leaves them"} {
		if !strings.Contains(def, want) {
			t.Errorf("NOTES with the defaults do not say %q:\n%s", want, def)
		}
	}
	if strings.Contains(def, "apply the new chart's crds/") || strings.Contains(def, "-f crds/") || strings.Contains(def, "never upgrades") {
		t.Errorf("NOTES still send users to a crds/ directory:\n%s", def)
	}
	if n := notes(map[string]any{"crds": map[string]any{"keep": false}}); !strings.Contains(n, "DELETES") {
		t.Errorf("NOTES with crds.keep=false do not warn that uninstall deletes the CRDs:\n%s", n)
	}
	sm := map[string]any{"serviceMonitor": map[string]any{"enabled": true}}
	if n := notes(map[string]any{"metrics": sm}); !strings.Contains(n, "metrics.reader.serviceAccount") || !strings.Contains(n, "403") {
		t.Errorf("NOTES with a ServiceMonitor and nobody bound to metrics-reader do not warn:\n%s", n)
	}
	bound := map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "reader": map[string]any{"serviceAccount": map[string]any{"name": "prometheus-k8s", "namespace": "monitoring"}}}
	if n := notes(map[string]any{"metrics": bound}); strings.Contains(n, "WARNING") {
		t.Errorf("NOTES warn although Prometheus' ServiceAccount is bound:\n%s", n)
	}
}

// TestMetricsReaderBinding: the chart value and config/prometheus-rbac
// bind the named ServiceAccount to the metrics-reader ClusterRole that
// config/default and the chart install.
func TestMetricsReaderBinding(t *testing.T) {
	if b := ofKind(chartDefault(t), "ClusterRoleBinding"); slices.ContainsFunc(b, func(o *unstructured.Unstructured) bool { return strings.Contains(o.GetName(), "metrics-reader") }) {
		t.Error("the default render binds somebody to metrics-reader")
	}
	objs, err := renderChart(map[string]any{"metrics": map[string]any{"reader": map[string]any{"serviceAccount": map[string]any{"name": "prometheus-k8s", "namespace": "monitoring"}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := rbacv1.Subject{Kind: "ServiceAccount", Name: "prometheus-k8s", Namespace: "monitoring"}
	b := fromUnstructured[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", prefix+"metrics-reader-rolebinding"))
	if b.RoleRef.Name != prefix+"metrics-reader" || b.RoleRef.Kind != "ClusterRole" || !slices.Equal(b.Subjects, []rbacv1.Subject{want}) {
		t.Errorf("chart binds %+v to %+v, want %+v to ClusterRole %smetrics-reader", b.Subjects, b.RoleRef, want, prefix)
	}
	find(t, objs, "ClusterRole", b.RoleRef.Name)
	if _, err := renderChart(map[string]any{"metrics": map[string]any{"reader": map[string]any{"serviceAccount": map[string]any{"name": "prometheus-k8s"}}}}); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("a ServiceAccount without namespace: err %v, want a refusal", err)
	}

	kb := kustomizeRBACBinding(t)
	if kb.RoleRef.Kind != "ClusterRole" || len(kb.Subjects) != 1 || kb.Subjects[0].Kind != "ServiceAccount" || kb.Subjects[0].Namespace == "" {
		t.Errorf("config/prometheus-rbac binds %+v to %+v", kb.Subjects, kb.RoleRef)
	}
	find(t, kustomizeDefault(t), "ClusterRole", kb.RoleRef.Name) // the role config/default installs
}

// kustomizeRBAC is config/prometheus-rbac rendered.
func kustomizeRBAC(t *testing.T) []*unstructured.Unstructured {
	return cached(t, "config/prometheus-rbac", func() ([]*unstructured.Unstructured, error) { return renderKustomize("config/prometheus-rbac") })
}

func kustomizeRBACBinding(t *testing.T) *rbacv1.ClusterRoleBinding {
	t.Helper()
	objs := kustomizeRBAC(t)
	if len(objs) != 1 {
		t.Fatalf("config/prometheus-rbac renders %d objects, want one ClusterRoleBinding", len(objs))
	}
	return fromUnstructured[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", prefix+"metrics-reader-rolebinding"))
}

// metricsCertOverlay renders config/default and config/prometheus with the
// component config/metrics-cert, as an overlay of a user would.
func metricsCertOverlay(t *testing.T) []*unstructured.Unstructured {
	return cached(t, "metrics-cert overlay", func() ([]*unstructured.Unstructured, error) {
		dir := t.TempDir()
		rel := func(p string) string {
			r, err := filepath.Rel(dir, path(p))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		k := "resources:\n- " + rel("config/default") + "\n- " + rel("config/prometheus") + "\ncomponents:\n- " + rel("config/metrics-cert") + "\n"
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		return renderKustomize(r)
	})
}

// TestMetricsCertManager: with the chart's metrics.certManager and with the
// component config/metrics-cert, a cert-manager Certificate names the
// metrics Service, the manager serves its Secret, and the ServiceMonitor
// verifies it with the Secret's CA instead of skipping verification.
func TestMetricsCertManager(t *testing.T) {
	chart, err := renderChart(map[string]any{"metrics": map[string]any{"certManager": map[string]any{"enabled": true}, "serviceMonitor": map[string]any{"enabled": true}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, objs := range map[string][]*unstructured.Unstructured{"chart": chart, "config/metrics-cert": metricsCertOverlay(t)} {
		svc := find(t, objs, "Service", prefix+"controller-manager-metrics-service")
		host := svc.GetName() + "." + installNamespace + ".svc"
		crt := find(t, objs, "Certificate", prefix+"metrics-cert")
		dns, _, _ := unstructured.NestedStringSlice(crt.Object, "spec", "dnsNames")
		secret, _, _ := unstructured.NestedString(crt.Object, "spec", "secretName")
		issuer, _, _ := unstructured.NestedString(crt.Object, "spec", "issuerRef", "name")
		if !slices.Contains(dns, host) || secret == "" || crt.GetNamespace() != installNamespace {
			t.Errorf("%s: Certificate %s/%s for %v into Secret %q, want one for %s", name, crt.GetNamespace(), crt.GetName(), dns, secret, host)
		}
		find(t, objs, "Issuer", issuer)

		dep := fromUnstructured[appsv1.Deployment](t, find(t, objs, "Deployment", prefix+"controller-manager"))
		pod := dep.Spec.Template.Spec
		c := pod.Containers[0]
		var certPath string
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--metrics-cert-path="); ok {
				certPath = v
			}
		}
		var vol string
		for _, m := range c.VolumeMounts {
			if m.MountPath == certPath && m.ReadOnly {
				vol = m.Name
			}
		}
		if certPath == "" || vol == "" || !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vol && v.Secret != nil && v.Secret.SecretName == secret }) {
			t.Errorf("%s: the manager does not serve Secret %s: args %q, mounts %+v, volumes %+v", name, secret, c.Args, c.VolumeMounts, pod.Volumes)
		}

		sm := find(t, objs, "ServiceMonitor", prefix+"controller-manager-metrics-monitor")
		eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		tc, _ := eps[0].(map[string]any)["tlsConfig"].(map[string]any)
		ca, _, _ := unstructured.NestedStringMap(tc, "ca", "secret")
		if tc["insecureSkipVerify"] == true || tc["serverName"] != host || ca["name"] != secret || ca["key"] != "ca.crt" {
			t.Errorf("%s: ServiceMonitor tlsConfig %v, want the CA of Secret %s and serverName %s, verified", name, tc, secret, host)
		}
	}

	// An issuer of the user's: no Issuer of the chart's.
	objs, err := renderChart(map[string]any{"metrics": map[string]any{"certManager": map[string]any{"enabled": true,
		"issuerRef": map[string]any{"kind": "ClusterIssuer", "name": "corp-ca", "group": "cert-manager.io"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ofKind(objs, "Issuer")) != 0 {
		t.Error("with metrics.certManager.issuerRef the chart still renders an Issuer")
	}
	ref, _, _ := unstructured.NestedStringMap(find(t, objs, "Certificate", prefix+"metrics-cert").Object, "spec", "issuerRef")
	if ref["kind"] != "ClusterIssuer" || ref["name"] != "corp-ca" {
		t.Errorf("issuerRef %v, want ClusterIssuer corp-ca", ref)
	}
	if _, err := renderChart(map[string]any{"metrics": map[string]any{"secure": false, "certManager": map[string]any{"enabled": true}}}); err == nil {
		t.Error("metrics.certManager with metrics.secure=false: rendered, want a refusal")
	}

	// A scrape class instead of bearerTokenFile.
	if objs, err = renderChart(map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true, "scrapeClass": "sa-token"}}}); err != nil {
		t.Fatal(err)
	}
	sm := find(t, objs, "ServiceMonitor", prefix+"controller-manager-metrics-monitor")
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if class, _, _ := unstructured.NestedString(sm.Object, "spec", "scrapeClass"); class != "sa-token" || eps[0].(map[string]any)["bearerTokenFile"] != nil {
		t.Errorf("scrapeClass sa-token: ServiceMonitor spec %v", sm.Object["spec"])
	}
}
