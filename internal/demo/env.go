package demo

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// EnvOptions say how to bring the demo's world up.
type EnvOptions struct {
	// Root is the repository root (default: testcluster.RepoRoot()).
	Root string
	// ManagerBinary is a built manager to run; empty builds one into
	// BuildOutput with `go build` while the control plane starts.
	ManagerBinary string
	// BuildOutput is where to build the manager (default <Root>/bin/manager).
	BuildOutput string
	// TierRolesDir holds the tier ClusterRoles (default
	// <Root>/config/rbac/tiers).
	TierRolesDir string
	// Dir receives the logs (manager.log, control-plane.log); it must
	// exist. Empty: a new temporary directory, created once the control
	// plane is up (so that an interrupt while it starts, which testcluster
	// handles by exiting, leaves nothing behind); the caller removes it.
	Dir string
	// Timeline narrates the steps (nil: silent).
	Timeline *Timeline
	// OnClusterStarted runs right after the control plane is up, before
	// anything else (the demo takes over signal handling there).
	OnClusterStarted func(*testcluster.Cluster)
}

// Env is the running world: the local control plane with the CRDs and the
// tier ClusterRoles installed, and the manager binary running against it.
type Env struct {
	Cluster *testcluster.Cluster
	Manager *testcluster.ManagerProcess
	// Config is an admin rest.Config; KubeconfigPath the same as a file.
	Config         *rest.Config
	KubeconfigPath string
	// Dir holds the log files ManagerLog and ControlPlaneLog.
	Dir, ManagerLog, ControlPlaneLog string

	cpLog *os.File
}

// Up builds the manager (unless given), starts the control plane, installs
// the tier ClusterRoles and starts the manager binary. On error, everything
// it started is stopped again; the Env returned with the error says where
// the logs are (Dir, when it got that far).
func Up(ctx context.Context, o EnvOptions) (env *Env, err error) {
	tl := o.Timeline
	if tl == nil {
		tl = NewTimeline(discard{}, time.Now(), false)
	}
	if o.Root == "" {
		if o.Root, err = testcluster.RepoRoot(); err != nil {
			return nil, err
		}
	}
	if o.TierRolesDir == "" {
		o.TierRolesDir = filepath.Join(o.Root, "config", "rbac", "tiers")
	}
	if err := testcluster.Available(); err != nil {
		return nil, err
	}
	env = &Env{}
	defer func() {
		if err != nil {
			_ = env.Stop()
		}
	}()

	// Build the manager while the control plane starts: on two cores the
	// link and etcd's start overlap well.
	binary := o.ManagerBinary
	buildDone := make(chan error, 1)
	buildCtx, cancelBuild := context.WithCancel(ctx)
	defer cancelBuild()
	if binary == "" {
		binary = o.BuildOutput
		if binary == "" {
			binary = filepath.Join(o.Root, "bin", "manager")
		}
		tl.Stepf("building the manager: go build -o %s ./cmd/manager", relTo(o.Root, binary))
		go func() { buildDone <- testcluster.BuildManager(buildCtx, o.Root, binary) }()
	} else {
		buildDone <- nil
	}

	tl.Stepf("starting the control plane: etcd, kube-apiserver, kube-controller-manager (%s)", assetsDir())
	cpLog := &lateWriter{}
	started := time.Now()
	cluster, err := testcluster.Start(testcluster.Options{LogOutput: cpLog})
	if err != nil {
		return env, err
	}
	env.Cluster = cluster
	env.Config, env.KubeconfigPath = cluster.Config, cluster.KubeconfigPath
	if o.OnClusterStarted != nil {
		o.OnClusterStarted(cluster)
	}
	if env.Dir = o.Dir; env.Dir == "" {
		if env.Dir, err = os.MkdirTemp("", "entitlement-demo-"); err != nil {
			return env, err
		}
	}
	env.ManagerLog = filepath.Join(env.Dir, "manager.log")
	env.ControlPlaneLog = filepath.Join(env.Dir, "control-plane.log")
	if env.cpLog, err = os.Create(env.ControlPlaneLog); err != nil {
		return env, err
	}
	cpLog.attach(env.cpLog)
	tl.Stepf("control plane up in %.1fs; CRDs installed (partners, distributorcontracts, subscriptions)", time.Since(started).Seconds())

	c, err := client.New(env.Config, client.Options{Scheme: Scheme()})
	if err != nil {
		return env, err
	}
	roles, err := InstallTierRoles(ctx, c, o.TierRolesDir)
	if err != nil {
		return env, err
	}
	tl.Stepf("tier ClusterRoles installed from %s: %s", relTo(o.Root, o.TierRolesDir), strings.Join(roles, ", "))

	select {
	case err = <-buildDone:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	if err != nil {
		return env, err
	}
	mgr, err := testcluster.StartManager(ctx, testcluster.ManagerOptions{Binary: binary, Kubeconfig: env.KubeconfigPath, LogPath: env.ManagerLog})
	if err != nil {
		return env, err
	}
	env.Manager = mgr
	tl.Stepf("manager running (pid %d): %s", mgr.Pid(), strings.Join(shortArgs(o.Root, mgr.Args), " "))
	return env, nil
}

// Stop stops the manager, then the control plane (removing its
// directory of kubeconfigs and certificates; Dir and its logs are kept).
// Safe to call twice.
func (e *Env) Stop() error {
	if e == nil {
		return nil
	}
	if e.Manager != nil {
		e.Manager.Stop()
	}
	var err error
	if e.Cluster != nil {
		err = e.Cluster.Stop()
	}
	if e.cpLog != nil {
		_ = e.cpLog.Close()
	}
	return err
}

func assetsDir() string {
	d, _ := testcluster.AssetsDir()
	if root, err := testcluster.RepoRoot(); err == nil {
		return relTo(root, d)
	}
	return d
}

// relTo shows path relative to root when it is inside it.
func relTo(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

func shortArgs(root string, args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			out[i] = k + "=" + relTo(root, v)
		} else {
			out[i] = relTo(root, a)
		}
	}
	return out
}

// lateWriter holds what is written until it is attached to a writer.
type lateWriter struct {
	mu  sync.Mutex
	buf []byte
	w   io.Writer
}

func (l *lateWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	return len(p), nil
}

func (l *lateWriter) attach(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = w.Write(l.buf)
	l.buf, l.w = nil, w
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
