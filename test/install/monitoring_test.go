package install_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/partnerops/entitlement-operator/internal/metrics"
)

// exposition is what a manager exposes: each metric name (histograms with
// their _bucket, _count and _sum series) with its label names.
type exposition map[string][]string

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
)

// describe adds the metrics of a collector as its descriptors declare them;
// histogram says whether they are histograms (nil: not known, the suffixed
// series are allowed).
func (e exposition) describe(t *testing.T, c prometheus.Collector, histogram func(prometheus.Collector) *bool) {
	t.Helper()
	ch := make(chan *prometheus.Desc, 256)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		n, l := descName.FindStringSubmatch(d.String()), descLabels.FindStringSubmatch(d.String())
		if n == nil || l == nil {
			t.Fatalf("cannot read the name and labels of %s", d)
		}
		var labels []string
		for _, s := range strings.Split(l[1], ",") {
			if s = strings.TrimSuffix(strings.TrimPrefix(s, "c("), ")"); s != "" {
				labels = append(labels, s)
			}
		}
		e.add(n[1], labels, histogram(c))
	}
}

func (e exposition) add(name string, labels []string, histogram *bool) {
	e[name] = labels
	if histogram == nil || *histogram {
		for _, s := range []string{"_count", "_sum"} {
			e[name+s] = labels
		}
		e[name+"_bucket"] = append(slices.Clone(labels), "le")
	}
}

// isHistogram knows the operator's own collectors' types.
func isHistogram(c prometheus.Collector) *bool {
	var h bool
	switch c.(type) {
	case prometheus.Histogram, *prometheus.HistogramVec:
		h = true
	}
	return &h
}

// registered is every metric the manager's registry holds (controller-
// runtime's, client-go's and the operator's), as the descriptors declare
// them, without a running manager.
func registered(t *testing.T) exposition {
	t.Helper()
	e := exposition{}
	reg, ok := ctrlmetrics.Registry.(prometheus.Collector)
	if !ok {
		t.Fatalf("controller-runtime's registry is a %T", ctrlmetrics.Registry)
	}
	e.describe(t, reg, func(prometheus.Collector) *bool { return nil })
	for _, c := range metrics.Collectors() {
		e.describe(t, c, isHistogram)
	}
	return e
}

// Where a PromQL expression names metrics and labels. The operator's
// dashboards and alerts use only these prefixes; promtool and Prometheus
// check the syntax.
var (
	selector = regexp.MustCompile(`\b((?:entitlements|controller_runtime|workqueue|leader_election|rest_client)_[a-z_]+)\b(\{[^}]*\})?`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	grouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// externalLabels are added by Prometheus, not exposed by the manager.
var externalLabels = []string{"cluster"}

// checkExpr fails for a metric the manager does not expose, a label it
// does not have, or a grouping by a label none of the expression's metrics
// has: a typo in an alert or a panel never fires or shows, silently.
func checkExpr(t *testing.T, where, expr string, exposed exposition) {
	t.Helper()
	sel := selector.FindAllStringSubmatch(expr, -1)
	if len(sel) == 0 {
		t.Errorf("%s: no metric of the manager in %q", where, expr)
	}
	var all []string
	for _, s := range sel {
		labels, ok := exposed[s[1]]
		if !ok {
			t.Errorf("%s: the manager exposes no metric %s", where, s[1])
			continue
		}
		all = append(all, labels...)
		for _, m := range matcher.FindAllStringSubmatch(s[2], -1) {
			if !slices.Contains(labels, m[1]) && !slices.Contains(externalLabels, m[1]) {
				t.Errorf("%s: %s has no label %s (it has %v)", where, s[1], m[1], labels)
			}
		}
	}
	for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(all, l) && !slices.Contains(externalLabels, l) {
				t.Errorf("%s: groups by %s, which none of its metrics has", where, l)
			}
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

// alertExprs are the alerts of config/prometheus/alerts.yaml, by name.
func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	var pr promRule
	if err := json.Unmarshal([]byte(jsonString(t, find(t, kustomizePrometheus(t), "PrometheusRule", prefix+"alerts").Object)), &pr); err != nil {
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
		}
	}
	return exprs
}

type dashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(path("config", "prometheus", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	return d
}

// checkQueries checks every alert and dashboard query against what the
// manager exposes.
func checkQueries(t *testing.T, exposed exposition) {
	t.Helper()
	for alert, expr := range alertExprs(t) {
		checkExpr(t, "alert "+alert, expr, exposed)
	}
	for _, p := range readDashboard(t).Panels {
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, exposed)
		}
	}
}

// TestMonitoringQueriesUseRegisteredMetrics: every metric and label the
// alerts and the dashboard query is registered in the manager's registry
// (TestMetricsScrapeWithBoundToken checks the same against a running
// manager's scrape).
func TestMonitoringQueriesUseRegisteredMetrics(t *testing.T) {
	reg := registered(t)
	for _, m := range []string{"entitlements_partners", "controller_runtime_reconcile_errors_total", "workqueue_depth", "leader_election_master_status"} {
		if _, ok := reg[m]; !ok {
			t.Fatalf("the registry has no %s: cannot check the queries (%d metrics)", m, len(reg))
		}
	}
	checkQueries(t, reg)
}

// TestPrometheusObjects: config/prometheus renders a ServiceMonitor that
// selects the metrics Service of config/default by its port name, alerts on
// what needs a human, and a Grafana dashboard ConfigMap; the chart renders
// the same when its options are on.
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

	// The ServiceMonitor finds the Service, in both installs, over HTTPS
	// with Prometheus' token.
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
		if len(eps) != 1 {
			t.Fatalf("%s: ServiceMonitor endpoints %v", name, eps)
		}
		ep := eps[0].(map[string]any)
		tls, _ := ep["tlsConfig"].(map[string]any)
		if ep["port"] != "metrics" || ep["path"] != "/metrics" || ep["scheme"] != "https" ||
			ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" || tls["insecureSkipVerify"] != true {
			t.Errorf("%s: ServiceMonitor endpoint %v, want port metrics, path /metrics, https with Prometheus' token, the self-signed certificate not verified", name, ep)
		}
	}

	// Alerts: on what needs a human, each with its case in promtool.
	exprs := alertExprs(t)
	for alert, want := range map[string]*regexp.Regexp{
		"EntitlementContractWillRevoke":    regexp.MustCompile(`entitlements_contract_forecast_partners\{outcome="Revoke"\}`),
		"EntitlementContractInGrace":       regexp.MustCompile(`entitlements_contract_phase\{phase="Grace"\}\) == 1`),
		"EntitlementPartnerStalled":        regexp.MustCompile(`max by \(partner, reason\) \(entitlements_partner_stalled\) == 1`),
		"EntitlementPartnerRevocation":     regexp.MustCompile(`increase\(entitlements_revocations_total\{scheduled="false"\}\[`),
		"EntitlementTransitionLagHigh":     regexp.MustCompile(`entitlements_transition_lag_seconds_bucket\{le=~"5`),
		"EntitlementReconcileErrors":       regexp.MustCompile(`controller_runtime_reconcile_errors_total`),
		"EntitlementOperatorNoLeader":      regexp.MustCompile(`^max\(leader_election_master_status\{name="entitlement-operator.partnerops.io"\}\) == 0\s*$`),
		"EntitlementOperatorMetricsAbsent": regexp.MustCompile(`^absent\(leader_election_master_status\{name="entitlement-operator.partnerops.io"\}\)\s*$`),
	} {
		if e, ok := exprs[alert]; !ok {
			t.Errorf("no alert %s", alert)
		} else if !want.MatchString(e) {
			t.Errorf("alert %s: expr %q does not match %s", alert, e, want)
		}
	}
	// A revoked partner is an intended state, not something to page about.
	for alert, e := range exprs {
		if strings.Contains(e, `phase="Revoked"`) {
			t.Errorf("alert %s fires on revoked partners, an intended state: %q", alert, e)
		}
	}
	// The transition-lag alert counts observations above the 5s bucket: the
	// histogram must have that bucket.
	if !slices.Contains(metricsBuckets(), 5) {
		t.Errorf("entitlements_transition_lag_seconds has no 5s bucket: %v", metricsBuckets())
	}
	ruleObj := find(t, objs, "PrometheusRule", prefix+"alerts")
	chartRule := find(t, chartAll(t), "PrometheusRule", prefix+"alerts")
	if !reflect.DeepEqual(chartRule.Object["spec"], ruleObj.Object["spec"]) {
		t.Error("the chart's PrometheusRule spec differs from config/prometheus/alerts.yaml")
	}

	// Dashboard.
	file, err := os.ReadFile(path("config", "prometheus", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
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
		if !jsonEqual(t, raw, string(file)) {
			t.Errorf("%s: dashboard ConfigMap differs from config/prometheus/dashboard.json", name)
		}
	}
	dash := readDashboard(t)
	if dash.UID == "" || len(dash.Panels) < 5 {
		t.Errorf("dashboard uid %q with %d panels", dash.UID, len(dash.Panels))
	}
	if !slices.ContainsFunc(dash.Templating.List, func(v struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}) bool {
		return v.Name == "cluster" && v.Type == "query"
	}) {
		t.Errorf("dashboard variables %+v: want a query variable cluster", dash.Templating.List)
	}
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			// Every selector picks the chosen cluster (an empty cluster
			// selects series without the label: one Prometheus, one cluster).
			for _, s := range selector.FindAllStringSubmatch(q.Expr, -1) {
				seen[s[1]] = true
				if !strings.Contains(s[2], `cluster="$cluster"`) {
					t.Errorf("panel %q: %s%s does not select cluster=\"$cluster\"", p.Title, s[1], s[2])
				}
			}
		}
		if strings.HasPrefix(p.Title, "Transition lag") {
			var qs []string
			for _, q := range p.Targets {
				qs = append(qs, strings.SplitN(q.Expr, ",", 2)[0])
			}
			if want := []string{"histogram_quantile(0.5", "histogram_quantile(0.99", "histogram_quantile(1"}; !slices.Equal(qs, want) {
				t.Errorf("panel %q queries %q, want p50, p99 and max: %q", p.Title, qs, want)
			}
		}
	}
	for _, m := range []string{"entitlements_partners", "entitlements_contract_ends_timestamp_seconds", "entitlements_contract_phase",
		"entitlements_failovers_total", "entitlements_revocations_total", "entitlements_transition_lag_seconds_bucket",
		"entitlements_partner_stalled", "controller_runtime_reconcile_errors_total"} {
		if !seen[m] {
			t.Errorf("no dashboard panel shows %s", m)
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
