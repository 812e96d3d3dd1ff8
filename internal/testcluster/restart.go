package testcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
)

// RestartAPIServer kills kube-apiserver (SIGKILL: a crash, no graceful
// shutdown) and starts it again with the same command line, so the same
// port, certificates and etcd: clients keep their kubeconfigs. It returns
// once the new one answers /readyz, and how long it was down. downFor
// keeps it down at least that long (an outage rather than a blip).
func (c *Cluster) RestartAPIServer(ctx context.Context, downFor time.Duration) (time.Duration, error) {
	pid, args, err := c.apiServerProcess()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("killing kube-apiserver (pid %d): %w", pid, err)
	}
	if err := Poll(30*time.Second, func() error {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(st), ") Z ") {
				return fmt.Errorf("kube-apiserver (pid %d) still running", pid)
			}
		}
		return nil
	}); err != nil {
		return 0, err
	}
	select {
	case <-time.After(downFor - time.Since(start)):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout = prefixed(c.out, "kube-apiserver")
	cmd.Stderr = cmd.Stdout
	rp, err := StartChild(cmd)
	if err != nil {
		return 0, fmt.Errorf("starting kube-apiserver again: %w", err)
	}
	c.restarted = append(c.restarted, rp)
	for i, p := range c.planePIDs {
		if p == pid {
			c.planePIDs[i] = rp.Pid()
			c.planeNames[rp.Pid()] = "kube-apiserver"
		}
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return 0, err
	}
	err = PollContext(ctx, 60*time.Second, func() error {
		select {
		case <-rp.Done():
			return fmt.Errorf("the restarted kube-apiserver exited: %v", rp.Err())
		default:
		}
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return err
		}
		if string(body) != "ok" {
			return fmt.Errorf("/readyz: %s", body)
		}
		return nil
	})
	return time.Since(start), err
}

func (c *Cluster) apiServerProcess() (int, []string, error) {
	for _, pid := range c.planePIDs {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) != "kube-apiserver" {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return 0, nil, err
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		return pid, args, nil
	}
	return 0, nil, fmt.Errorf("no kube-apiserver process of this cluster")
}

// stopRestarted stops the kube-apiservers RestartAPIServer started.
func (c *Cluster) stopRestarted() {
	for _, rp := range c.restarted {
		rp.Stop(stopGrace(c.opts.StopGrace))
	}
}
