package metrics

import (
	"runtime"
	"testing"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/partnerops/entitlement-operator/internal/version"
)

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
