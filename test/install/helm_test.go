package install_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// TestChartRejectsMisspelledValues: values.schema.json makes a misspelled
// or mistyped value fail the render instead of being silently ignored.
func TestChartRejectsMisspelledValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"misspelled top-level key", map[string]any{"replicaCont": 3}, "replicaCont"},
		{"misspelled nested key", map[string]any{"metrics": map[string]any{"serviceMonitr": map[string]any{"enabled": true}}}, "serviceMonitr"},
		{"wrong type", map[string]any{"replicaCount": "two"}, "replicaCount"},
		{"not an enum value", map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}}, "pullPolicy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("values %v: want a schema error naming %q, got %v", tc.vals, tc.want, err)
			}
		})
	}
	if _, err := renderChart(map[string]any{"serviceAccount": map[string]any{"create": false, "name": "mine"},
		"extraEnv": []any{map[string]any{"name": "GOMEMLIMIT", "value": "200MiB"}}}); err != nil {
		t.Errorf("valid values refused: %v", err)
	}
}

// TestChartCRDsAreTemplated: the CRDs are rendered as templates (so that
// `helm upgrade` upgrades them), kept on uninstall by default, and can be
// left out.
func TestChartCRDsAreTemplated(t *testing.T) {
	count := func(vals map[string]any) (crds, kept int) {
		objs, err := renderChart(vals)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range ofKind(objs, "CustomResourceDefinition") {
			crds++
			if o.GetAnnotations()["helm.sh/resource-policy"] == "keep" {
				kept++
			}
		}
		return crds, kept
	}
	if crds, kept := count(nil); crds != 3 || kept != 3 {
		t.Errorf("defaults: want 3 CRDs, all kept on uninstall; got %d, %d kept", crds, kept)
	}
	if crds, kept := count(map[string]any{"crds": map[string]any{"keep": false}}); crds != 3 || kept != 0 {
		t.Errorf("crds.keep=false: want 3 CRDs, none annotated keep; got %d, %d", crds, kept)
	}
	if crds, _ := count(map[string]any{"crds": map[string]any{"enabled": false}}); crds != 0 {
		t.Errorf("crds.enabled=false: want no CRDs, got %d", crds)
	}
}

// TestHelmUpgradeAppliesChangedCRDs installs a previous chart version whose
// Partner CRD lacks a printer column, upgrades to this chart, and expects
// the column on the API server (a crds/ directory would have left the old
// CRD); then uninstalls and expects the CRDs kept.
func TestHelmUpgradeAppliesChangedCRDs(t *testing.T) {
	needCluster(t)
	// The chart installs the CRDs and the admission policy itself.
	fresh := testcluster.StartForTest(t, testcluster.Options{CRDDirs: []string{t.TempDir()}, ManifestDirs: []string{}, NoControllerManager: true})
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, ns := fresh.KubeconfigPath, "helm-upgrade"
	flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, ns, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	current, err := loader.Load(path("dist", "chart"))
	if err != nil {
		t.Fatal(err)
	}
	previous, err := loader.Load(path("dist", "chart"))
	if err != nil {
		t.Fatal(err)
	}
	previous.Metadata.Version = "0.0.9"
	const crdFile = "files/crds/entitlements.partnerops.io_partners.yaml"
	var dropped string
	for _, f := range previous.Files {
		if f.Name != crdFile {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(f.Data, crd); err != nil {
			t.Fatal(err)
		}
		cols := crd.Spec.Versions[0].AdditionalPrinterColumns
		dropped = cols[len(cols)-1].Name
		crd.Spec.Versions[0].AdditionalPrinterColumns = cols[:len(cols)-1]
		if f.Data, err = yaml.Marshal(crd); err != nil {
			t.Fatal(err)
		}
	}
	if dropped == "" {
		t.Fatalf("%s not in the chart", crdFile)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace, install.CreateNamespace = "eo", ns, true
	if _, err := install.Run(previous, nil); err != nil {
		t.Fatalf("installing the previous chart: %v", err)
	}
	c, err := client.New(fresh.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	hasColumn := func() bool {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(context.Background(), client.ObjectKey{Name: "partners.entitlements.partnerops.io"}, crd); err != nil {
			t.Fatal(err)
		}
		for _, col := range crd.Spec.Versions[0].AdditionalPrinterColumns {
			if col.Name == dropped {
				return true
			}
		}
		return false
	}
	if hasColumn() {
		t.Fatalf("the previous chart's CRD already has column %s", dropped)
	}
	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace = ns
	if _, err := upgrade.Run("eo", current, nil); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	if !hasColumn() {
		t.Errorf("after helm upgrade the Partner CRD lacks column %s: CRDs were not upgraded", dropped)
	}
	if _, err := action.NewUninstall(cfg).Run("eo"); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	if err := testcluster.Poll(10*time.Second, func() error {
		crds := &apiextensionsv1.CustomResourceDefinitionList{}
		if err := c.List(context.Background(), crds); err != nil {
			return err
		}
		if len(crds.Items) != 3 {
			return fmt.Errorf("%d CRDs after uninstall, want the 3 kept", len(crds.Items))
		}
		for _, crd := range crds.Items {
			if !crd.DeletionTimestamp.IsZero() {
				return fmt.Errorf("CRD %s is being deleted", crd.Name)
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}
