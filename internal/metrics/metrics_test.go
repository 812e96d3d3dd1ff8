package metrics

import (
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/partnerops/entitlement-operator/internal/version"
)

// stalledSeries are the reasons of partnerStalled's series for a partner,
// and how many series there are in all.
func stalledSeries(t *testing.T, partner string) (reasons []string, n int) {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	partnerStalled.Collect(ch)
	close(ch)
	for m := range ch {
		n++
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		if pb.GetGauge().GetValue() != 1 {
			t.Errorf("a series of value %v, want 1", pb.GetGauge().GetValue())
		}
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["partner"] == partner {
			reasons = append(reasons, labels["reason"])
		}
	}
	return reasons, n
}

// A Stalled partner has one series, labelled with the current reason; it
// goes when the partner recovers or is forgotten.
func TestSetStalled(t *testing.T) {
	SetStalled("acme", "NamespaceConflict")
	SetStalled("acme", "NamespaceConflict")
	if r, n := stalledSeries(t, "acme"); n != 1 || len(r) != 1 || r[0] != "NamespaceConflict" {
		t.Fatalf("one Stalled partner: %d series, reasons %v", n, r)
	}
	SetStalled("acme", "RoleNotBindable")
	if r, n := stalledSeries(t, "acme"); n != 1 || len(r) != 1 || r[0] != "RoleNotBindable" {
		t.Fatalf("reason changed: %d series, reasons %v; want the new reason's only", n, r)
	}
	SetStalled("acme", "")
	if _, n := stalledSeries(t, "acme"); n != 0 {
		t.Fatalf("recovered: %d series, want none", n)
	}
	SetStalled("nordwind", "ContractNotFound")
	SetPartner("nordwind", "", "")
	if _, n := stalledSeries(t, "nordwind"); n != 0 {
		t.Fatalf("forgotten partner: %d series, want none", n)
	}
}

// TestBuildInfo: entitlements_build_info is served with the version the
// binary was stamped with, its commit and the Go version, and the value 1.
func TestBuildInfo(t *testing.T) {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := version.Get()
	for _, f := range families {
		if f.GetName() != "entitlements_build_info" {
			continue
		}
		if len(f.GetMetric()) != 1 {
			t.Fatalf("want one series, got %d", len(f.GetMetric()))
		}
		m := f.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["version"] != v || labels["goversion"] != runtime.Version() || labels["commit"] == "" {
			t.Errorf("labels %v: want version %q, goversion %q and a commit", labels, v, runtime.Version())
		}
		if m.GetGauge().GetValue() != 1 {
			t.Errorf("value %v, want 1", m.GetGauge().GetValue())
		}
		return
	}
	t.Fatal("entitlements_build_info is not registered")
}
