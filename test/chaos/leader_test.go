package chaos_test

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// leaseDuration is controller-runtime's default LeaseDuration, which the
// manager uses.
const leaseDuration = 15 * time.Second

// TestLeaderElectionHandover runs two managers with leader election: only
// the leader writes; when it dies without releasing its lease (a crash),
// the other takes over within the lease duration plus 5 s and converges a
// partner created meanwhile; the dead one writes nothing more.
func TestLeaderElectionHandover(t *testing.T) {
	needCluster(t)
	a, err := testenv.StartManager(cluster.Config, testenv.ManagerOptions{LeaderElectionNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	select {
	case <-a.Elected():
	case <-time.After(leaseDuration + 5*time.Second):
		t.Fatal("the first manager was not elected")
	}
	b, err := testenv.StartManager(cluster.Config, testenv.ManagerOptions{LeaderElectionNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)

	c := testenv.Contract("le-c", "Magirus", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(3, 1)...)
	first := testenv.Partner("le-first", v1.TierReady, "DE", []string{c.Name}, "le-first")
	if err := k8s.Create(ctx(t), c); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx(t), first); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the leader converges the first partner", partnerReady(first.Name))
	select {
	case <-b.Elected():
		t.Fatal("both managers elected")
	default:
	}
	if w := b.Writes.Load() - b.LeaseWrites.Load(); w != 0 {
		t.Errorf("the standby wrote %d times (not counting its lease attempts): %v", w, b.WriteLog())
	}

	killedAt := time.Now()
	a.Stop() // no lease release: as if it crashed
	aWrites, aLease, aLog := a.Writes.Load(), a.LeaseWrites.Load(), len(a.WriteLog())
	second := testenv.Partner("le-second", v1.TierReady, "DE", []string{c.Name}, "le-second")
	if err := k8s.Create(ctx(t), second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Elected():
	case <-time.After(leaseDuration + 5*time.Second):
		t.Fatalf("the standby was not elected within %s of the leader's death", leaseDuration+5*time.Second)
	}
	handover := time.Since(killedAt)
	eventually(t, 30*time.Second, "the new leader converges the partner created meanwhile", partnerReady(second.Name))
	t.Logf("handover %.1fs after the leader died (lease %s); second partner Ready %.1fs after the death", handover.Seconds(), leaseDuration, time.Since(killedAt).Seconds())
	// Leader election's own "stopped leading" event is bookkeeping, not a
	// reconcile's write; so is a lease renewal its elector had under way
	// when the in-process stop returned (a crashed process makes none; CI
	// once saw one, not logged, and failed this check with an empty list).
	var after []string
	for _, w := range a.WriteLog()[aLog:] {
		if !strings.HasPrefix(w, "POST /api/v1/namespaces/default/events") {
			after = append(after, w)
		}
	}
	nonLease := (a.Writes.Load() - aWrites) - (a.LeaseWrites.Load() - aLease)
	if len(after) != 0 || nonLease > int64(len(a.WriteLog())-aLog) {
		t.Errorf("the dead leader wrote after it was stopped: %v (%d writes other than its lease, %d logged)", after, nonLease, len(a.WriteLog())-aLog)
	}
}
