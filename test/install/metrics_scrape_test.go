package install_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"helm.sh/helm/v3/pkg/chart/loader"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/metrics"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// TestMonitoringObjectsDryRun creates the monitoring objects of both
// installs, and the chart's Artifact Hub examples, with a server-side dry
// run against the Prometheus Operator's and cert-manager's CRDs
// (testdata/crds): the ServiceMonitor in every variant is what the
// current schema accepts.
func TestMonitoringObjectsDryRun(t *testing.T) {
	needCluster(t)
	c := ctx(t)
	for _, f := range []string{"monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml", "cert-manager.io_certificates.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "crds", f))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decode(b)
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %v (%d objects)", f, err, len(objs))
		}
		applyReal(t, objs[0])
		crd := fromUnstructured[apiextensionsv1.CustomResourceDefinition](t, objs[0])
		gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: crd.Spec.Versions[0].Name, Resource: crd.Spec.Names.Plural}
		if err := testcluster.Poll(30*time.Second, func() error { return cluster.CRDEstablished(c, gvr) }); err != nil {
			t.Fatal(err)
		}
	}
	ensureNamespace(t, installNamespace, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})

	certChart, err := renderChart(map[string]any{"metrics": map[string]any{
		"certManager": map[string]any{"enabled": true}, "serviceMonitor": map[string]any{"enabled": true}}})
	if err != nil {
		t.Fatal(err)
	}
	classChart, err := renderChart(map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true, "scrapeClass": "sa-token"}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for where, objs := range map[string][]*unstructured.Unstructured{
		"config/prometheus":   kustomizePrometheus(t),
		"config/metrics-cert": metricsCertOverlay(t),
		"chart (all on)":      chartAll(t),
		"chart (certManager)": certChart,
		"chart (scrapeClass)": classChart,
	} {
		for _, o := range ofKind(objs, "ServiceMonitor", "PrometheusRule", "Certificate") {
			n++
			if err := dryRunCreate(t, o); err != nil {
				t.Errorf("%s: dry-run create %s: %v", where, id(o), err)
			}
		}
	}
	if n < 10 {
		t.Errorf("dry-run created only %d monitoring objects", n)
	}

	// The Artifact Hub examples are valid objects of the chart's CRDs. The
	// Subscription's namespace is not entitled, so the products policy
	// refuses it: after the schema accepted it.
	chrt := readChartAnnotations(t)
	ensureNamespace(t, "acme-prod", nil)
	for _, e := range crdExamples(t, chrt["artifacthub.io/crdsExamples"]) {
		err := admin.Create(c, e, client.DryRunAll)
		if e.GetKind() == "Subscription" && err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			err = nil
		}
		if err != nil {
			t.Errorf("artifacthub.io/crdsExamples: %s %s: %v", e.GetKind(), e.GetName(), err)
		}
	}
}

func readChartAnnotations(t *testing.T) map[string]string {
	t.Helper()
	chrt, err := loader.Load(path("dist", "chart"))
	if err != nil {
		t.Fatal(err)
	}
	return chrt.Metadata.Annotations
}

// TestMetricsScrapeWithBoundToken runs the manager binary as installed
// with metrics.certManager: HTTPS with a certificate from a CA (as
// cert-manager writes it: ca.crt, tls.crt, tls.key), verified by the
// scraper, HTTP/2 off. Tokens of ServiceAccounts bound as the docs say —
// by the chart's metrics.reader.serviceAccount and by
// config/prometheus-rbac — get 200; no token 401, a ServiceAccount not
// bound 403. The scrape then holds every metric and label the alerts and
// the dashboard query.
func TestMetricsScrapeWithBoundToken(t *testing.T) {
	needCluster(t)
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(cluster.Config)

	// RBAC as the two installs write it.
	chartSA := rbacSubject{Namespace: "monitoring", Name: "prometheus-k8s"}
	chart, err := renderChart(map[string]any{"metrics": map[string]any{"reader": map[string]any{"serviceAccount": map[string]any{"name": chartSA.Name, "namespace": chartSA.Namespace}}}})
	if err != nil {
		t.Fatal(err)
	}
	applyReal(t, find(t, chart, "ClusterRole", prefix+"metrics-reader"))
	applyReal(t, find(t, chart, "ClusterRoleBinding", prefix+"metrics-reader-rolebinding"))
	kb := kustomizeRBACBinding(t)
	kustSA := rbacSubject{Namespace: kb.Subjects[0].Namespace, Name: kb.Subjects[0].Name}
	// Both installs name the binding alike; the copy of config/
	// prometheus-rbac gets another name here to sit beside the chart's.
	kbObj := find(t, kustomizeRBAC(t), "ClusterRoleBinding", kb.Name)
	kbObj.SetName(kb.Name + "-kustomize")
	applyReal(t, kbObj)
	stranger := rbacSubject{Namespace: "monitoring", Name: "grafana"}
	tokens := map[rbacSubject]string{}
	for _, sa := range []rbacSubject{chartSA, kustSA, stranger} {
		ensureNamespace(t, sa.Namespace, nil)
		ensureServiceAccount(t, sa.Namespace, sa.Name)
		tr, err := cs.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(c, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tokens[sa] = tr.Status.Token
	}
	// The manager caches the API server's answers about a token and an
	// authorization (refusals for up to a minute): ask the API server
	// first, until its own informers know the ServiceAccounts and bindings.
	if err := testcluster.Poll(60*time.Second, func() error {
		for sa, tok := range tokens {
			tr, err := cs.AuthenticationV1().TokenReviews().Create(c, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tok}}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if !tr.Status.Authenticated {
				return fmt.Errorf("the token of %s not authenticated yet", sa)
			}
			sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(c, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:                  tr.Status.User.Username,
				Groups:                tr.Status.User.Groups,
				NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
			}}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if sar.Status.Allowed != (sa != stranger) {
				return fmt.Errorf("%s allowed GET /metrics: %v", sa, sar.Status.Allowed)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("the API server: %v", err)
	}

	// A certificate for the metrics Service, signed by a CA.
	host := prefix + "controller-manager-metrics-service." + installNamespace + ".svc"
	certDir := t.TempDir()
	caPool := writeServingCert(t, certDir, host)

	ensureNamespace(t, installNamespace, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	installTierRoles(t)
	bin := filepath.Join(t.TempDir(), "manager")
	if err := testcluster.BuildManager(c, root, bin); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	logPath := filepath.Join(t.TempDir(), "manager.log")
	m, err := testcluster.StartManager(c, testcluster.ManagerOptions{Binary: bin, Kubeconfig: cluster.KubeconfigPath, LogPath: logPath, ExtraArgs: []string{
		"--metrics-bind-address=" + addr, "--metrics-cert-path=" + certDir,
		"--leader-elect", "--leader-election-namespace=" + installNamespace}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("manager log (last 4 KiB):\n%s", tail(string(b), 4096))
		}
	})

	// The scraper verifies the certificate and offers HTTP/2, as Prometheus
	// does.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: caPool, ServerName: host, NextProtos: []string{"h2", "http/1.1"}},
		ForceAttemptHTTP2: true,
	}}
	type answer struct {
		code  int
		proto string
		body  string
	}
	get := func(token string) (answer, error) {
		req, _ := http.NewRequestWithContext(c, http.MethodGet, "https://"+addr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.TLS.NegotiatedProtocol + " " + resp.Proto, string(b)}, err
	}
	// Ready (/readyz) does not wait for the metrics listener.
	var a answer
	if err := testcluster.Poll(60*time.Second, func() error {
		var err error
		a, err = get("")
		return err
	}); err != nil {
		t.Fatalf("the metrics endpoint never answered over verified TLS: %v", err)
	}
	if a.code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", a.code)
	}
	if a.proto != "http/1.1 HTTP/1.1" {
		t.Errorf("negotiated %q, want HTTP/1.1 only (HTTP/2 is off without --enable-http2)", a.proto)
	}
	t.Logf("no token: %d over %s", a.code, a.proto)
	if a, err := get(tokens[stranger]); err != nil || a.code != http.StatusForbidden {
		t.Errorf("a ServiceAccount not bound to metrics-reader: %d (%v), want 403", a.code, err)
	} else {
		t.Logf("%s (not bound): %d", stranger, a.code)
	}
	for _, sa := range []rbacSubject{chartSA, kustSA} {
		if err := testcluster.Poll(30*time.Second, func() error {
			a, err := get(tokens[sa])
			if err == nil && (a.code != http.StatusOK || !strings.Contains(a.body, "entitlements_")) {
				err = fmt.Errorf("status %d", a.code)
			}
			return err
		}); err != nil {
			t.Errorf("%s, bound to metrics-reader: want 200 with the entitlements_ metrics: %v", sa, err)
		} else {
			t.Logf("%s (bound): 200", sa)
		}
	}

	// Series the queries need: a Stalled partner (its contract does not
	// exist), a scheduled revocation (its contract ends in a few seconds),
	// a reconcile, the leader.
	now := time.Now()
	ending := testenv.Contract("scrape-ending", "Bytec", "DE", now.Add(-time.Hour), now.Add(8*time.Second), 0, 0, testenv.Tier(v1.TierReady, 2, 1))
	revoked := testenv.Partner("scrape-revoked", v1.TierReady, "DE", []string{ending.Name}, "scrape-revoked")
	stalled := testenv.Partner("scrape-stalled", v1.TierReady, "DE", []string{"scrape-missing"}, "scrape-stalled")
	for _, o := range []client.Object{ending, revoked, stalled} {
		if err := admin.Create(c, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { deleteWhileManaged(t, stalled, revoked, ending) })
	var body string
	if err := testcluster.Poll(90*time.Second, func() error {
		a, err := get(tokens[chartSA])
		if err != nil {
			return err
		}
		body = a.body
		for _, want := range []string{
			`entitlements_partner_stalled{partner="scrape-stalled",reason="` + v1.ReasonContractNotFound + `"} 1`,
			`entitlements_revocations_total{scheduled="true"}`,
			`leader_election_master_status{name="entitlement-operator.partnerops.io"} 1`,
			`controller_runtime_reconcile_time_seconds_bucket{controller="partner"`,
		} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %s in the scrape yet", want)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Every alert and panel queries what this scrape holds (the operator's
	// own vectors without a series yet, such as retries, from their
	// descriptors).
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	exposed := exposition{}
	for name, f := range families {
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(labels, l.GetName()) {
					labels = append(labels, l.GetName())
				}
			}
		}
		h := f.GetType().String() == "HISTOGRAM"
		exposed.add(name, labels, &h)
	}
	for _, col := range metrics.Collectors() {
		sub := exposition{}
		sub.describe(t, col, isHistogram)
		for n, l := range sub {
			if _, ok := exposed[n]; !ok {
				exposed[n] = l
			}
		}
	}
	checkQueries(t, exposed)
}

type rbacSubject struct{ Namespace, Name string }

func (s rbacSubject) String() string { return "ServiceAccount " + s.Namespace + "/" + s.Name }

// deleteWhileManaged deletes objects while the manager still runs (it
// removes the Partners' finalizer) and waits until they are gone.
func deleteWhileManaged(t *testing.T, objs ...client.Object) {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, o := range objs {
		if err := admin.Delete(c, o); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %s: %v", o.GetName(), err)
		}
	}
	for _, o := range objs {
		if err := testcluster.Poll(45*time.Second, func() error {
			err := admin.Get(c, client.ObjectKeyFromObject(o), o)
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("%s still there (%v)", o.GetName(), err)
		}); err != nil {
			t.Error(err)
		}
	}
}

// writeServingCert writes what cert-manager writes into a Secret — ca.crt,
// and tls.crt and tls.key for host and 127.0.0.1 signed by that CA — into
// dir, and returns the CA as a pool.
func writeServingCert(t *testing.T, dir, host string) *x509.CertPool {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := key(), key()
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "metrics test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.crt":  {Type: "CERTIFICATE", Bytes: caDER},
		"tls.crt": {Type: "CERTIFICATE", Bytes: leafDER},
		"tls.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
