// Package adversarial_test attacks the operator's promises on the local
// control plane the way a partner's user, or a crash, would: the real
// manager binary runs against etcd, kube-apiserver and a stock
// kube-controller-manager, the attacks come from outside it, and an
// observer watches what the API server enforces while they run.
//
// `make test` runs each scenario small (ADVERSARIAL_ROUNDS=3, one SIGKILL
// per round of the crash scenario). ADVERSARIAL_ROUNDS=20 is the full
// size the issue asks for; ADVERSARIAL_SEED fixes the kill moments.
package adversarial_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/partnerops/entitlement-operator/internal/demo"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var (
	cluster *testcluster.Cluster
	k8s     client.Client
	kube    kubernetes.Interface // for watches
	bin     string               // the manager binary
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "adversarial-manager-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := testcluster.RunTests(m, !testing.Short(), testcluster.Options{}, func(c *testcluster.Cluster) error {
		cluster = c
		var err error
		if k8s, err = testenv.AdminClient(c.Config); err != nil {
			return err
		}
		if kube, err = kubernetes.NewForConfig(c.Config); err != nil {
			return err
		}
		bin, err = demo.BuildManagerInto(dir)
		return err
	})
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane and the manager binary")
	}
}

// setting reads a positive integer from the environment, with a default
// for the short run in `make test`.
func setting(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// manager runs the manager binary and can SIGKILL it, starting a new one
// at once, as a Deployment's restart would.
type manager struct {
	t     *testing.T
	cur   *demo.Process
	n     int // managers started
	kills int
}

func startManager(t *testing.T) *manager {
	m := &manager{t: t}
	m.start()
	return m
}

func (m *manager) start() {
	m.t.Helper()
	m.n++
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := demo.StartManager(ctx, demo.ManagerOptions{
		Binary: bin, Kubeconfig: cluster.KubeconfigPath,
		LogPath: filepath.Join(m.t.TempDir(), fmt.Sprintf("manager-%d.log", m.n)),
	})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(p.Stop)
	m.cur = p
}

// kill SIGKILLs the running manager (no graceful shutdown: whatever it was
// writing stops half-way) and starts the next one.
func (m *manager) kill() {
	m.t.Helper()
	m.cur.Kill()
	m.kills++
	m.start()
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	if err := testcluster.Poll(timeout, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return c
}
