// Package adversarial_test attacks what the operator promises on the local
// control plane, as a hostile user of the cluster, or a crash, would:
// partners' users selling what their contract forbids while their access
// is being granted, moved or taken away; a namespace creator racing the
// operator's create; a Partner editor claiming a namespace left behind; an
// admin deleting the policy binding the operator relies on; bursts against
// Strict quotas while namespaces leave, with SIGKILLs of the manager
// binary mid-rebalance. Observers watch what the API server enforces while
// the attacks run.
//
// `make test` runs each scenario small. ADVERSARIAL_ROUNDS=20 is the full
// size of the Strict scenarios (ADVERSARIAL_SEED fixes the kill moments);
// ADVERSARIAL_PARTNERS and ADVERSARIAL_ATTACKERS size the others.
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

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
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
		bin, err = testcluster.BuildManagerInto(dir)
		return err
	})
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// The shared polling helpers: waits with a deadline, never sleeps.
var (
	eventually   = testenv.Eventually
	consistently = testenv.Consistently
)

func getPartner(t *testing.T, name string) *v1.Partner { return testenv.GetPartner(t, k8s, name) }

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

// binary runs the manager binary and can SIGKILL it, starting a new one
// at once, as a Deployment's restart would.
type binary struct {
	t     *testing.T
	cur   *testcluster.ManagerProcess
	n     int // managers started
	kills int
}

func startBinary(t *testing.T) *binary {
	m := &binary{t: t}
	m.start()
	return m
}

func (m *binary) start() {
	m.t.Helper()
	m.n++
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := testcluster.StartManager(ctx, testcluster.ManagerOptions{
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
func (m *binary) kill() {
	m.t.Helper()
	m.cur.Kill()
	m.kills++
	m.start()
}

// startManager runs the operator in-process (a fault or delay can be
// injected into its requests).
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
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
