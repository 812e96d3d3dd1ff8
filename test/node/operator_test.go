package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	systemNS   = "entitlement-system"
	deployment = "entitlement-operator-controller-manager"
	leaseName  = "entitlement-operator.partnerops.io"
	metricsSvc = "entitlement-operator-controller-manager-metrics-service"
)

// waitAvailable waits until the manager Deployment has 2 updated, ready
// and available replicas, and returns how long that took.
func waitAvailable(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	return eventually(t, limit, "2/2 manager Pods Ready", func() error {
		var d struct {
			Metadata struct{ Generation int64 }
			Status   struct {
				ObservedGeneration                                          int64
				Replicas, ReadyReplicas, AvailableReplicas, UpdatedReplicas int64
			}
		}
		if err := getJSON(t, &d, "-n", systemNS, "deployment", deployment); err != nil {
			return err
		}
		s := d.Status
		if s.ObservedGeneration < d.Metadata.Generation || s.UpdatedReplicas != 2 || s.ReadyReplicas != 2 || s.AvailableReplicas != 2 || s.Replicas != 2 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
}

// leader is the Pod holding the leader-election Lease.
func leader(t *testing.T) (string, error) {
	t.Helper()
	var l struct {
		Spec struct{ HolderIdentity string }
	}
	if err := getJSON(t, &l, "-n", systemNS, "lease", leaseName); err != nil {
		return "", err
	}
	pod, _, _ := strings.Cut(l.Spec.HolderIdentity, "_")
	if pod == "" {
		return "", fmt.Errorf("no holder")
	}
	return pod, nil
}

func managerPods(t *testing.T) []string {
	t.Helper()
	out := kubectl(t, "-n", systemNS, "get", "pods", "-l", "control-plane=controller-manager",
		"--field-selector", "status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}")
	return strings.Fields(out)
}

// contract applies a DistributorContract covering the Ready tier, ending
// at ends (zero: open-ended).
func contract(t *testing.T, name string, ends time.Time) {
	t.Helper()
	endsAt := ""
	if !ends.IsZero() {
		endsAt = fmt.Sprintf("  endsAt: %q\n", ends.UTC().Format(time.RFC3339))
	}
	apply(t, fmt.Sprintf(`apiVersion: entitlements.partnerops.io/v1alpha1
kind: DistributorContract
metadata: {name: %s}
spec:
  distributor: Node Test
  region: DE
  startsAt: %q
%s  noticePeriod: 1s
  gracePeriod: 0s
  entitlements:
  - {tier: Ready, subscriptions: 5, maxNamespaces: 1}
`, name, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), endsAt))
}

// partner applies a Ready partner supplied by contracts, with one
// namespace named after it, and waits until it is Entitled there.
func partner(t *testing.T, name string, contracts ...string) time.Duration {
	t.Helper()
	apply(t, fmt.Sprintf(`apiVersion: entitlements.partnerops.io/v1alpha1
kind: Partner
metadata: {name: %[1]s}
spec:
  displayName: %[1]s
  tier: Ready
  region: DE
  contracts: [%[2]s]
  namespaces: [%[1]s-prod]
  access:
  - {kind: Group, name: %[1]s-admins}
`, name, strings.Join(contracts, ", ")))
	d := eventually(t, 2*time.Minute, "Partner "+name+" Entitled", func() error {
		return partnerPhase(t, name, "Entitled", "Granted")
	})
	// Granted means usable: a Subscription is admitted there.
	subscription(t, name+"-prod", "first")
	return d
}

func partnerPhase(t *testing.T, name, phase, nsState string) error {
	var p struct {
		Status struct {
			Phase      string
			Namespaces []struct{ Name, State string }
		}
	}
	if err := getJSON(t, &p, "partner", name); err != nil {
		return err
	}
	if p.Status.Phase != phase {
		return fmt.Errorf("phase %q, want %s", p.Status.Phase, phase)
	}
	for _, n := range p.Status.Namespaces {
		if n.State != nsState {
			return fmt.Errorf("namespace %s %s, want %s", n.Name, n.State, nsState)
		}
	}
	return nil
}

func subscription(t *testing.T, ns, name string) {
	t.Helper()
	apply(t, fmt.Sprintf(`apiVersion: entitlements.partnerops.io/v1alpha1
kind: Subscription
metadata: {name: %s, namespace: %s}
spec: {product: Node Test Suite, customer: Node Test GmbH, units: 1}
`, name, ns))
}

// waitRevoked waits for the partner's revocation after its contract's
// end and returns how late it was.
func waitRevoked(t *testing.T, name string, ends time.Time) time.Duration {
	t.Helper()
	until := time.Until(ends) + 30*time.Second
	eventually(t, until, "Partner "+name+" Revoked", func() error {
		return partnerPhase(t, name, "Revoked", "Revoked")
	})
	lag := time.Since(ends)
	if lag > 10*time.Second {
		t.Errorf("Partner %s revoked %.1fs after its contract ended", name, lag.Seconds())
	}
	// Revoked keeps the namespace and what is in it; only the access goes.
	kubectl(t, "get", "namespace", name+"-prod")
	kubectl(t, "-n", name+"-prod", "get", "subscription", "first")
	if out, err := try("", "kubectl", "-n", name+"-prod", "get", "rolebinding", "partner-access"); err == nil {
		t.Errorf("RoleBinding partner-access still there after the revocation: %s", out)
	}
	return lag
}

// checkManagerProcesses: the manager runs as 65532 on a read-only root, as
// the kernel sees it (the test runs as root in the node's PID namespace).
func checkManagerProcesses(t *testing.T) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	found := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(cmd), "\x00")
		if args[0] != "/manager" || !strings.Contains(string(cmd), "--leader-elect") {
			continue
		}
		found++
		status, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
				for _, id := range f[1:] {
					if id != "65532" {
						t.Errorf("manager %d: %s", pid, l)
						break
					}
				}
			}
		}
		mounts, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
		rootRO := false
		for _, l := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(l); len(f) > 5 && f[4] == "/" {
				rootRO = strings.HasPrefix(f[5], "ro,") || f[5] == "ro"
			}
		}
		if !rootRO {
			t.Errorf("manager %d: the root filesystem is not read-only", pid)
		}
	}
	if found != 2 {
		t.Errorf("found %d manager processes, want 2", found)
	}
}

// cleanup deletes the partners (while the operator still runs, so that it
// removes its finalizer), their namespaces and the contracts.
func cleanup(t *testing.T, partners, contracts []string) {
	t.Helper()
	for _, p := range partners {
		kubectl(t, "delete", "partner", p, "--wait=true", "--timeout=2m")
		kubectl(t, "delete", "namespace", p+"-prod", "--wait=false", "--ignore-not-found")
	}
	for _, c := range contracts {
		kubectl(t, "delete", "distributorcontract", c, "--wait=true", "--timeout=1m")
	}
}

// uninstall removes what manifest installed and waits for it.
func uninstall(t *testing.T, args ...string) {
	t.Helper()
	kubectl(t, append([]string{"delete", "--ignore-not-found", "--wait=true", "--timeout=3m"}, args...)...)
	eventually(t, 3*time.Minute, "no Pods left in "+systemNS, func() error {
		out, err := try("", "kubectl", "get", "namespace", systemNS, "-o", "name")
		if err == nil && out != "" {
			return fmt.Errorf("namespace %s still there", systemNS)
		}
		return nil
	})
}
