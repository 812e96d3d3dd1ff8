// Package testcluster runs a real, local Kubernetes control plane for tests,
// benchmarks and the demo: etcd and kube-apiserver (through
// controller-runtime's envtest) and kube-controller-manager beside them with
// the namespace, garbage-collector and resource-quota controllers, so that
// namespaces really terminate and quotas are really counted and enforced.
// It also builds and runs the operator's manager binary against it as a
// child process (StartManager), for the e2e, chaos and scale tests and the
// demo.
//
// Binaries come from KUBEBUILDER_ASSETS, or bin/k8s of this repository
// (built by `make k8s-bins`). Every process started is stopped by Stop, on
// SIGINT/SIGTERM, and — for the binaries hack/k8s-bins.sh builds — by the
// kernel when the process that started them dies.
package testcluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options tune the control plane.
type Options struct {
	// CRDDirs are directories of CRD manifests to install; default the
	// repository's config/crd/bases.
	CRDDirs []string
	// ManifestDirs are directories of other manifests an install brings
	// (every *.yaml but kustomization.yaml is created); default the
	// repository's config/admission (the ValidatingAdmissionPolicy) and
	// config/admission-finalizer (the MutatingAdmissionPolicy: the
	// control plane is Kubernetes 1.37, where the chart installs it).
	ManifestDirs []string
	// TierRoles also installs the tier ClusterRoles an install ships
	// (config/rbac/tiers), for a manager that binds the real ones; tests
	// that create their own stand-ins leave it off.
	TierRoles bool
	// OwnSignals leaves SIGINT and SIGTERM to the caller, who then stops
	// the cluster itself (the demo does, after its manager). By default a
	// signal stops the cluster and is then raised again, so that Ctrl-C in
	// a test run leaves nothing behind.
	OwnSignals bool
	// NoControllerManager skips kube-controller-manager.
	NoControllerManager bool
	// Dir keeps logs and kubeconfigs; default a temporary directory removed
	// by Stop unless KeepDir is set.
	Dir     string
	KeepDir bool
	// LogOutput receives the control plane's logs as they are written
	// (default: kept in memory, see Logs).
	LogOutput io.Writer
	// StopGrace is how long Stop lets etcd and kube-apiserver shut down
	// after SIGTERM before killing them; default
	// KUBEBUILDER_CONTROLPLANE_STOP_TIMEOUT if set, else 15s.
	StopGrace time.Duration
	// QuotaSyncPeriod is kube-controller-manager's
	// --resource-quota-sync-period: how often it recounts every quota from
	// its informers. Default 5m, kube-controller-manager's own default, so
	// that tests see what a stock cluster does (a short period hides a quota
	// that is never recounted, and widens the undercount race, see
	// docs/architecture.md).
	QuotaSyncPeriod time.Duration
}

// Cluster is a running local control plane.
type Cluster struct {
	// Config is an admin (system:masters) rest.Config for the API server.
	Config *rest.Config
	// KubeconfigPath is an admin kubeconfig file for kubectl and the demo.
	KubeconfigPath string
	// Dir holds the kubeconfigs and logs.
	Dir string

	env  *envtest.Environment
	kcm  *Child
	logs *TailBuffer
	opts Options

	planePIDs  []int          // etcd and kube-apiserver
	planeNames map[int]string // their names, by pid
	// restarted are kube-apiservers RestartAPIServer started in place of
	// envtest's.
	restarted []*Child
	out       io.Writer

	stopOnce sync.Once
	stopErr  error
	sigStop  func()
}

// rootModule is the module path of the repository root's go.mod.
const rootModule = "github.com/partnerops/entitlement-operator"

// RepoRoot finds the repository root (the directory whose go.mod is the
// operator's module) from the working directory upwards, past the go.mod
// of a nested test module (test/install).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == rootModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testcluster: the go.mod of " + rootModule + " not found above the working directory")
		}
		dir = parent
	}
}

// modulePath reads the module directive of a go.mod.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// AssetsDir is where etcd, kube-apiserver and kube-controller-manager are.
func AssetsDir() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "k8s"), nil
}

// Available reports whether the control-plane binaries are there, and if
// not, why.
func Available() error {
	dir, err := AssetsDir()
	if err != nil {
		return err
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("control-plane binary %s missing in %s (run `make k8s-bins` or set KUBEBUILDER_ASSETS): %w", b, dir, err)
		}
	}
	return nil
}

// Start starts a control plane. Call Stop (also on failure paths; it is
// idempotent).
func Start(opts Options) (*Cluster, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	assets, _ := AssetsDir()
	var root string
	if len(opts.CRDDirs) == 0 || opts.ManifestDirs == nil || opts.TierRoles {
		var err error
		if root, err = RepoRoot(); err != nil {
			return nil, err
		}
	}
	if len(opts.CRDDirs) == 0 {
		opts.CRDDirs = []string{filepath.Join(root, "config", "crd", "bases")}
	}
	if opts.ManifestDirs == nil {
		opts.ManifestDirs = []string{filepath.Join(root, "config", "admission"), filepath.Join(root, "config", "admission-finalizer")}
	}
	if opts.TierRoles {
		opts.ManifestDirs = append(slices.Clone(opts.ManifestDirs), filepath.Join(root, "config", "rbac", "tiers"))
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "testcluster-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}

	c := &Cluster{Dir: dir, logs: &TailBuffer{}, opts: opts}
	var out io.Writer = c.logs
	if opts.LogOutput != nil {
		out = io.MultiWriter(c.logs, opts.LogOutput)
	}
	c.out = out

	c.env = &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        opts.CRDDirs,
		ErrorIfCRDPathMissing:    true,
		AttachControlPlaneOutput: false,
		CRDInstallOptions:        envtest.CRDInstallOptions{MaxTime: 60 * time.Second},
		// A throwaway control plane gets a bounded grace period; past it
		// envtest kills the process (see Stop).
		ControlPlaneStopTimeout: stopGrace(opts.StopGrace),
	}
	c.env.ControlPlane.Etcd = &envtest.Etcd{Out: prefixed(out, "etcd"), Err: prefixed(out, "etcd")}
	c.env.ControlPlane.APIServer = &envtest.APIServer{Out: prefixed(out, "kube-apiserver"), Err: prefixed(out, "kube-apiserver")}
	if !opts.OwnSignals {
		c.sigStop = c.stopOnSignal()
	}

	cfg, err := c.startPlane()
	if err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("testcluster: starting etcd and kube-apiserver: %w\n%s", err, c.Logs())
	}
	cfg.QPS, cfg.Burst = 200, 400
	c.Config = cfg
	mutating, err := installManifests(cfg, opts.ManifestDirs)
	if err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("testcluster: installing %v: %w", opts.ManifestDirs, err)
	}
	if mutating {
		if err := waitAdmitsPartners(cfg); err != nil {
			_ = c.Stop()
			return nil, fmt.Errorf("testcluster: waiting for the API server to admit Partners: %w", err)
		}
	}

	admin, err := c.env.ControlPlane.AddUser(envtest.User{Name: "testcluster-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("testcluster: admin user: %w", err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		_ = c.Stop()
		return nil, err
	}
	c.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.KubeconfigPath, kc, 0o600); err != nil {
		_ = c.Stop()
		return nil, err
	}

	if !opts.NoControllerManager {
		if err := c.startControllerManager(assets, out); err != nil {
			_ = c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// startMu serialises starts so that the processes that appear during one
// are that cluster's own.
var startMu sync.Mutex

// startPlane starts etcd and kube-apiserver and records their pids.
func (c *Cluster) startPlane() (*rest.Config, error) {
	startMu.Lock()
	defer startMu.Unlock()
	before := map[int]bool{}
	for _, pid := range ChildPIDs(os.Getpid()) {
		before[pid] = true
	}
	cfg, err := c.env.Start()
	for _, pid := range ChildPIDs(os.Getpid()) {
		// By name too: another cluster's kube-controller-manager may be
		// starting meanwhile (startMu does not cover it).
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); !before[pid] &&
			(strings.TrimSpace(string(comm)) == "etcd" || strings.TrimSpace(string(comm)) == "kube-apiserver") {
			c.planePIDs = append(c.planePIDs, pid)
			if c.planeNames == nil {
				c.planeNames = map[int]string{}
			}
			c.planeNames[pid] = strings.TrimSpace(string(comm))
		}
	}
	return cfg, err
}

// UserConfig returns a rest.Config authenticated as the given user and
// groups (client certificate), for RBAC tests.
func (c *Cluster) UserConfig(name string, groups ...string) (*rest.Config, error) {
	u, err := c.env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, c.Config)
	if err != nil {
		return nil, err
	}
	cfg := u.Config()
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// WriteKubeconfig writes a kubeconfig for a rest.Config that authenticates
// with a client certificate or token.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "user"}
	kc.CurrentContext = "local"
	return clientcmd.WriteToFile(*kc, path)
}

// Logs returns what the control plane has written so far.
func (c *Cluster) Logs() string { return c.logs.String() }

// Stop stops every process Start started and removes Dir (unless kept). It
// is safe to call more than once and from several goroutines.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		if c.kcm != nil {
			c.kcm.Stop(10 * time.Second)
		}
		c.stopRestarted()
		if c.env != nil {
			if err := c.env.Stop(); err != nil {
				if forcedOnly(err) {
					// envtest sent SIGKILL after the grace period: on a
					// loaded machine kube-apiserver's graceful shutdown can
					// outlast it, and its data is throwaway, so that is not
					// a failure. Once the killed processes are gone from
					// /proc, stopping again finds them exited (or, in the
					// microseconds before envtest records that, signals a
					// process group that no longer exists) and removes
					// their directories.
					fmt.Fprintf(c.logs, "[testcluster] forced stop: %v\n", err)
					if err := Poll(10*time.Second, c.planeGone); err != nil {
						errs = append(errs, fmt.Errorf("etcd/kube-apiserver still running after SIGKILL: %w", err))
					} else if err := Poll(10*time.Second, c.env.Stop); err != nil {
						errs = append(errs, fmt.Errorf("stopping etcd/kube-apiserver after SIGKILL: %w", err))
					}
				} else {
					errs = append(errs, fmt.Errorf("stopping etcd/kube-apiserver: %w", err))
				}
			}
		}
		if c.sigStop != nil {
			c.sigStop()
		}
		if !c.opts.KeepDir && c.opts.Dir == "" && c.Dir != "" {
			_ = os.RemoveAll(c.Dir)
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}
