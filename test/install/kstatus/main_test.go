package kstatus_test

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var (
	cluster *testcluster.Cluster
	k8s     client.Client
	longAgo = time.Now().Add(-24 * time.Hour)
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testcluster.RunTests(m, !testing.Short(), testcluster.Options{}, func(c *testcluster.Cluster) error {
		cluster = c
		var err error
		k8s, err = testenv.AdminClient(c.Config)
		return err
	}))
}

// The shared polling helpers: waits with a deadline, never sleeps.
var (
	eventually = testenv.Eventually
)

func getPartner(t *testing.T, name string) *v1.Partner { return testenv.GetPartner(t, k8s, name) }

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane")
	}
}

func openContract(name string, ents ...v1.TierEntitlement) *v1.DistributorContract {
	return testenv.Contract(name, "Magirus", "DE", longAgo, time.Time{}, 0, 0, ents...)
}

func startManager(t *testing.T, o testenv.ManagerOptions) {
	t.Helper()
	m, err := testenv.StartManager(cluster.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, o := range objs {
		if err := k8s.Create(c, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}
