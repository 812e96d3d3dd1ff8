// Package install_test checks what a cluster administrator installs: the
// kustomize tree (config/default, config/prometheus) and the Helm chart
// (dist/chart).
//
// Without a control plane (always, also with -short) it renders both with the
// kustomize and Helm Go libraries and checks them: the chart's copies of
// generated files are in sync, both install the same objects with the same
// RBAC rules, no rule anywhere has a wildcard, `bind` is limited to the tier
// roles by name, the manager runs hardened, and the monitoring objects parse
// and refer to metrics the operator exposes.
//
// With the local control plane (not -short) it server-side dry-run creates
// every rendered object, then exercises the real tier ClusterRoles as a
// partner's user, and runs the operator's manager with exactly the RBAC the
// install grants its ServiceAccount.
package install_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

const (
	// installNamespace is config/default's namespace, also used as the Helm
	// release namespace.
	installNamespace = "entitlement-system"
	// prefix is config/default's namePrefix and the chart's default fullname.
	prefix = "entitlement-operator-"
	// releaseName of the test's Helm release.
	releaseName = "entitlement-operator"
)

var (
	cluster *testcluster.Cluster
	// admin is a controller-runtime client with the cluster's admin identity
	// and the operator's scheme; it maps unstructured objects by discovery.
	admin client.Client
	root  string
)

func TestMain(m *testing.M) {
	flag.Parse()
	var err error
	if root, err = testcluster.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(testcluster.RunTests(m, !testing.Short(), testcluster.Options{}, func(c *testcluster.Cluster) error {
		cluster = c
		var err error
		admin, err = client.New(c.Config, client.Options{Scheme: controllers.NewScheme()})
		return err
	}))
}

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane")
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func path(elem ...string) string { return filepath.Join(append([]string{root}, elem...)...) }

// renderKustomize builds a kustomization directory of the repository the way
// `kubectl kustomize` does.
func renderKustomize(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), path(dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		return nil, err
	}
	return decode(y)
}

// renderChart renders dist/chart the way `helm template --include-crds`
// does, for the test cluster's Kubernetes version (a recent one without a
// cluster).
func renderChart(vals map[string]any) ([]*unstructured.Unstructured, error) {
	return renderChartFor(vals, kubeVersion())
}

// renderChartFor renders dist/chart for Kubernetes version kv.
func renderChartFor(vals map[string]any, kv *chartutil.KubeVersion) ([]*unstructured.Unstructured, error) {
	rel, err := renderRelease(vals, kv)
	if err != nil {
		return nil, err
	}
	return decode([]byte(rel.Manifest))
}

// renderRelease renders dist/chart as `helm install --dry-run` does: the
// manifest and the NOTES.
func renderRelease(vals map[string]any, kv *chartutil.KubeVersion) (*release.Release, error) {
	chrt, err := loader.Load(path("dist", "chart"))
	if err != nil {
		return nil, fmt.Errorf("loading the chart: %w", err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.ReleaseName = releaseName
	inst.Namespace = installNamespace
	inst.DryRun, inst.DryRunOption = true, "client"
	inst.ClientOnly = true
	inst.Replace = true
	inst.IncludeCRDs = true
	inst.KubeVersion = kv
	rel, err := inst.Run(chrt, vals)
	if err != nil {
		return nil, fmt.Errorf("rendering the chart: %w", err)
	}
	return rel, nil
}

var (
	kubeVersionOnce sync.Once
	kubeVersionVal  *chartutil.KubeVersion
)

// kubeVersion is the test cluster's version, or a recent one without it.
func kubeVersion() *chartutil.KubeVersion {
	kubeVersionOnce.Do(func() {
		kubeVersionVal = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
		if cluster == nil {
			return
		}
		dc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
		if err != nil {
			return
		}
		if v, err := dc.ServerVersion(); err == nil {
			kubeVersionVal = &chartutil.KubeVersion{Version: v.GitVersion, Major: v.Major, Minor: v.Minor}
		}
	})
	return kubeVersionVal
}

// decode splits a multi-document YAML stream into objects.
func decode(y []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("object without kind, apiVersion or name: %v", m)
		}
		objs = append(objs, u)
	}
}

// Renders are cached: kustomize and Helm take a moment each.
var renders = struct {
	sync.Mutex
	m map[string][]*unstructured.Unstructured
}{m: map[string][]*unstructured.Unstructured{}}

func cached(t *testing.T, key string, f func() ([]*unstructured.Unstructured, error)) []*unstructured.Unstructured {
	t.Helper()
	renders.Lock()
	defer renders.Unlock()
	if objs, ok := renders.m[key]; ok {
		return deepCopy(objs)
	}
	objs, err := f()
	if err != nil {
		t.Fatal(err)
	}
	renders.m[key] = objs
	return deepCopy(objs)
}

func deepCopy(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}

// kustomizeDefault is config/default rendered.
func kustomizeDefault(t *testing.T) []*unstructured.Unstructured {
	return cached(t, "config/default", func() ([]*unstructured.Unstructured, error) { return renderKustomize("config/default") })
}

// kustomizeFinalizer is config/admission-finalizer rendered.
func kustomizeFinalizer(t *testing.T) []*unstructured.Unstructured {
	return cached(t, "config/admission-finalizer", func() ([]*unstructured.Unstructured, error) {
		return renderKustomize("config/admission-finalizer")
	})
}

// kustomizePrometheus is config/prometheus rendered.
func kustomizePrometheus(t *testing.T) []*unstructured.Unstructured {
	return cached(t, "config/prometheus", func() ([]*unstructured.Unstructured, error) { return renderKustomize("config/prometheus") })
}

// chartDefault is the chart rendered with its default values.
func chartDefault(t *testing.T) []*unstructured.Unstructured {
	return cached(t, "chart", func() ([]*unstructured.Unstructured, error) { return renderChart(nil) })
}

// chartAll is the chart rendered with every optional object turned on.
func chartAll(t *testing.T) []*unstructured.Unstructured {
	return cached(t, "chart-all", func() ([]*unstructured.Unstructured, error) {
		return renderChart(map[string]any{
			"metrics":   map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
			"alerts":    map[string]any{"enabled": true},
			"dashboard": map[string]any{"enabled": true},
		})
	})
}

// find returns the one object of a kind and name, failing the test when it
// is not there.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func ofKind(objs []*unstructured.Unstructured, kinds ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		for _, k := range kinds {
			if o.GetKind() == k {
				out = append(out, o)
			}
		}
	}
	return out
}

func id(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", o.GetKind(), ns, o.GetName())
	}
	return fmt.Sprintf("%s %s", o.GetKind(), o.GetName())
}
