// Command demo plays the operator's story end to end on a fresh machine:
// it builds the manager, starts a local control plane (etcd,
// kube-apiserver, kube-controller-manager from bin/k8s) with the CRDs, the
// admission policies and the tier ClusterRoles, runs the manager binary
// against it, and lets a distributor contract end within a minute while it
// narrates what happens. It exits 0 only if every check of the story
// holds. Everything it started is stopped on success, failure and Ctrl-C.
//
//	go run ./cmd/demo            # or: make demo
//	go run ./cmd/demo --keep     # or: make demo KEEP=1; explore with kubectl, Ctrl-C to stop
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/partnerops/entitlement-operator/internal/demo"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

func main() {
	keep := flag.Bool("keep", false, "leave the control plane and the manager running after the story, print how to reach them with kubectl, and stop everything on Ctrl-C")
	managerBin := flag.String("manager", "", "run this manager binary instead of building bin/manager")
	flag.Parse()
	// client-go and controller-runtime would log into the story; the
	// control plane's and the manager's logs are in files.
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())

	// Ctrl-C (or SIGTERM) ends the context: everything started is stopped
	// in order. A second one exits at once; the kernel then stops the
	// children (testcluster.Child).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	n := demo.NewNarrator(os.Stdout)
	n.Printf("entitlement-operator demo: the vendor ends its contract with the distributor Bytec and keeps\n" +
		"Magirus and LXPN. Partners listing another distributor fail over, the others are revoked,\n" +
		"on time, with nobody running a script.\n\n")
	dir, err := os.MkdirTemp("", "entitlement-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	res, err := play(ctx, n, dir, *managerBin, *keep)
	switch {
	case err != nil && ctx.Err() != nil:
		n.Printf("\ndemo: interrupted (%v) after %.1fs; nothing left running\n", context.Cause(ctx), n.Elapsed().Seconds())
		_ = os.RemoveAll(dir)
		os.Exit(130)
	case err != nil:
		n.Printf("\ndemo: FAILED: %v\n", err)
	case res.Passed():
		n.Printf("\ndemo: PASS: all %d checks hold (%.1fs)\n", len(res.Checks), n.Elapsed().Seconds())
		_ = os.RemoveAll(dir)
		return
	default:
		n.Printf("\ndemo: FAIL: not every check holds (%.1fs)\n", n.Elapsed().Seconds())
	}
	n.Printf("demo: logs kept in %s (control-plane.log, manager.log)\n", dir)
	os.Exit(1)
}

// play brings the control plane and the manager up, plays the story and,
// with keep, waits for Ctrl-C. It stops everything it started, the manager
// first, before it returns.
func play(ctx context.Context, n *demo.Narrator, dir, managerBin string, keep bool) (*demo.Result, error) {
	root, err := testcluster.RepoRoot()
	if err != nil {
		return nil, err
	}
	// Build while the control plane starts: on two cores the link and
	// etcd's start overlap well.
	built := make(chan error, 1)
	if managerBin == "" {
		managerBin = filepath.Join(root, "bin", "manager")
		n.Say("building the manager: go build -o bin/manager ./cmd/manager")
		go func() { built <- testcluster.BuildManager(ctx, root, managerBin) }()
	} else {
		built <- nil
	}
	n.Say("starting the control plane: etcd, kube-apiserver, kube-controller-manager")
	cpLog, err := os.Create(filepath.Join(dir, "control-plane.log"))
	if err != nil {
		return nil, err
	}
	defer cpLog.Close()
	cl, err := testcluster.Start(testcluster.Options{LogOutput: cpLog, TierRoles: true, OwnSignals: true})
	if err != nil {
		return nil, err
	}
	var mgr *testcluster.ManagerProcess
	defer func() {
		n.Say("stopping the manager and the control plane")
		if mgr != nil {
			mgr.Stop()
		}
		if err := cl.Stop(); err != nil {
			n.Say("stopping the control plane: %v", err)
		}
		n.Say("stopped: manager, kube-controller-manager, kube-apiserver, etcd")
	}()
	n.Say("control plane up: CRDs, admission policies and tier ClusterRoles (config/rbac/tiers) installed")
	if err := <-built; err != nil {
		return nil, err
	}
	mgr, err = testcluster.StartManager(ctx, testcluster.ManagerOptions{
		Binary: managerBin, Kubeconfig: cl.KubeconfigPath, LogPath: filepath.Join(dir, "manager.log")})
	if err != nil {
		return nil, err
	}
	shown := mgr.Args
	if rel, err := filepath.Rel(root, managerBin); err == nil && !strings.HasPrefix(rel, "..") {
		shown = append([]string{rel}, mgr.Args[1:]...)
	}
	n.Say("manager running (pid %d): %s", mgr.Pid(), strings.Join(shown, " "))

	// The narrator stops before the manager and the control plane do.
	story, endStory := context.WithCancel(ctx)
	defer endStory()
	res, err := demo.Run(story, cl.Config, n)
	if err != nil || !keep {
		return res, err
	}
	n.Printf("\nThe control plane and the manager keep running (the timeline goes on). In another terminal:\n\n"+
		"  export KUBECONFIG=%s\n  kubectl get entitlements\n  kubectl describe partner %s\n"+
		"  kubectl get events\n  kubectl get subscriptions -A\n\n"+
		"Manager log: %s\nPress Ctrl-C to stop everything.\n\n", cl.KubeconfigPath, demo.PartnerFailover, mgr.LogPath)
	<-ctx.Done()
	return res, nil
}
