package install_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// promtoolPath finds promtool: PROMTOOL (the Makefile exports bin/promtool),
// else PATH. `make promtool` installs it.
func promtoolPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run `make promtool` (make test does)")
	}
	return p
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type alertGroup struct {
	Name  string      `json:"name"`
	Rules []alertRule `json:"rules"`
}

// TestAlertsWithPromtool runs config/prometheus/alerts_test.yaml with
// `promtool test rules` against the PrometheusRule's groups, checks that
// every alert has a case where it fires and one where it does not, and that
// its runbook_url points at a row of docs/operations.md.
func TestAlertsWithPromtool(t *testing.T) {
	if testing.Short() {
		t.Skip("needs promtool")
	}
	promtool := promtoolPath(t)
	raw, err := os.ReadFile(path("config", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Spec struct {
			Groups []alertGroup `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile(path("docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for gi := range pr.Spec.Groups {
		for ri := range pr.Spec.Groups[gi].Rules {
			r := &pr.Spec.Groups[gi].Rules[ri]
			alerts = append(alerts, r.Alert)
			url := r.Annotations["runbook_url"]
			anchor := strings.ToLower(r.Alert)
			if !strings.HasSuffix(url, "docs/operations.md#"+anchor) || !strings.Contains(string(docs), `<a id="`+anchor+`"></a>`) {
				t.Errorf("alert %s: runbook_url %q must point at docs/operations.md#%s, an anchor there", r.Alert, url, anchor)
			}
			// The unit tests are about when alerts fire; their texts are
			// templates checked by Prometheus itself when it loads them.
			r.Annotations = nil
		}
	}
	dir := t.TempDir()
	rules, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(path("config", "prometheus", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"rules.yaml": rules, "alerts_test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "test", "rules", "alerts_test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}

	var suite struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tests, &suite); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range suite.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] || !quiet[a] {
			t.Errorf("alert %s: want a promtool case where it fires (%v) and one where it does not (%v)", a, fires[a], quiet[a])
		}
	}
	if len(alerts) == 0 || !slices.Contains(alerts, "EntitlementOperatorNoLeader") {
		t.Errorf("read alerts %v from alerts.yaml", alerts)
	}
}
