// Package adversarial_test attacks what the operator promises, as a
// hostile user of the cluster would: partners' users selling what their
// contract forbids while their access is being granted, moved or taken
// away; a namespace creator racing the operator's create; a Partner editor
// claiming a namespace left behind; an admin deleting the policy binding
// the operator relies on. Small by default (make test); ADV_PARTNERS and
// ADV_ATTACKERS size it up.
package adversarial_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var (
	cluster *testcluster.Cluster
	k8s     client.Client
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

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane")
	}
}

func setting(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func startManager(t *testing.T, o testenv.ManagerOptions) *testenv.Manager {
	t.Helper()
	m, err := testenv.StartManager(cluster.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8s.Create(ctx(t), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// as is a client acting as user, a member of groups.
func as(t *testing.T, user string, groups ...string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: after %s: %v", what, timeout, err)
}

// consistently polls f for the whole duration; it must hold every time.
func consistently(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getPartner(t *testing.T, name string) *v1.Partner {
	t.Helper()
	p := &v1.Partner{}
	if err := k8s.Get(ctx(t), client.ObjectKey{Name: name}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func nsState(p *v1.Partner, ns string) (v1.NamespaceStatus, bool) {
	for _, n := range p.Status.Namespaces {
		if n.Name == ns {
			return n, true
		}
	}
	return v1.NamespaceStatus{}, false
}

// refused reports whether the API server refused a request (a policy's
// denial, RBAC or quota), as opposed to admitting it or failing otherwise.
func refused(err error) bool { return apierrors.IsForbidden(err) || apierrors.IsInvalid(err) }

// notFound checks that an object is absent.
func notFound(obj client.Object, ns, name string) func() error {
	return func() error {
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
		switch {
		case err == nil:
			return fmt.Errorf("%T %s/%s exists", obj, ns, name)
		case apierrors.IsNotFound(err):
			return nil
		}
		return err
	}
}
