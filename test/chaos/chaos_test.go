// Package chaos_test runs the real manager binary against the local control
// plane and breaks things under it: SIGKILLs at seeded random moments
// around a mass grant and a mass expiry, kube-apiserver killed and started
// again under a running manager, and two managers electing a leader. After
// each, it checks what docs/reliability.md promises: exactly the expected
// RoleBindings and quotas, consistent statuses, no namespace or
// Subscription lost, no transition announced twice.
//
// `make test` runs a short version; `make test-chaos` the full one
// (CHAOS_PARTNERS=300 CHAOS_KILLS=12). CHAOS_SEED fixes the kill moments.
package chaos_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var (
	cluster *testcluster.Cluster
	k8s     client.Client
	bin     string // the manager binary
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "chaos-manager-")
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
		bin, err = testcluster.BuildManagerInto(dir)
		return err
	})
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// The shared polling helpers: waits with a deadline, never sleeps.
var (
	eventually = testenv.Eventually
)

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane and the manager binary")
	}
}

// setting reads an integer from the environment, with a default for the
// short run in `make test`.
func setting(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startManager runs the manager binary with extra flags, logging to the
// test's temporary directory.
func startManager(t *testing.T, name string, args ...string) *testcluster.ManagerProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := testcluster.StartManager(ctx, testcluster.ManagerOptions{
		Binary: bin, Kubeconfig: cluster.KubeconfigPath,
		LogPath:   filepath.Join(t.TempDir(), name+".log"),
		ExtraArgs: args,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
