// Package api_test checks the entitlements.partnerops.io/v1alpha1 API as the
// real API server serves it from config/crd/bases: what it refuses (and that
// the refusal names the field a user has to fix), what it defaults, the
// samples in config/samples, printer columns, short names and categories.
// Nothing here runs the operator: these are the promises the CRDs alone keep.
package api_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

const group = "entitlements.partnerops.io"

var (
	gvrPartner      = schema.GroupVersionResource{Group: group, Version: "v1alpha1", Resource: "partners"}
	gvrContract     = schema.GroupVersionResource{Group: group, Version: "v1alpha1", Resource: "distributorcontracts"}
	gvrSubscription = schema.GroupVersionResource{Group: group, Version: "v1alpha1", Resource: "subscriptions"}
)

// One control plane for the whole package (started by TestMain unless
// -short): the CRDs are what is under test, not the operator, so
// kube-controller-manager is not needed.
var (
	cluster *testcluster.Cluster
	restCfg *rest.Config
	dyn     dynamic.Interface
	kube    kubernetes.Interface
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testcluster.RunTests(m, !testing.Short(), testcluster.Options{NoControllerManager: true}, func(c *testcluster.Cluster) error {
		cluster, restCfg = c, c.Config
		var err error
		if dyn, err = dynamic.NewForConfig(restCfg); err != nil {
			return err
		}
		kube, err = kubernetes.NewForConfig(restCfg)
		return err
	}))
}

// needCluster skips a test under -short.
func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane (internal/testcluster)")
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// gvrFor maps a kind of this API to its resource.
func gvrFor(kind string) (schema.GroupVersionResource, error) {
	switch kind {
	case "Partner":
		return gvrPartner, nil
	case "DistributorContract":
		return gvrContract, nil
	case "Subscription":
		return gvrSubscription, nil
	}
	return schema.GroupVersionResource{}, fmt.Errorf("kind %q is not part of %s", kind, group)
}

// resourceFor is the dynamic client for an object of this API, in its
// namespace when it is namespaced.
func resourceFor(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvr, err := gvrFor(obj.GetKind())
	if err != nil {
		return nil, err
	}
	if obj.GetNamespace() != "" {
		return dyn.Resource(gvr).Namespace(obj.GetNamespace()), nil
	}
	return dyn.Resource(gvr), nil
}

// createStrict creates obj the way kubectl does: with strict server-side
// field validation, so an unknown (misspelt) field is an error too.
func createStrict(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	ri, err := resourceFor(obj)
	if err != nil {
		return nil, err
	}
	opts := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return ri.Create(ctx, obj, opts)
}

// ensureNamespace creates a namespace if it is not there yet.
func ensureNamespace(ctx context.Context, name string) error {
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// parseObject reads one YAML manifest.
func parseObject(doc string) (*unstructured.Unstructured, error) {
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// splitDocuments splits a multi-document YAML file, dropping empty and
// comment-only documents.
func splitDocuments(data string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+data, "\n---") {
		if hasContent(d) {
			docs = append(docs, d)
		}
	}
	return docs
}

func hasContent(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// mergePatch applies a JSON merge patch (RFC 7386) held as a map: maps merge,
// null removes, anything else (lists included) replaces.
func mergePatch(dst, patch map[string]any) {
	for k, v := range patch {
		if v == nil {
			delete(dst, k)
			continue
		}
		pm, ok := v.(map[string]any)
		if !ok {
			dst[k] = v
			continue
		}
		dm, ok := dst[k].(map[string]any)
		if !ok {
			dm = map[string]any{}
			dst[k] = dm
		}
		mergePatch(dm, pm)
	}
}

// normalize round-trips a value through JSON so that values parsed from YAML
// and values read from the API server compare equal (numbers, map types).
func normalize(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}
