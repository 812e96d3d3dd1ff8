// Package testenv runs the operator's manager in-process against a control
// plane (internal/testcluster) and builds test objects. Shared by the
// integration tests, the e2e tests, the benchmarks and the demo.
package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// Manager is a running in-process manager.
type Manager struct {
	// Writes counts the manager's mutating requests (anything but GET,
	// LIST and WATCH) to the API server.
	Writes atomic.Int64
	// Requests counts all its requests.
	Requests atomic.Int64
	// BytesRead counts the response bytes it read (lists and watches).
	BytesRead atomic.Int64
	// Forbidden counts its requests the API server refused with 403.
	Forbidden atomic.Int64
	// LeaseWrites counts the writes of leader election (Leases), which
	// Writes includes.
	LeaseWrites atomic.Int64

	writesMu sync.Mutex
	writeLog []string // method and path of the first writes, for failure messages
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	elected  <-chan struct{}
}

// maxWriteLog bounds WriteLog.
const maxWriteLog = 200

func (m *Manager) recordWrite(s string) {
	m.writesMu.Lock()
	defer m.writesMu.Unlock()
	if len(m.writeLog) < maxWriteLog {
		m.writeLog = append(m.writeLog, s)
	}
}

// WriteLog returns the method and path of the manager's first writes
// other than its Leases (at most 200): what a "no writes" assertion prints
// when it fails.
func (m *Manager) WriteLog() []string {
	m.writesMu.Lock()
	defer m.writesMu.Unlock()
	return append([]string(nil), m.writeLog...)
}

// ManagerOptions tune StartManager.
type ManagerOptions struct {
	Clock clock.PassiveClock
	// Verbose logs the manager at debug level to stderr.
	Verbose bool
	// MetricsAddr, "0" (default) disables the endpoint.
	MetricsAddr string
	// UnfilteredCache caches every namespace, RoleBinding, ResourceQuota and
	// ClusterRole instead of only the operator's (benchmark baseline).
	UnfilteredCache bool
	// StalledRecheck is how often a Stalled partner is decided again
	// (default the operator's).
	StalledRecheck time.Duration
	// Wrap, when set, wraps the manager's transport: a test's fault or
	// delay injected into the operator's own requests.
	Wrap func(http.RoundTripper) http.RoundTripper
	// RequireAdmissionPolicies: contracts report the admission policies
	// missing (the manager's default; off here unless a test asks).
	RequireAdmissionPolicies bool
	// LeaderElectionNamespace, when set, runs the manager with leader
	// election (the operator's Lease, default timings) in that namespace;
	// Stop then ends it like a crash, without releasing the lease.
	LeaderElectionNamespace string
}

// StartManager starts the operator's controllers against cfg and waits for
// its caches to sync.
func StartManager(cfg *rest.Config, o ManagerOptions) (*Manager, error) {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "0"
	}
	m := &Manager{done: make(chan error, 1)}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = controllers.DefaultQPS, controllers.DefaultBurst
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			m.Requests.Add(1)
			if req.Method != http.MethodGet {
				m.Writes.Add(1)
				if strings.Contains(req.URL.Path, "/leases/") || strings.HasSuffix(req.URL.Path, "/leases") {
					m.LeaseWrites.Add(1)
				} else {
					m.recordWrite(req.Method + " " + req.URL.Path)
				}
			}
			resp, err := rt.RoundTrip(req)
			if resp != nil && resp.StatusCode == http.StatusForbidden {
				m.Forbidden.Add(1)
			}
			if resp != nil && resp.Body != nil {
				resp.Body = &countingBody{ReadCloser: resp.Body, n: &m.BytesRead}
			}
			return resp, err
		})
	})
	if o.Wrap != nil {
		cfg.Wrap(o.Wrap)
	}
	if o.Verbose || os.Getenv("TEST_MANAGER_LOGS") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	cacheOpts := controllers.CacheOptions()
	if o.UnfilteredCache {
		cacheOpts = cache.Options{}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  controllers.NewScheme(),
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  "0",
		Controller:              config.Controller{SkipNameValidation: ptr.To(true)},
		LeaderElection:          o.LeaderElectionNamespace != "",
		LeaderElectionID:        "entitlement-operator.partnerops.io",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := controllers.Setup(ctx, mgr, controllers.Options{Clock: o.Clock, MaxConcurrentReconciles: concurrency(), StalledRecheck: o.StalledRecheck,
		RequireAdmissionPolicies: o.RequireAdmissionPolicies}); err != nil {
		cancel()
		return nil, err
	}
	m.elected = mgr.Elected()
	go func() { m.done <- mgr.Start(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		m.Stop()
		return nil, fmt.Errorf("manager caches did not sync")
	}
	return m, nil
}

// Elected is closed once the manager leads (at once without leader
// election).
func (m *Manager) Elected() <-chan struct{} { return m.elected }

// Stop stops the manager and waits for it to finish; safe to call twice.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		m.cancel()
		select {
		case <-m.done:
		case <-time.After(30 * time.Second):
		}
	})
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Contract builds a DistributorContract. A zero ends is open-ended.
func Contract(name, distributor, region string, starts, ends time.Time, notice, grace time.Duration, ents ...v1.TierEntitlement) *v1.DistributorContract {
	c := &v1.DistributorContract{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.DistributorContractSpec{
			Distributor: distributor, Region: v1.Region(region),
			StartsAt:     metav1.NewTime(starts.UTC().Truncate(time.Second)),
			NoticePeriod: &metav1.Duration{Duration: notice},
			GracePeriod:  &metav1.Duration{Duration: grace},
			Entitlements: ents,
		},
	}
	if !ends.IsZero() {
		t := metav1.NewTime(ends.UTC().Truncate(time.Second))
		c.Spec.EndsAt = &t
	}
	return c
}

// Tier builds a tier entitlement.
func Tier(tier v1.Tier, subscriptions, maxNamespaces int32) v1.TierEntitlement {
	return v1.TierEntitlement{Tier: tier, Subscriptions: subscriptions, MaxNamespaces: maxNamespaces}
}

// AllTiers covers every tier with the same limits.
func AllTiers(subscriptions, maxNamespaces int32) []v1.TierEntitlement {
	return []v1.TierEntitlement{
		Tier(v1.TierReady, subscriptions, maxNamespaces),
		Tier(v1.TierAdvanced, subscriptions, maxNamespaces),
		Tier(v1.TierPremier, subscriptions, maxNamespaces),
	}
}

// Partner builds a Partner with one Group subject "<name>-admins".
func Partner(name string, tier v1.Tier, region string, contracts []string, namespaces ...string) *v1.Partner {
	p := &v1.Partner{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PartnerSpec{
			DisplayName: name, Tier: tier, Region: v1.Region(region), Contracts: contracts,
			Access: []v1.Subject{{Kind: v1.SubjectGroup, Name: name + "-admins"}},
		},
	}
	for _, n := range namespaces {
		p.Spec.Namespaces = append(p.Spec.Namespaces, v1.NamespaceName(n))
	}
	return p
}

// TierRoles are minimal bindable tier ClusterRoles for tests (the real ones
// are in config/rbac).
func TierRoles() []*rbacv1.ClusterRole {
	var roles []*rbacv1.ClusterRole
	for _, t := range v1.Tiers {
		roles = append(roles, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{
				Name:   v1.DefaultClusterRole(t),
				Labels: map[string]string{v1.LabelBindable: "true"},
			},
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"subscriptions"},
				Verbs: []string{"get", "list", "watch", "create", "delete"},
			}, {
				// As the real tier roles: read the namespace (its entitlement
				// annotations) and its quota.
				APIGroups: []string{""}, Resources: []string{"namespaces", "resourcequotas"}, Verbs: []string{"get"},
			}},
		})
	}
	return roles
}

// concurrency is the manager's MaxConcurrentReconciles: TEST_CONCURRENCY or
// the manager's default.
func concurrency() int {
	if n, err := strconv.Atoi(os.Getenv("TEST_CONCURRENCY")); err == nil && n > 0 {
		return n
	}
	return controllers.DefaultMaxConcurrentReconciles
}

// AdminClient returns an admin client for cfg with the operator's scheme,
// after creating the minimal tier ClusterRoles (TierRoles): what every test
// package's TestMain sets up first.
func AdminClient(cfg *rest.Config) (client.Client, error) {
	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		return nil, err
	}
	for _, r := range TierRoles() {
		if err := c.Create(context.Background(), r); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Eventually fails the test unless f returns nil within timeout, polled
// (testcluster.Poll): what a test waits for, never a sleep.
func Eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	if err := testcluster.Poll(timeout, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Consistently fails the test if f returns an error at any poll during d:
// a "must not happen" checked for a bounded time.
func Consistently(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond) // the poll's interval
	}
}

// GetPartner reads a Partner, failing the test if it cannot.
func GetPartner(t testing.TB, c client.Reader, name string) *v1.Partner {
	t.Helper()
	p := &v1.Partner{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, p); err != nil {
		t.Fatalf("getting Partner %s: %v", name, err)
	}
	return p
}
