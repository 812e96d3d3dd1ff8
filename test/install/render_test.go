package install_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// productsPolicy and contractEndPolicy are the ValidatingAdmissionPolicies
// (and bindings) that judge Subscriptions; their names are fixed, not
// prefixed: the operator checks they are in place by name.
const (
	productsPolicy    = "entitlements-subscription-products"
	contractEndPolicy = "entitlements-subscription-contract-end"
)

// finalizerPolicy is the MutatingAdmissionPolicy (and binding) that puts the
// operator's finalizer on a new Partner; its name is fixed, not prefixed.
const finalizerPolicy = "entitlements-partner-finalizer"

var tierRoleNames = []string{
	v1.DefaultClusterRolePrefix + "ready",
	v1.DefaultClusterRolePrefix + "advanced",
	v1.DefaultClusterRolePrefix + "premier",
}

func fromUnstructured[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s: %v", id(o), err)
	}
	return out
}

// TestKustomizeDefaultObjects: config/default renders exactly the objects an
// install needs, in the right namespace, with the prefix everywhere except
// on the CRDs and the tier ClusterRoles, and consistent references.
func TestKustomizeDefaultObjects(t *testing.T) {
	objs := kustomizeDefault(t)
	want := []string{
		"Namespace " + installNamespace,
		"CustomResourceDefinition distributorcontracts.entitlements.partnerops.io",
		"CustomResourceDefinition partners.entitlements.partnerops.io",
		"CustomResourceDefinition subscriptions.entitlements.partnerops.io",
		"ServiceAccount " + installNamespace + "/" + prefix + "controller-manager",
		"ClusterRole " + prefix + "manager-role",
		"ClusterRoleBinding " + prefix + "manager-rolebinding",
		"ClusterRole " + prefix + "metrics-reader",
		"Role " + installNamespace + "/" + prefix + "leader-election-role",
		"RoleBinding " + installNamespace + "/" + prefix + "leader-election-rolebinding",
		"Deployment " + installNamespace + "/" + prefix + "controller-manager",
		"Service " + installNamespace + "/" + prefix + "controller-manager-metrics-service",
		"PodDisruptionBudget " + installNamespace + "/" + prefix + "controller-manager",
		"ValidatingAdmissionPolicy " + productsPolicy,
		"ValidatingAdmissionPolicyBinding " + productsPolicy,
		"ValidatingAdmissionPolicy " + contractEndPolicy,
		"ValidatingAdmissionPolicyBinding " + contractEndPolicy,
	}
	for _, k := range []string{"partner", "distributorcontract", "subscription"} {
		want = append(want, "ClusterRole "+prefix+k+"-editor-role", "ClusterRole "+prefix+k+"-viewer-role")
	}
	for _, n := range tierRoleNames {
		want = append(want, "ClusterRole "+n)
	}
	var got []string
	for _, o := range objs {
		got = append(got, id(o))
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("config/default renders\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	ns := find(t, objs, "Namespace", installNamespace)
	if l := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; l != "restricted" {
		t.Errorf("namespace %s enforces Pod Security %q, want restricted", installNamespace, l)
	}

	sa := prefix + "controller-manager"
	for _, o := range ofKind(objs, "ClusterRoleBinding", "RoleBinding") {
		b := fromUnstructured[rbacv1.RoleBinding](t, o)
		if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sa || b.Subjects[0].Namespace != installNamespace {
			t.Errorf("%s binds %+v, want only ServiceAccount %s/%s", id(o), b.Subjects, installNamespace, sa)
		}
		find(t, objs, b.RoleRef.Kind, b.RoleRef.Name) // the role it refers to is installed
	}
	dep := fromUnstructured[appsv1.Deployment](t, find(t, objs, "Deployment", prefix+"controller-manager"))
	if dep.Spec.Template.Spec.ServiceAccountName != sa {
		t.Errorf("manager runs as %q, want %q", dep.Spec.Template.Spec.ServiceAccountName, sa)
	}
}

// TestManagerRoleIsGenerated: the installed manager ClusterRole has exactly
// the rules controller-gen generated into config/rbac/role.yaml.
func TestManagerRoleIsGenerated(t *testing.T) {
	b, err := os.ReadFile(path("config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var generated rbacv1.ClusterRole
	if err := yaml.Unmarshal(b, &generated); err != nil {
		t.Fatal(err)
	}
	if len(generated.Rules) == 0 {
		t.Fatal("config/rbac/role.yaml has no rules")
	}
	for name, objs := range map[string][]*unstructured.Unstructured{"config/default": kustomizeDefault(t), "dist/chart": chartDefault(t)} {
		r := fromUnstructured[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", prefix+"manager-role"))
		if !reflect.DeepEqual(r.Rules, generated.Rules) {
			t.Errorf("%s: manager ClusterRole rules differ from config/rbac/role.yaml:\n%s\nwant\n%s", name, toYAML(r.Rules), toYAML(generated.Rules))
		}
	}
}

// TestChartCopiesInSync: files the chart carries as copies are byte-identical
// to their sources (sync them with the Makefile's chart target).
func TestChartCopiesInSync(t *testing.T) {
	pairs := map[string]string{
		"config/rbac/role.yaml":                            "dist/chart/files/manager-role.yaml",
		"config/prometheus/alerts.yaml":                    "dist/chart/files/prometheus-rule.yaml",
		"config/prometheus/dashboard.json":                 "dist/chart/files/grafana-dashboard.json",
		"config/admission/products-policy.yaml":            "dist/chart/files/admission-policy.yaml",
		"config/admission/contract-end-policy.yaml":        "dist/chart/files/contract-end-policy.yaml",
		"config/admission-finalizer/finalizer-policy.yaml": "dist/chart/files/finalizer-policy.yaml",
	}
	addDir := func(src, dst, pattern string) {
		matches, err := filepath.Glob(path(src, pattern))
		if err != nil || len(matches) == 0 {
			t.Fatalf("nothing matches %s/%s: %v", src, pattern, err)
		}
		for _, m := range matches {
			pairs[filepath.Join(src, filepath.Base(m))] = filepath.Join(dst, filepath.Base(m))
		}
		// Nothing in dst without a source.
		extra, _ := filepath.Glob(path(dst, pattern))
		for _, e := range extra {
			if _, ok := pairs[filepath.Join(src, filepath.Base(e))]; !ok {
				t.Errorf("%s has no source in %s", filepath.Join(dst, filepath.Base(e)), src)
			}
		}
	}
	addDir("config/crd/bases", "dist/chart/files/crds", "*.yaml")
	addDir("config/rbac/tiers", "dist/chart/files/tier-roles", "partner_*_role.yaml")
	for src, dst := range pairs {
		a, err := os.ReadFile(path(src))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path(dst))
		if err != nil {
			t.Errorf("%s: %v (run `make chart`)", dst, err)
			continue
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s (run `make chart`)", dst, src)
		}
	}
}

// TestChartMatchesKustomize: with its default values the chart installs the
// same objects as config/default and config/admission-finalizer (but the
// Namespace, which Helm leaves to --create-namespace), with the same RBAC
// and the same manager.
func TestChartMatchesKustomize(t *testing.T) {
	// On Kubernetes >= 1.36 (the test cluster's) the chart also renders
	// what config/admission-finalizer adds to config/default there.
	kust, chart := append(slices.Clone(kustomizeDefault(t)), kustomizeFinalizer(t)...), chartDefault(t)
	ids := func(objs []*unstructured.Unstructured) []string {
		var out []string
		for _, o := range objs {
			if o.GetKind() != "Namespace" {
				out = append(out, id(o))
			}
		}
		sort.Strings(out)
		return out
	}
	if k, c := ids(kust), ids(chart); !slices.Equal(k, c) {
		t.Fatalf("chart renders\n  %s\nconfig/default\n  %s", strings.Join(c, "\n  "), strings.Join(k, "\n  "))
	}
	// Labels that mean something to Kubernetes or the operator (not the
	// app.kubernetes.io/* and helm.sh/* bookkeeping).
	meaningful := func(o *unstructured.Unstructured) map[string]string {
		out := map[string]string{}
		for k, v := range o.GetLabels() {
			if !strings.HasPrefix(k, "app.kubernetes.io/") && !strings.HasPrefix(k, "helm.sh/") {
				out[k] = v
			}
		}
		return out
	}
	for _, k := range kust {
		switch k.GetKind() {
		case "ClusterRole", "Role":
			c := find(t, chart, k.GetKind(), k.GetName())
			kr, cr := fromUnstructured[rbacv1.ClusterRole](t, k), fromUnstructured[rbacv1.ClusterRole](t, c)
			if !reflect.DeepEqual(kr.Rules, cr.Rules) {
				t.Errorf("%s: chart rules\n%s\nconfig/default rules\n%s", id(k), toYAML(cr.Rules), toYAML(kr.Rules))
			}
			if !reflect.DeepEqual(meaningful(k), meaningful(c)) {
				t.Errorf("%s: chart labels %v, config/default labels %v", id(k), meaningful(c), meaningful(k))
			}
		case "ClusterRoleBinding", "RoleBinding":
			kb := fromUnstructured[rbacv1.RoleBinding](t, k)
			cb := fromUnstructured[rbacv1.RoleBinding](t, find(t, chart, k.GetKind(), k.GetName()))
			if !reflect.DeepEqual(kb.RoleRef, cb.RoleRef) || !reflect.DeepEqual(kb.Subjects, cb.Subjects) {
				t.Errorf("%s: chart binds %v to %v, config/default %v to %v", id(k), cb.Subjects, cb.RoleRef, kb.Subjects, kb.RoleRef)
			}
		case "CustomResourceDefinition":
			c := find(t, chart, k.GetKind(), k.GetName())
			if !reflect.DeepEqual(k.Object["spec"], c.Object["spec"]) {
				t.Errorf("%s: chart and config/default differ", id(k))
			}
		case "Service":
			ks := fromUnstructured[corev1.Service](t, k)
			cs := fromUnstructured[corev1.Service](t, find(t, chart, k.GetKind(), k.GetName()))
			if !reflect.DeepEqual(ks.Spec.Ports, cs.Spec.Ports) {
				t.Errorf("%s: chart ports %v, config/default %v", id(k), cs.Spec.Ports, ks.Spec.Ports)
			}
		case "Deployment":
			kd := fromUnstructured[appsv1.Deployment](t, k)
			cd := fromUnstructured[appsv1.Deployment](t, find(t, chart, k.GetKind(), k.GetName()))
			kp, cp := kd.Spec.Template.Spec, cd.Spec.Template.Spec
			if *kd.Spec.Replicas != *cd.Spec.Replicas || !reflect.DeepEqual(kd.Spec.Strategy, cd.Spec.Strategy) {
				t.Errorf("Deployment: chart replicas/strategy %d %v, config/default %d %v", *cd.Spec.Replicas, cd.Spec.Strategy, *kd.Spec.Replicas, kd.Spec.Strategy)
			}
			if !reflect.DeepEqual(kp.SecurityContext, cp.SecurityContext) {
				t.Errorf("Deployment: chart pod securityContext %+v, config/default %+v", cp.SecurityContext, kp.SecurityContext)
			}
			kc, cc := kp.Containers[0], cp.Containers[0]
			// Helm's default tag is the chart's appVersion, kustomize's the
			// images: entry: the same release.
			if kc.Image != cc.Image {
				t.Errorf("Deployment: chart image %s, config/default %s", cc.Image, kc.Image)
			}
			kc.Image, cc.Image = "", ""
			if !reflect.DeepEqual(kc, cc) {
				t.Errorf("Deployment: chart container\n%s\nconfig/default container\n%s", toYAML(cc), toYAML(kc))
			}
		}
	}
}

// TestManagerHardened: in both renders the manager runs with the restricted
// Pod Security settings, two replicas with leader election, resource
// requests and limits, probes and a metrics port.
func TestManagerHardened(t *testing.T) {
	for name, objs := range map[string][]*unstructured.Unstructured{"config/default": kustomizeDefault(t), "dist/chart": chartDefault(t)} {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			d := fromUnstructured[appsv1.Deployment](t, find(t, objs, "Deployment", prefix+"controller-manager"))
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas %v, want 2", d.Spec.Replicas)
			}
			ps := d.Spec.Template.Spec
			if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
				ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", ps.SecurityContext)
			}
			if ps.HostNetwork || ps.HostPID || ps.HostIPC {
				t.Error("pod shares a host namespace")
			}
			if len(ps.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(ps.Containers))
			}
			c := ps.Containers[0]
			if !strings.HasPrefix(c.Image, "ghcr.io/partnerops/entitlement-operator:") || strings.HasSuffix(c.Image, ":") {
				t.Errorf("image %q, want ghcr.io/partnerops/entitlement-operator:<tag>", c.Image)
			}
			wantArgs := []string{"--leader-elect", "--metrics-bind-address=:8443", "--metrics-secure=true", "--health-probe-bind-address=:8081", "--require-admission-policies=true"}
			if !slices.Equal(c.Args, wantArgs) {
				t.Errorf("args %q, want %q", c.Args, wantArgs)
			}
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Fatal("container has no securityContext")
			case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
				t.Error("container: runAsNonRoot not set")
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Error("container: readOnlyRootFilesystem not set")
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Error("container: allowPrivilegeEscalation not false")
			case sc.Privileged != nil && *sc.Privileged:
				t.Error("container: privileged")
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
				t.Errorf("container capabilities %+v, want drop [ALL], add none", sc.Capabilities)
			case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Error("container: seccomp profile not RuntimeDefault")
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
				if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
					t.Errorf("%s request %s limit %s: want both, request <= limit", r, req.String(), lim.String())
				}
			}
			if lim := c.Resources.Limits[corev1.ResourceMemory]; lim.Cmp(resource.MustParse("64Mi")) < 0 {
				t.Errorf("memory limit %s is too small to run the manager", lim.String())
			}
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if ports["metrics"] != 8443 || ports["health"] != 8081 {
				t.Errorf("ports %v, want metrics 8443 and health 8081", ports)
			}
			for what, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != what || (p.HTTPGet.Port.String() != "health" && p.HTTPGet.Port.IntValue() != 8081) {
					t.Errorf("probe %s: %+v, want httpGet %s on 8081", what, p, what)
				}
			}
			svc := fromUnstructured[corev1.Service](t, find(t, objs, "Service", prefix+"controller-manager-metrics-service"))
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].Port != 8443 {
				t.Errorf("metrics Service ports %+v, want metrics 8443", svc.Spec.Ports)
			}
			for k, v := range svc.Spec.Selector {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("metrics Service selects %s=%s, the manager pods have %q", k, v, d.Spec.Template.Labels[k])
				}
			}
		})
	}
}

// TestChartValues: the chart refuses replicas without leader election, and
// a single replica without it renders.
func TestChartValues(t *testing.T) {
	if _, err := renderChart(map[string]any{"leaderElection": map[string]any{"enabled": false}}); err == nil || !strings.Contains(err.Error(), "leaderElection") {
		t.Errorf("2 replicas without leader election: err %v, want a refusal", err)
	}
	objs, err := renderChart(map[string]any{"leaderElection": map[string]any{"enabled": false}, "replicaCount": 1,
		"image": map[string]any{"tag": "v9.9.9"}, "extraArgs": []any{"--zap-log-level=debug"}})
	if err != nil {
		t.Fatal(err)
	}
	d := fromUnstructured[appsv1.Deployment](t, find(t, objs, "Deployment", prefix+"controller-manager"))
	c := d.Spec.Template.Spec.Containers[0]
	if slices.Contains(c.Args, "--leader-elect") || !slices.Contains(c.Args, "--zap-log-level=debug") || c.Image != "ghcr.io/partnerops/entitlement-operator:v9.9.9" {
		t.Errorf("args %q image %s", c.Args, c.Image)
	}
	if objs, err = renderChart(map[string]any{"tierRoles": map[string]any{"create": false}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if slices.Contains(tierRoleNames, o.GetName()) {
			t.Errorf("tierRoles.create=false still renders %s", id(o))
		}
	}
	// The finalizer policy: on by default (TestChartMatchesKustomize), off
	// when disabled, and left out where its API does not exist.
	hasPolicy := func(objs []*unstructured.Unstructured) bool {
		return slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetName() == finalizerPolicy })
	}
	if objs, err = renderChart(map[string]any{"finalizerPolicy": map[string]any{"enabled": false}}); err != nil {
		t.Fatal(err)
	}
	if hasPolicy(objs) {
		t.Errorf("finalizerPolicy.enabled=false still renders %s", finalizerPolicy)
	}
	if objs, err = renderChartFor(nil, &chartutil.KubeVersion{Version: "v1.35.4", Major: "1", Minor: "35"}); err != nil {
		t.Fatal(err)
	}
	if hasPolicy(objs) {
		t.Errorf("Kubernetes 1.35 (no MutatingAdmissionPolicy API) still renders %s", finalizerPolicy)
	}
	if !hasPolicy(chartDefault(t)) {
		t.Errorf("the default render has no %s", finalizerPolicy)
	}
}

// TestChartLint: `helm lint --strict` has nothing to say.
func TestChartLint(t *testing.T) {
	l := action.NewLint()
	l.Strict = true
	l.Namespace = installNamespace
	l.KubeVersion = kubeVersion()
	res := l.Run([]string{path("dist", "chart")}, nil)
	for _, e := range res.Errors {
		t.Error(e)
	}
	for _, m := range res.Messages {
		t.Logf("helm lint: %s", m)
	}
}

func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
