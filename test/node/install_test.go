package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInstall installs the operator three ways, one after the other on the
// same node (they install the same cluster-wide objects).
func TestInstall(t *testing.T) {
	e := setup(t)
	if t.Run("kustomize", func(t *testing.T) { kustomizeInstall(t, e) }) {
		t.Run("install.yaml", func(t *testing.T) { releaseManifest(t, e) })
	}
	t.Run("helm", func(t *testing.T) { helmChart(t, e) })
}

// kustomizeInstall: `kubectl apply --server-side -k config/default` with
// the image just built, as `make deploy IMG=...` does.
func kustomizeInstall(t *testing.T, e env) {
	img := e.repo + ":" + e.version
	tmp := t.TempDir()
	run(t, "", "cp", "-r", filepath.Join(e.root, "config"), tmp)
	kustomize := filepath.Join(e.root, "bin", "kustomize")
	cmd := fmt.Sprintf("cd %s/config/manager && %s edit set image controller=%s", tmp, kustomize, img)
	run(t, "", "sh", "-c", cmd)
	start := time.Now()
	kubectl(t, "apply", "--server-side", "-k", filepath.Join(tmp, "config", "default"))
	waitAvailable(t, 3*time.Minute)
	figure(t, "kustomize apply to 2/2 Pods Ready", time.Since(start))
	checkManagerProcesses(t)

	// The namespace enforces the restricted Pod Security Standard, and the
	// API server's admission really applies it: the manager's Pods got in,
	// a privileged Pod does not.
	if got := kubectl(t, "get", "namespace", systemNS, "-o", `jsonpath={.metadata.labels.pod-security\.kubernetes\.io/enforce}`); got != "restricted" {
		t.Errorf("namespace %s enforces %q, want restricted", systemNS, got)
	}
	_, err := try(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: privileged, namespace: %s}
spec:
  containers:
  - {name: c, image: %s, securityContext: {privileged: true}}
`, systemNS, img), "kubectl", "apply", "--dry-run=server", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("a privileged Pod in %s: want a PodSecurity refusal, got %v", systemNS, err)
	}

	var lead string
	eventually(t, time.Minute, "a leader", func() (err error) { lead, err = leader(t); return err })
	pods := managerPods(t)
	if len(pods) != 2 || (lead != pods[0] && lead != pods[1]) {
		t.Fatalf("leader %q is not one of the manager Pods %v", lead, pods)
	}

	// A partner granted, then revoked at its contract's end by the
	// in-cluster operator.
	ends := time.Now().Add(60 * time.Second).Truncate(time.Second)
	contract(t, "node-c1", ends)
	figure(t, "Partner granted (until a Subscription is admitted)", partner(t, "node-p1", "node-c1"))
	figure(t, "revocation after the contract's end", waitRevoked(t, "node-p1", ends))

	metrics(t, e)

	// The leader's Pod deleted: the other replica takes over within the
	// lease duration (15s) + 5s, and the next transition lands on time.
	ends2 := time.Now().Add(75 * time.Second).Truncate(time.Second)
	contract(t, "node-c2", ends2)
	partner(t, "node-p2", "node-c2")
	deleted := time.Now()
	kubectl(t, "-n", systemNS, "delete", "pod", lead, "--wait=false")
	handover := eventually(t, 20*time.Second, "another leader after deleting "+lead, func() error {
		l, err := leader(t)
		if err != nil {
			return err
		}
		if l == lead {
			return fmt.Errorf("still %s", l)
		}
		return nil
	})
	figure(t, "leader handover after deleting the leader's Pod", handover)
	if time.Until(ends2) < 5*time.Second {
		t.Fatalf("the handover ate the time before node-c2's end (%s after the delete)", time.Since(deleted))
	}
	figure(t, "revocation after the contract's end, after the handover", waitRevoked(t, "node-p2", ends2))
	waitAvailable(t, 2*time.Minute)

	// What a user reads when debugging it.
	newLead, err := leader(t)
	if err != nil {
		t.Fatal(err)
	}
	logs := kubectl(t, "-n", systemNS, "logs", newLead)
	for _, want := range []string{"starting manager", `"version":"` + e.version + `"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("kubectl logs %s: no %q in\n%s", newLead, want, logs)
		}
	}
	events := kubectl(t, "get", "events", "-A", "--field-selector", "reason=Revoked,involvedObject.name=node-p1")
	if !strings.Contains(events, "node-p1") {
		t.Errorf("kubectl get events: no Revoked event of node-p1:\n%s", events)
	}
	t.Logf("kubectl get events -A --field-selector reason=Revoked:\n%s", events)

	cleanup(t, []string{"node-p1", "node-p2"}, []string{"node-c1", "node-c2"})
	uninstall(t, "-k", filepath.Join(tmp, "config", "default"))
}

// metrics scrapes the manager's metrics through its Service from a Pod in
// another namespace, as Prometheus does: with a ServiceAccount bound to the
// metrics-reader ClusterRole by config/prometheus-rbac with an overlay
// naming it, as docs/operations.md tells users to bind Prometheus, and
// refused with a token that is not bound, and with none.
func metrics(t *testing.T, e env) {
	ip := kubectl(t, "-n", systemNS, "get", "service", metricsSvc, "-o", "jsonpath={.spec.clusterIP}")
	apply(t, `apiVersion: v1
kind: Namespace
metadata:
  name: node-metrics
  labels: {pod-security.kubernetes.io/enforce: restricted}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: prometheus, namespace: node-metrics}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: not-bound, namespace: node-metrics}
`)
	overlay := filepath.Join(t.TempDir(), "prometheus-rbac")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	rbac, err := filepath.Rel(overlay, filepath.Join(e.root, "config", "prometheus-rbac"))
	if err != nil {
		t.Fatal(err)
	}
	kustomization := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ` + rbac + `
patches:
- target: {kind: ClusterRoleBinding, name: entitlement-operator-metrics-reader-rolebinding}
  patch: |-
    - {op: replace, path: /subjects/0/name, value: prometheus}
    - {op: replace, path: /subjects/0/namespace, value: node-metrics}
`
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "apply", "--server-side", "-k", overlay)
	token := "/var/run/secrets/kubernetes.io/serviceaccount/token"
	for _, tc := range []struct {
		pod, sa string
		args    []string
	}{
		{"scrape", "prometheus", []string{"--token-file", token, "--expect", "200", "--contains", `version="` + e.version + `"`}},
		{"not-bound", "not-bound", []string{"--token-file", token, "--expect", "403"}},
		{"no-token", "not-bound", []string{"--expect", "401"}},
	} {
		start := time.Now()
		phase := probePod(t, "node-metrics", tc.pod, tc.sa, e.repo+"-probe:"+e.version,
			append([]string{"--host", ip, "--port", "8443", "--path", "/metrics"}, tc.args...))
		logs, _ := try("", "kubectl", "-n", "node-metrics", "logs", tc.pod)
		if phase != "Succeeded" {
			t.Errorf("probe %s: %s: %s", tc.pod, phase, logs)
		}
		t.Logf("probe %s: %s", tc.pod, strings.TrimSpace(logs))
		if tc.pod == "scrape" {
			figure(t, "metrics scrape Pod created to done", time.Since(start))
		}
	}
	kubectl(t, "delete", "namespace", "node-metrics", "--wait=false")
	kubectl(t, "delete", "-k", overlay)
}

// probePod runs the probe image once as a Pod and returns its final phase.
func probePod(t *testing.T, ns, name, sa, image string, args []string) string {
	t.Helper()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  serviceAccountName: %s
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: probe
    image: %s
    imagePullPolicy: IfNotPresent
    args: [%s]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`, name, ns, sa, image, strings.Join(quoted, ", ")))
	var phase string
	eventually(t, 2*time.Minute, "probe Pod "+name+" done", func() error {
		phase = kubectl(t, "-n", ns, "get", "pod", name, "-o", "jsonpath={.status.phase}")
		if phase == "Succeeded" || phase == "Failed" {
			return nil
		}
		return fmt.Errorf("phase %q", phase)
	})
	return phase
}

// releaseManifest: the release's install.yaml, its image pinned by digest.
func releaseManifest(t *testing.T, e env) {
	manifest := filepath.Join(e.release, "install.yaml")
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "image: "+e.repo+"@sha256:") {
		t.Fatalf("install.yaml does not pin the image by digest")
	}
	start := time.Now()
	kubectl(t, "apply", "--server-side", "-f", manifest)
	waitAvailable(t, 3*time.Minute)
	figure(t, "install.yaml to 2/2 Pods Ready", time.Since(start))
	contract(t, "node-c3", time.Time{})
	figure(t, "Partner granted from install.yaml", partner(t, "node-p3", "node-c3"))
	cleanup(t, []string{"node-p3"}, []string{"node-c3"})
	uninstall(t, "-f", manifest)
}

// helmChart: the release's packaged chart installed, tested, upgraded to
// the working tree's chart and uninstalled.
func helmChart(t *testing.T, e env) {
	if e.helm == "" {
		t.Skip("NODE_HELM not set")
	}
	charts, _ := filepath.Glob(filepath.Join(e.release, "entitlement-operator-*.tgz"))
	if len(charts) != 1 {
		t.Fatalf("want one packaged chart in %s, got %v", e.release, charts)
	}
	helm := func(args ...string) string { t.Helper(); return run(t, "", e.helm, args...) }
	apply(t, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels: {pod-security.kubernetes.io/enforce: restricted}
`, systemNS))
	start := time.Now()
	helm("install", "entitlement-operator", charts[0], "-n", systemNS, "--wait", "--timeout", "5m")
	waitAvailable(t, 3*time.Minute)
	figure(t, "helm install to 2/2 Pods Ready", time.Since(start))
	start = time.Now()
	t.Log(helm("test", "entitlement-operator", "-n", systemNS, "--logs", "--timeout", "3m"))
	figure(t, "helm test", time.Since(start))

	contract(t, "node-c4", time.Time{})
	figure(t, "Partner granted from the chart", partner(t, "node-p4", "node-c4"))
	subscription(t, "node-p4-prod", "second")

	// The working tree's chart, with the image under test.
	start = time.Now()
	helm("upgrade", "entitlement-operator", filepath.Join(e.root, "dist", "chart"), "-n", systemNS,
		"--set", "image.tag="+e.version, "--wait", "--timeout", "5m")
	waitAvailable(t, 3*time.Minute)
	figure(t, "helm upgrade to the working tree's chart", time.Since(start))
	helm("test", "entitlement-operator", "-n", systemNS, "--timeout", "3m")
	subscription(t, "node-p4-prod", "third")

	// Uninstalled: the operator goes, the partners' data stays.
	helm("uninstall", "entitlement-operator", "-n", systemNS, "--wait", "--timeout", "3m")
	for _, args := range [][]string{
		{"get", "namespace", "node-p4-prod"},
		{"-n", "node-p4-prod", "get", "subscriptions", "first", "second", "third"},
		{"get", "partner", "node-p4"},
		{"get", "crd", "partners.entitlements.partnerops.io"},
	} {
		if _, err := try("", "kubectl", args...); err != nil {
			t.Errorf("after helm uninstall: kubectl %s: %v", strings.Join(args, " "), err)
		}
	}
	if out := kubectl(t, "-n", systemNS, "get", "deployments", "-o", "name"); out != "" {
		t.Errorf("after helm uninstall: %s", out)
	}
}
