// Package kstatus_test checks what Flux and Argo CD read from the operator's
// objects: kstatus (sigs.k8s.io/cli-utils) computed on real status written by
// the manager on the local control plane. It lives in the test/install
// module so that cli-utils (and the kubectl it pulls) stay out of the
// operator's own module graph.
package kstatus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// kstatusOf reads an object as Flux and Argo CD's kstatus would.
func kstatusOf(kind, name string) (status.Status, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: v1.GroupVersion.Group, Version: v1.GroupVersion.Version, Kind: kind})
	if err := k8s.Get(context.Background(), types.NamespacedName{Name: name}, u); err != nil {
		return "", err
	}
	res, err := status.Compute(u)
	if err != nil {
		return "", err
	}
	return res.Status, nil
}

func wantKstatus(kind, name string, want status.Status) func() error {
	return func() error {
		got, err := kstatusOf(kind, name)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("kstatus of %s %s is %s, want %s", kind, name, got, want)
		}
		return nil
	}
}

// TestKstatus: what GitOps tools see. Before the operator reconciled,
// InProgress; after, Current for an entitled partner, a revoked partner and
// an active contract, and Failed for a Stalled partner.
func TestKstatus(t *testing.T) {
	needCluster(t)
	active := openContract("ks-active", testenv.Tier(v1.TierReady, 2, 1))
	expired := testenv.Contract("ks-expired", "Bytec", "DE", longAgo, time.Now().Add(-time.Hour), 0, 0, testenv.Tier(v1.TierReady, 2, 1))
	badRole := testenv.Tier(v1.TierReady, 2, 1)
	badRole.ClusterRole = "cluster-admin"
	stalling := openContract("ks-badrole", badRole)
	entitled := testenv.Partner("ks-entitled", v1.TierReady, "DE", []string{active.Name}, "ks-entitled")
	revoked := testenv.Partner("ks-revoked", v1.TierReady, "DE", []string{expired.Name}, "ks-revoked")
	stalled := testenv.Partner("ks-stalled", v1.TierReady, "DE", []string{stalling.Name}, "ks-stalled")
	create(t, active, expired, stalling, entitled, revoked, stalled)

	// No manager runs yet: nothing has been observed.
	for _, o := range []struct{ kind, name string }{{"DistributorContract", active.Name}, {"Partner", entitled.Name}, {"Partner", stalled.Name}} {
		if err := wantKstatus(o.kind, o.name, status.InProgressStatus)(); err != nil {
			t.Errorf("before reconcile: %v", err)
		}
	}

	startManager(t, testenv.ManagerOptions{})
	eventually(t, 15*time.Second, "active contract Current", wantKstatus("DistributorContract", active.Name, status.CurrentStatus))
	eventually(t, 15*time.Second, "entitled partner Current", wantKstatus("Partner", entitled.Name, status.CurrentStatus))
	eventually(t, 15*time.Second, "revoked partner Current", wantKstatus("Partner", revoked.Name, status.CurrentStatus))
	eventually(t, 15*time.Second, "stalled partner Failed", wantKstatus("Partner", stalled.Name, status.FailedStatus))
	if p := getPartner(t, revoked.Name); p.Status.Phase != v1.PartnerRevoked {
		t.Errorf("revoked partner phase %s", p.Status.Phase)
	}
}
