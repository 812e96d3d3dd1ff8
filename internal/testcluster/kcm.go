package testcluster

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

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
	kcm, err := StartChild(cmd)
	if err != nil {
		return fmt.Errorf("testcluster: starting kube-controller-manager: %w", err)
	}
	c.kcm = kcm
	return c.waitControllerManager()
}

// waitControllerManager waits until the resource-quota controller has
// discovered the API (it must see our CRDs to count Subscriptions): a
// ResourceQuota gets its status computed.
func (c *Cluster) waitControllerManager() error {
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return err
	}
	if err := Poll(60*time.Second, func() error {
		select {
		case <-c.kcm.Done():
			return fmt.Errorf("kube-controller-manager exited early")
		default:
		}
		_, err := dc.ServerResourcesForGroupVersion("v1")
		return err
	}); err != nil {
		return fmt.Errorf("testcluster: waiting for kube-controller-manager: %w\n%s", err, c.Logs())
	}
	return nil
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
