package chaos_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// TestAPIServerRestart kills kube-apiserver under a running manager and
// starts it again. Without leader election the manager stays up and
// retries; with it, a manager that cannot renew its lease in time exits
// for its supervisor to restart (the Deployment's restartPolicy). Either
// way, it converges afterwards, and it logs the outage in a bounded number
// of lines.
func TestAPIServerRestart(t *testing.T) {
	needCluster(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"without leader election", nil},
		{"with leader election", []string{"--leader-elect", "--leader-election-namespace=default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "as-le"
			if tc.args == nil {
				prefix = "as-nole"
			}
			m := startManager(t, prefix, tc.args...)
			c := testenv.Contract(prefix+"-c", "LXPN", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(3, 1)...)
			before := testenv.Partner(prefix+"-before", v1.TierReady, "DE", []string{c.Name}, prefix+"-before")
			if err := k8s.Create(ctx(t), c); err != nil {
				t.Fatal(err)
			}
			if err := k8s.Create(ctx(t), before); err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "Ready before the restart", partnerReady(before.Name))

			// `make test-chaos` keeps it down longer than leader
			// election's renew deadline (10 s); the short run a blip.
			down, err := cluster.RestartAPIServer(ctx(t), time.Duration(setting("CHAOS_OUTAGE_SECONDS", 3))*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			// A manager that lost its lease exits within moments of the
			// API server's return at the latest.
			exited := false
			select {
			case <-m.Done():
				exited = true
			case <-time.After(3 * time.Second): // bounded "must not happen" window for the no-election case
			}
			if exited {
				// Its supervisor restarts it.
				m = startManager(t, prefix+"-restarted", tc.args...)
			}
			t.Logf("kube-apiserver down %.1fs; the manager %s", down.Seconds(), map[bool]string{true: "exited (restarted as its supervisor would)", false: "stayed up"}[exited])
			if tc.args == nil && exited {
				t.Errorf("without leader election the manager must ride out the outage, it exited: %v", m.Exited())
			}
			// kube-controller-manager has to reconnect too before any new
			// quota is counted; that is its recovery, not the operator's.
			kcmStart := time.Now()
			eventually(t, 3*time.Minute, "kube-controller-manager counting quotas again", kcmCounts(prefix))
			t.Logf("kube-controller-manager counted a new quota %.1fs after the API server was back", time.Since(kcmStart).Seconds())
			after := testenv.Partner(prefix+"-after", v1.TierReady, "DE", []string{c.Name}, prefix+"-after")
			eventually(t, 30*time.Second, "create after the restart", func() error { return k8s.Create(ctx(t), after) })
			start := time.Now()
			eventually(t, 60*time.Second, "converged after the restart", partnerReady(after.Name))
			t.Logf("a partner created after the restart was Ready %.1fs later", time.Since(start).Seconds())
			lines := errorLines(t, m)
			t.Logf("the manager logged %d error lines around the %.1fs outage", lines, down.Seconds())
		})
	}
}

func partnerReady(name string) func() error {
	return func() error {
		p := &v1.Partner{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, p); err != nil {
			return err
		}
		return ready(p)
	}
}

// kcmCounts creates a fresh quota in a probe namespace and reports whether
// kube-controller-manager has counted it.
func kcmCounts(prefix string) func() error {
	ns := prefix + "-kcm-probe"
	return func() error {
		bg := context.Background()
		if err := client.IgnoreAlreadyExists(k8s.Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})); err != nil {
			return err
		}
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "probe-"},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/configmaps": resource.MustParse("5")}}}
		if err := k8s.Create(bg, q); err != nil {
			return err
		}
		return testcluster.Poll(3*time.Second, func() error {
			got := &corev1.ResourceQuota{}
			if err := k8s.Get(bg, client.ObjectKeyFromObject(q), got); err != nil {
				return err
			}
			if _, ok := got.Status.Used["count/configmaps"]; !ok {
				return fmt.Errorf("quota %s not counted yet", q.Name)
			}
			return nil
		})
	}
}

// errorLines counts the manager's error log lines.
func errorLines(t *testing.T, m *testcluster.ManagerProcess) int {
	t.Helper()
	raw, err := os.ReadFile(m.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(raw), "\n") {
		// zap's JSON error lines, and client-go's klog ones (E1201 …).
		if strings.Contains(l, `"level":"error"`) || (len(l) > 5 && l[0] == 'E' && l[1] >= '0' && l[1] <= '9') {
			n++
		}
	}
	return n
}
