// Command demo plays the operator's story end to end on a fresh machine:
// it builds the manager, starts a local control plane (etcd,
// kube-apiserver, kube-controller-manager from bin/k8s), installs the CRDs
// and the tier ClusterRoles, runs the manager binary against it, and lets a
// distributor contract end within a minute while it narrates what happens.
// It prints the tables `kubectl get` would, checks the outcome and exits 0
// only if every check holds. Everything it started is stopped on success,
// failure and Ctrl-C.
//
//	go run ./cmd/demo            # or: make demo
//	go run ./cmd/demo --keep     # or: make demo KEEP=1; explore with kubectl, Ctrl-C to stop
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/partnerops/entitlement-operator/internal/demo"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// interrupted is the cause of the demo's context on SIGINT/SIGTERM.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return "interrupted by " + i.sig.String() }

func main() { os.Exit(run()) }

func run() int {
	keep := flag.Bool("keep", false, "leave the control plane and the manager running after the story, print how to reach them with kubectl, and stop everything on Ctrl-C")
	managerBin := flag.String("manager", "", "run this manager binary instead of building bin/manager with go build")
	tierRoles := flag.String("tier-roles", "", "directory of the tier ClusterRoles (default config/rbac/tiers; a role missing or unusable there is an error)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: demo [--keep] [--manager PATH] [--tier-roles DIR]\n\n"+
			"Plays the entitlement-operator story on a local control plane and checks it.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	// envtest and client-go log through controller-runtime and klog; the
	// demo's output is its timeline (the logs are in files).
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())

	t0 := time.Now()
	tl := demo.NewTimeline(os.Stdout, t0, demo.ColorFor(os.Stdout))
	tl.Printf("entitlement-operator demo: the vendor ends its contract with the distributor Bytec and keeps\n" +
		"Magirus and LXPN. Partners listing another distributor fail over, the others are revoked,\n" +
		"on time, with nobody running a script.\n\n")

	root, err := testcluster.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	if *managerBin != "" {
		if *managerBin, err = filepath.Abs(*managerBin); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		tl.Line(demo.Warning, "demo", fmt.Sprintf("%s: stopping everything the demo started (again to exit at once)", signame(s)))
		cancel(interrupted{s})
		s = <-sigs
		// The kernel stops the children (Pdeathsig) when this process is gone.
		fmt.Fprintf(os.Stderr, "demo: %s again: exiting now\n", signame(s))
		os.Exit(130)
	}()

	env, err := demo.Up(ctx, demo.EnvOptions{
		Root: root, ManagerBinary: *managerBin, TierRolesDir: *tierRoles, Timeline: tl,
		OnClusterStarted: func(*testcluster.Cluster) {
			// testcluster stops the control plane and exits on a signal by
			// itself; from here on the demo does it, in order: the manager
			// first, then the control plane.
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		},
	})
	if err != nil {
		return finish(ctx, tl, env, nil, err, false)
	}
	go func() {
		select {
		case <-env.Manager.Done():
			// Also when finish stops it: the result is decided by then.
			cancel(env.Manager.Exited())
		case <-ctx.Done():
		}
	}()

	// The timeline narrates until storyCtx ends: after the story, or on
	// Ctrl-C in --keep mode.
	storyCtx, stopStory := context.WithCancel(ctx)
	defer stopStory()
	res, err := demo.Run(storyCtx, env.Config, demo.Options{Timeline: tl})
	if err == nil && *keep {
		summary(tl, res, t0)
		tl.Printf("\nThe control plane and the manager keep running (the timeline goes on). In another terminal:\n\n"+
			"  export KUBECONFIG=%s\n"+
			"  kubectl get entitlements\n"+
			"  kubectl get partners -o wide\n"+
			"  kubectl describe partner %s\n"+
			"  kubectl get events\n"+
			"  kubectl get subscriptions -A\n\n"+
			"Manager log: %s\n"+
			"Press Ctrl-C to stop everything.\n\n", env.KubeconfigPath, demo.PartnerFailover, env.ManagerLog)
		<-ctx.Done()
		if _, ok := context.Cause(ctx).(interrupted); ok {
			// Ctrl-C is how --keep ends: the exit code is the story's.
			return finish(ctx, tl, env, res, nil, true)
		}
		err = context.Cause(ctx)
	}
	stopStory()
	return finish(ctx, tl, env, res, err, *keep)
}

// finish stops everything, reports, and returns the exit code: 0 when every
// check held, 130 when interrupted (outside --keep), 1 otherwise. Logs are
// kept on failure.
func finish(ctx context.Context, tl *demo.Timeline, env *demo.Env, res *demo.Result, err error, summarized bool) int {
	var intr interrupted
	if err != nil && errors.As(context.Cause(ctx), &intr) {
		err = intr
	}
	var dir string
	if env != nil {
		dir = env.Dir
		if env.Cluster != nil {
			tl.Stepf("stopping the manager and the control plane")
			if stopErr := env.Stop(); stopErr != nil {
				tl.Warnf("stopping: %v", stopErr)
			}
			tl.Stepf("stopped: manager, kube-controller-manager, kube-apiserver, etcd")
		}
	}
	removeDir := func() {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	code := 0
	switch {
	case errors.As(err, &intr):
		tl.Printf("\ndemo: interrupted (%s) after %.1fs; nothing left running\n", signame(intr.sig), time.Since(tl.T0()).Seconds())
		removeDir()
		return 130
	case err != nil:
		tl.Printf("\ndemo: FAILED: %v\n", err)
		code = 1
	case !res.Passed():
		code = 1
	}
	if !summarized && err == nil {
		summary(tl, res, tl.T0())
	}
	if code != 0 {
		if dir != "" {
			tl.Printf("demo: logs kept in %s (control-plane.log, manager.log)\n", dir)
		}
		return code
	}
	removeDir()
	return 0
}

func summary(tl *demo.Timeline, res *demo.Result, t0 time.Time) {
	if res.Passed() {
		tl.Printf("\ndemo: PASS: all %d checks hold (%.1fs)\n", len(res.Checks), time.Since(t0).Seconds())
		return
	}
	tl.Printf("\ndemo: FAIL: %d of %d checks do not hold (%.1fs)\n", len(res.Failed()), len(res.Checks), time.Since(t0).Seconds())
}

func signame(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}
