package e2e_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// TestMetricsNeedAuthorization starts the manager binary with its default
// metrics flags (HTTPS, authenticated and authorized through the API
// server; only the address is moved to a free loopback port) and scrapes it
// as nobody, as a ServiceAccount without the metrics-reader ClusterRole,
// and as one bound to it (config/rbac/metrics_reader_role.yaml).
func TestMetricsNeedAuthorization(t *testing.T) {
	root := needCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl := testcluster.StartForTest(t, testcluster.Options{NoControllerManager: true})
	bin := filepath.Join(t.TempDir(), "manager")
	if err := testcluster.BuildManager(ctx, root, bin); err != nil {
		t.Fatal(err)
	}
	addr, err := testcluster.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	m, err := testcluster.StartManager(ctx, testcluster.ManagerOptions{Binary: bin, Kubeconfig: cl.KubeconfigPath,
		LogPath: filepath.Join(t.TempDir(), "manager.log"), ExtraArgs: []string{"--metrics-bind-address=" + addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()

	cs := kubernetes.NewForConfigOrDie(cl.Config)
	raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", "metrics_reader_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reader := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(raw, reader); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, reader, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func(sa string) string {
		t.Helper()
		if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	scraper, stranger := token("scraper"), token("stranger")
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "scraper", Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The manager caches every answer of the API server about a token (a
	// refusal for a minute) and about an authorization (a refusal for 30
	// s). Wait until the API server itself knows both ServiceAccounts and
	// the binding (its own caches are informers, which lag under load), so
	// that no scrape below is judged on a stale refusal (CI once saw one).
	if err := testcluster.Poll(30*time.Second, func() error {
		for sa, tok := range map[string]string{"scraper": scraper, "stranger": stranger} {
			tr, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tok}}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if !tr.Status.Authenticated {
				return fmt.Errorf("the token of %s not authenticated yet: %s", sa, tr.Status.Error)
			}
		}
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:                  "system:serviceaccount:default:scraper",
			Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if !sar.Status.Allowed {
			return fmt.Errorf("scraper not yet allowed GET /metrics: %s", sar.Status.Reason)
		}
		return nil
	}); err != nil {
		t.Fatalf("the API server: %v", err)
	}

	// The certificate is self-signed (mount a real one to verify it).
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(bearer string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	// Ready (/readyz) does not wait for the metrics listener: wait until it
	// answers at all, then judge the answer.
	var code int
	if err := testcluster.Poll(60*time.Second, func() error {
		var err error
		code, _, err = get("")
		return err
	}); err != nil {
		t.Fatalf("the metrics endpoint never answered: %v", err)
	}
	if code != http.StatusUnauthorized {
		t.Errorf("no token: want 401, got %d", code)
	}
	if code, _, err := get(stranger); err != nil || code != http.StatusForbidden {
		t.Errorf("a ServiceAccount without metrics-reader: want 403, got %d (%v)", code, err)
	}
	// The API server allows the scraper (checked above); the manager's
	// first question about it is this one.
	if err := testcluster.Poll(30*time.Second, func() error {
		code, body, err := get(scraper)
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(body, "entitlements_") {
			return fmt.Errorf("status %d", code)
		}
		return nil
	}); err != nil {
		t.Errorf("a ServiceAccount bound to metrics-reader: want 200 with the entitlements_ metrics: %v", err)
	}
	// The TLS listener never serves the metrics over plain HTTP.
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "entitlements_") {
			t.Error("plain HTTP served the metrics")
		}
	}
}
