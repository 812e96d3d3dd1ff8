// Package testcluster runs a real, local Kubernetes control plane for tests,
// benchmarks and the demo: etcd and kube-apiserver (through
// controller-runtime's envtest) and kube-controller-manager beside them with
// the namespace, garbage-collector and resource-quota controllers, so that
// namespaces really terminate and quotas are really counted and enforced.
//
// Binaries come from KUBEBUILDER_ASSETS, or bin/k8s of this repository
// (built by `make k8s-bins`). Every process started is stopped by Stop, on
// SIGINT/SIGTERM, and — for the binaries hack/k8s-bins.sh builds — by the
// kernel when the process that started them dies.
package testcluster

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/discovery"
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

	env     *envtest.Environment
	kcm     *exec.Cmd
	kcmDone chan struct{}
	logs    *syncBuffer
	opts    Options

	planePIDs []int // etcd and kube-apiserver

	stopOnce sync.Once
	stopErr  error
	sigStop  func()
}

// RepoRoot finds the repository root (the directory holding go.mod) from
// the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testcluster: go.mod not found above the working directory")
		}
		dir = parent
	}
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
	if len(opts.CRDDirs) == 0 {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		opts.CRDDirs = []string{filepath.Join(root, "config", "crd", "bases")}
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

	c := &Cluster{Dir: dir, logs: &syncBuffer{}, opts: opts, kcmDone: make(chan struct{})}
	var out io.Writer = c.logs
	if opts.LogOutput != nil {
		out = io.MultiWriter(c.logs, opts.LogOutput)
	}

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
	c.sigStop = c.stopOnSignal()

	cfg, err := c.startPlane()
	if err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("testcluster: starting etcd and kube-apiserver: %w\n%s", err, c.Logs())
	}
	cfg.QPS, cfg.Burst = 200, 400
	c.Config = cfg

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
		}
	}
	return cfg, err
}

func (c *Cluster) startControllerManager(assets string, out io.Writer) error {
	kcmKubeconfig := filepath.Join(c.Dir, "kcm.kubeconfig")
	if err := c.writeKubeconfig(kcmKubeconfig, "kube-controller-manager", []string{"system:masters"}); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+kcmKubeconfig,
		"--controllers=namespace,garbagecollector,resourcequota",
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--concurrent-resource-quota-syncs=10",
		"--resource-quota-sync-period="+cmp.Or(c.opts.QuotaSyncPeriod, 5*time.Minute).String(),
		"--concurrent-namespace-syncs=10",
		"--concurrent-gc-syncs=20",
		"-v=1",
	)
	cmd.Stdout = prefixed(out, "kube-controller-manager")
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	// Pdeathsig follows the thread that forked: keep it alive while we run.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err != nil {
			return
		}
		_ = cmd.Wait()
		close(c.kcmDone)
		// Stay locked: the thread exits with this goroutine only after the
		// child is gone.
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("testcluster: starting kube-controller-manager: %w", err)
	}
	c.kcm = cmd
	return c.waitControllerManager()
}

// waitControllerManager waits until the resource-quota controller has
// discovered the API (it must see our CRDs to count Subscriptions): a
// ResourceQuota gets its status computed.
func (c *Cluster) waitControllerManager() error {
	deadline := time.Now().Add(60 * time.Second)
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		select {
		case <-c.kcmDone:
			return fmt.Errorf("testcluster: kube-controller-manager exited early:\n%s", c.Logs())
		default:
		}
		if _, err := dc.ServerResourcesForGroupVersion("v1"); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("testcluster: API server not ready for kube-controller-manager:\n%s", c.Logs())
}

func (c *Cluster) writeKubeconfig(path, user string, groups []string) error {
	u, err := c.env.ControlPlane.AddUser(envtest.User{Name: user, Groups: groups}, c.Config)
	if err != nil {
		return err
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, kc, 0o600)
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
		if c.kcm != nil && c.kcm.Process != nil {
			_ = syscall.Kill(-c.kcm.Process.Pid, syscall.SIGTERM)
			select {
			case <-c.kcmDone:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-c.kcm.Process.Pid, syscall.SIGKILL)
				<-c.kcmDone
			}
		}
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

// stopGrace is the grace period to use: the option, else
// KUBEBUILDER_CONTROLPLANE_STOP_TIMEOUT (envtest reads it when this is 0),
// else defaultStopGrace.
func stopGrace(opt time.Duration) time.Duration {
	if opt == 0 && os.Getenv("KUBEBUILDER_CONTROLPLANE_STOP_TIMEOUT") != "" {
		return 0
	}
	return cmp.Or(opt, defaultStopGrace)
}

// defaultStopGrace is how long Stop lets etcd and kube-apiserver shut down
// gracefully after SIGTERM before they are killed.
const defaultStopGrace = 15 * time.Second

// forcedOnly reports whether every error envtest returned from Stop is a
// plain grace-period timeout, after which it has sent SIGKILL (a failed
// kill is joined to the timeout and does not count).
func forcedOnly(err error) bool {
	errs := []error{err}
	if agg, ok := err.(kerrors.Aggregate); ok {
		errs = agg.Errors()
	}
	for _, e := range errs {
		if !stopTimeout.MatchString(e.Error()) {
			return false
		}
	}
	return len(errs) > 0
}

var stopTimeout = regexp.MustCompile(`^timeout waiting for process [^\s]+ to stop$`)

// planeGone reports (as an error) an etcd or kube-apiserver of this cluster
// still running.
func (c *Cluster) planeGone() error {
	running := runningChildren()
	for _, pid := range c.planePIDs {
		if running[pid] {
			return fmt.Errorf("pid %d still running", pid)
		}
	}
	return nil
}

// stopOnSignal stops the cluster on SIGINT or SIGTERM, then exits: Ctrl-C
// during a test run leaves nothing behind.
func (c *Cluster) stopOnSignal() func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(os.Stderr, "testcluster: %v: stopping the control plane\n", s)
			c.sigStop = nil
			_ = c.Stop()
			os.Exit(130)
		case <-done:
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// PIDs returns the process ids of this cluster's running etcd,
// kube-apiserver and kube-controller-manager: what a leak check compares
// before and after Stop.
func (c *Cluster) PIDs() []int {
	pids := append([]int(nil), c.planePIDs...)
	if c.kcm != nil && c.kcm.Process != nil {
		pids = append(pids, c.kcm.Process.Pid)
	}
	running := runningChildren()
	return slices.DeleteFunc(pids, func(pid int) bool { return !running[pid] })
}

// runningChildren is the set of this process's running control-plane
// children.
func runningChildren() map[int]bool {
	running := map[int]bool{}
	for _, pid := range ChildPIDs(os.Getpid()) {
		running[pid] = true
	}
	return running
}

// ChildPIDs lists the running etcd, kube-apiserver and kube-controller-manager
// processes whose parent is ppid (any parent when ppid is 0).
func ChildPIDs(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at ')'.
		st := string(b)
		open, closing := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || closing < open {
			continue
		}
		comm := st[open+1 : closing]
		rest := strings.Fields(st[closing+1:])
		if len(rest) < 2 || rest[0] == "Z" {
			continue
		}
		parent, _ := strconv.Atoi(rest[1])
		if ppid != 0 && parent != ppid {
			continue
		}
		// comm is cut at 15 characters: kube-controller-manager -> kube-controller.
		if comm == "etcd" || comm == "kube-apiserver" || strings.HasPrefix(comm, "kube-controller") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// CRDEstablished reports whether the API server serves a resource.
func (c *Cluster) CRDEstablished(ctx context.Context, gvr schema.GroupVersionResource) error {
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return err
	}
	list, err := dc.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		return err
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return nil
		}
	}
	return fmt.Errorf("%s not served", gvr)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the last 4 MiB: enough to diagnose a failure.
	if b.buf.Len() > 4<<20 {
		tail := append([]byte(nil), b.buf.Bytes()[b.buf.Len()-(2<<20):]...)
		b.buf.Reset()
		b.buf.Write(tail)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// prefixed writes each line with "[name] " in front.
func prefixed(w io.Writer, name string) io.Writer {
	return &prefixWriter{w: w, prefix: []byte("[" + name + "] ")}
}

type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	var out []byte
	for len(b) > 0 {
		if !p.mid {
			out = append(out, p.prefix...)
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b...)
			p.mid = true
			break
		}
		out = append(out, b[:i+1]...)
		b = b[i+1:]
		p.mid = false
	}
	_, err := p.w.Write(out)
	return n, err
}

// Poll calls f every 50ms until it returns nil or timeout passes; then it
// returns f's last error.
func Poll(timeout time.Duration, f func() error) error {
	return PollContext(context.Background(), timeout, f)
}

// PollContext is Poll that also stops when ctx ends (returning its cause).
func PollContext(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
