package install_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/partnerops/entitlement-operator/internal/metrics"
)

// operatorMetrics are the entitlements_* metric names the operator defines,
// with the _bucket/_count/_sum series of its histograms.
func operatorMetrics(t *testing.T) []string {
	t.Helper()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for _, c := range metrics.Collectors() {
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			m := fq.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			names = append(names, m[1])
		}
	}
	names = append(names, "entitlements_transition_lag_seconds_bucket", "entitlements_transition_lag_seconds_count", "entitlements_transition_lag_seconds_sum")
	return names
}

// checkMetricNames fails for an entitlements_* name the operator does not
// export (a typo in an alert or a panel would silently never fire or show).
func checkMetricNames(t *testing.T, where, expr string, known []string) {
	t.Helper()
	found := metricName.FindAllString(expr, -1)
	if len(found) == 0 {
		t.Errorf("%s: no operator metric in %q", where, expr)
	}
	for _, n := range found {
		if regexp.MustCompile(`^entitlements_`).MatchString(n) && !slices.Contains(known, n) {
			t.Errorf("%s: %s is not a metric of the operator (%v)", where, n, known)
		}
	}
}

type promRule struct {
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// TestPrometheusObjects: config/prometheus renders a ServiceMonitor that
// selects the metrics Service of config/default by its port name, alerts on
// the metrics the operator exports, and a Grafana dashboard ConfigMap; the
// chart renders the same when its options are on.
func TestPrometheusObjects(t *testing.T) {
	objs := kustomizePrometheus(t)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
		if o.GetNamespace() != installNamespace {
			t.Errorf("%s is not in %s", id(o), installNamespace)
		}
	}
	sort.Strings(kinds)
	if want := []string{"ConfigMap", "PrometheusRule", "ServiceMonitor"}; !slices.Equal(kinds, want) {
		t.Fatalf("config/prometheus renders %v, want %v", kinds, want)
	}
	known := operatorMetrics(t)

	// The ServiceMonitor finds the Service, in both installs.
	for name, pair := range map[string][2][]*unstructured.Unstructured{
		"config": {objs, kustomizeDefault(t)},
		"chart":  {chartAll(t), chartAll(t)},
	} {
		sm := find(t, pair[0], "ServiceMonitor", prefix+"controller-manager-metrics-monitor")
		if sm.GetAPIVersion() != "monitoring.coreos.com/v1" {
			t.Errorf("%s: ServiceMonitor apiVersion %s", name, sm.GetAPIVersion())
		}
		svc := find(t, pair[1], "Service", prefix+"controller-manager-metrics-service")
		sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		if len(sel) == 0 {
			t.Errorf("%s: ServiceMonitor selects nothing", name)
		}
		for k, v := range sel {
			if svc.GetLabels()[k] != v {
				t.Errorf("%s: ServiceMonitor selects %s=%s, the metrics Service has %q", name, k, v, svc.GetLabels()[k])
			}
		}
		eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		if len(eps) != 1 || eps[0].(map[string]any)["port"] != "metrics" || eps[0].(map[string]any)["path"] != "/metrics" {
			t.Errorf("%s: ServiceMonitor endpoints %v, want port metrics path /metrics", name, eps)
		}
	}

	// Alerts.
	ruleObj := find(t, objs, "PrometheusRule", prefix+"alerts")
	if ruleObj.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("PrometheusRule apiVersion %s", ruleObj.GetAPIVersion())
	}
	var pr promRule
	if err := json.Unmarshal([]byte(jsonString(t, ruleObj.Object)), &pr); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %+v: want alert, expr, severity, summary and description", r)
			}
			if _, dup := exprs[r.Alert]; dup {
				t.Errorf("alert %s twice", r.Alert)
			}
			exprs[r.Alert] = r.Expr
			checkMetricNames(t, "alert "+r.Alert, r.Expr, known)
		}
	}
	for alert, want := range map[string]*regexp.Regexp{
		"EntitlementContractWillRevoke": regexp.MustCompile(`entitlements_contract_forecast_partners\{outcome="Revoke"\}`),
		"EntitlementContractInGrace":    regexp.MustCompile(`entitlements_contract_phase\{phase="Grace"\}\) == 1`),
		"EntitlementPartnersRevoked":    regexp.MustCompile(`entitlements_partners\{phase="Revoked"\}\) > 0`),
		"EntitlementPartnerRevocation":  regexp.MustCompile(`increase\(entitlements_revocations_total\{scheduled="false"\}\[`),
		"EntitlementTransitionLagHigh":  regexp.MustCompile(`entitlements_transition_lag_seconds_bucket\{le=~"5`),
		"EntitlementReconcileErrors":    regexp.MustCompile(`controller_runtime_reconcile_errors_total`),
		"EntitlementOperatorNoLeader":   regexp.MustCompile(`leader_election_master_status\{name="entitlement-operator.partnerops.io"\}`),
	} {
		if e, ok := exprs[alert]; !ok {
			t.Errorf("no alert %s", alert)
		} else if !want.MatchString(e) {
			t.Errorf("alert %s: expr %q does not match %s", alert, e, want)
		}
	}
	// The transition-lag alert counts observations above the 5s bucket: the
	// histogram must have that bucket.
	if !slices.Contains(metricsBuckets(), 5) {
		t.Errorf("entitlements_transition_lag_seconds has no 5s bucket: %v", metricsBuckets())
	}
	chartRule := find(t, chartAll(t), "PrometheusRule", prefix+"alerts")
	if !reflect.DeepEqual(chartRule.Object["spec"], ruleObj.Object["spec"]) {
		t.Error("the chart's PrometheusRule spec differs from config/prometheus/alerts.yaml")
	}

	// Dashboard.
	for name, cm := range map[string]*unstructured.Unstructured{
		"config": find(t, objs, "ConfigMap", prefix+"grafana-dashboard"),
		"chart":  find(t, chartAll(t), "ConfigMap", prefix+"grafana-dashboard"),
	} {
		if cm.GetLabels()["grafana_dashboard"] != "1" {
			t.Errorf("%s: dashboard ConfigMap labels %v, want grafana_dashboard=1", name, cm.GetLabels())
		}
		data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
		raw, ok := data["entitlement-operator.json"]
		if !ok || len(data) != 1 {
			t.Fatalf("%s: dashboard ConfigMap keys %v", name, data)
		}
		file, err := os.ReadFile(path("config", "prometheus", "dashboard.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, raw, string(file)) {
			t.Errorf("%s: dashboard ConfigMap differs from config/prometheus/dashboard.json", name)
		}
		var dash struct {
			UID    string `json:"uid"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal([]byte(raw), &dash); err != nil {
			t.Fatalf("%s: dashboard is not JSON: %v", name, err)
		}
		if dash.UID == "" || len(dash.Panels) < 5 {
			t.Errorf("%s: dashboard uid %q with %d panels", name, dash.UID, len(dash.Panels))
		}
		seen := map[string]bool{}
		for _, p := range dash.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, p.Title)
			}
			for _, q := range p.Targets {
				checkMetricNames(t, "panel "+p.Title, q.Expr, known)
				for _, m := range metricName.FindAllString(q.Expr, -1) {
					seen[m] = true
				}
			}
		}
		for _, m := range []string{"entitlements_partners", "entitlements_contract_ends_timestamp_seconds", "entitlements_contract_phase",
			"entitlements_failovers_total", "entitlements_revocations_total", "entitlements_transition_lag_seconds_bucket", "controller_runtime_reconcile_errors_total"} {
			if !seen[m] {
				t.Errorf("%s: no dashboard panel shows %s", name, m)
			}
		}
	}
}

// metricsBuckets are the transition-lag histogram's buckets, read from the
// metric itself.
func metricsBuckets() []float64 {
	h := prometheus.NewRegistry()
	// A private registry: observe nothing, just read the bucket layout.
	c := metrics.TransitionLag
	if err := h.Register(c); err != nil {
		return nil
	}
	defer h.Unregister(c)
	mfs, err := h.Gather()
	if err != nil || len(mfs) == 0 || len(mfs[0].Metric) == 0 {
		return nil
	}
	var out []float64
	for _, b := range mfs[0].Metric[0].GetHistogram().GetBucket() {
		out = append(out, b.GetUpperBound())
	}
	return out
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
