// Command manager runs the entitlement-operator controllers.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		metricsAddr, probeAddr, leaderNS, pprofAddr string
		leaderElect, metricsSecure, requirePolicies bool
		printVersion                                bool
		metricsCfg                                  metricsFlags
		qps                                         float64
		burst, concurrency                          int
		syncPeriod, stalledRecheck                  time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; 0 disables it.")
	flag.BoolVar(&metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS (the certificate of --metrics-cert-path, else a self-signed one) to callers the API server authenticates (TokenReview) and authorizes for GET /metrics (SubjectAccessReview, e.g. the metrics-reader ClusterRole); false serves plain HTTP to anyone, for local use.")
	flag.StringVar(&metricsCfg.certPath, "metrics-cert-path", "", "Directory holding the metrics server's certificate and key (e.g. a mounted cert-manager Secret); they are reloaded when they change. Empty: a self-signed certificate generated at start.")
	flag.StringVar(&metricsCfg.certName, "metrics-cert-name", "tls.crt", "File name of the metrics server's certificate in --metrics-cert-path.")
	flag.StringVar(&metricsCfg.certKey, "metrics-cert-key", "tls.key", "File name of the metrics server's key in --metrics-cert-path.")
	flag.BoolVar(&metricsCfg.enableHTTP2, "enable-http2", false, "Serve metrics over HTTP/2 too; off by default (HTTP/1.1 only) because of HTTP/2 Rapid Reset and Stream Cancellation (CVE-2023-44487, CVE-2023-39325).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health (/healthz) and readiness (/readyz) probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles (use with more than one replica).")
	flag.StringVar(&leaderNS, "leader-election-namespace", "", "Namespace of the leader-election Lease (default: the pod's namespace).")
	flag.Float64Var(&qps, "kube-api-qps", controllers.DefaultQPS, "Queries per second to the API server (client-side limit; the API server's Priority and Fairness protects it); -1 disables the client-side limit.")
	flag.IntVar(&burst, "kube-api-burst", controllers.DefaultBurst, "Burst of queries to the API server.")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles, "Reconciles run in parallel per controller.")
	flag.DurationVar(&stalledRecheck, "stalled-recheck-interval", controllers.DefaultStalledRecheck, "How often a Stalled partner is decided again; some fixes (deleting or labelling a namespace the operator does not manage) send it no event.")
	flag.BoolVar(&requirePolicies, "require-admission-policies", true, "Report on every DistributorContract (Ready False, Stalled AdmissionPolicyMissing, an event, entitlements_admission_policies_enforced 0) while the ValidatingAdmissionPolicies of config/admission or their bindings are missing or do not deny; false where they are deliberately not installed.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address a Go pprof endpoint (/debug/pprof) binds to, for profiling; empty (the default) disables it. It is unauthenticated: bind it to loopback.")
	flag.DurationVar(&syncPeriod, "sync-period", 10*time.Hour, "Backstop resync of every object; contract deadlines are scheduled exactly, not found by resync.")
	flag.BoolVar(&printVersion, "version", false, "Print the version and the commit the manager was built from, and exit.")
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	v, commit := version.Get()
	if commit == "" {
		commit = "unknown"
	}
	if printVersion {
		fmt.Printf("entitlement-operator %s (commit %s, %s)\n", v, commit, runtime.Version())
		return nil
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(qps), burst

	metricsCfg.addr, metricsCfg.secure = metricsAddr, metricsSecure
	metricsOpts, err := metricsOptions(metricsCfg)
	if err != nil {
		return err
	}

	cacheOpts := controllers.CacheOptions()
	cacheOpts.SyncPeriod = &syncPeriod
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        controllers.NewScheme(),
		Cache:                         cacheOpts,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		PprofBindAddress:              pprofAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "entitlement-operator.partnerops.io",
		LeaderElectionNamespace:       leaderNS,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := controllers.Setup(ctx, mgr, controllers.Options{Clock: clock.RealClock{}, MaxConcurrentReconciles: concurrency, StalledRecheck: stalledRecheck, RequireAdmissionPolicies: requirePolicies}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	// Ready once the informers have synced: before that the manager would
	// decide from an empty cache. /readyz/caches says which it waits for.
	if err := mgr.AddReadyzCheck("caches", controllers.CachesSynced(mgr.GetCache())); err != nil {
		return err
	}
	log.Info("starting manager", "version", v, "commit", commit, "leaderElection", leaderElect, "metrics", metricsAddr, "metricsSecure", metricsSecure, "metricsCertPath", metricsCfg.certPath, "http2", metricsCfg.enableHTTP2)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}

// metricsFlags are the metrics server's flags (kubebuilder's names).
type metricsFlags struct {
	addr                        string
	secure, enableHTTP2         bool
	certPath, certName, certKey string
}

// metricsOptions serves metrics over HTTPS behind the API server's
// authentication and authorization (kubebuilder's default), or plain HTTP
// when secure is false. With certPath, the certificate and key there are
// served and reloaded when they change (controller-runtime's certwatcher,
// started by the metrics server); without, a self-signed one. HTTP/2 is
// off unless enabled.
func metricsOptions(f metricsFlags) (metricsserver.Options, error) {
	o := metricsserver.Options{BindAddress: f.addr}
	if !f.secure {
		if f.certPath != "" {
			return o, fmt.Errorf("--metrics-cert-path needs --metrics-secure")
		}
		return o, nil
	}
	o.SecureServing = true
	o.FilterProvider = filters.WithAuthenticationAndAuthorization
	if !f.enableHTTP2 {
		o.TLSOpts = append(o.TLSOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	if f.certPath != "" {
		// The metrics server falls back to a self-signed certificate when
		// these files are missing; a certificate asked for and not found
		// must stop the manager instead (a scraper verifying it would only
		// see TLS errors).
		cert, key := filepath.Join(f.certPath, f.certName), filepath.Join(f.certPath, f.certKey)
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			return o, fmt.Errorf("metrics certificate (--metrics-cert-path): %w", err)
		}
		o.CertDir, o.CertName, o.KeyName = f.certPath, f.certName, f.certKey
	}
	return o, nil
}
