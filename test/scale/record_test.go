package scale

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// The bare client with the record: the bare client's writes plus what the
// outcome the benchmark times is made of — a Partner whose status says so.
// The bare client writes only the namespaces' children, so its
// ratio prices every Partner write as overhead, though the benchmark's
// clock stops only when each Partner's status shows the outcome. This
// second baseline writes the minimum that outcome takes: the user's
// Partner create and one status write (PUT, with the namespace's UID)
// per partner at the grant; one status write per partner at the mass
// expiry, besides the revoked half's RoleBinding delete and quota patch.
//
// Its Partners are of a copy of the Partner CRD in another group, same
// schema and CEL rules, so that the manager, which runs in the same
// cluster, does not reconcile them. Three differences from the
// operator's run, all in the bare client's favour: no watcher receives
// its writes (the manager's informer and the benchmark's watch receive
// the operator's), its create carries the finalizer itself instead of
// through the finalizer policy's mutation, and it runs before the
// manager starts, so the manager's CPU does not compete with it.

var recordGVK = schema.GroupVersionKind{Group: "bench.partnerops.io", Version: v1.GroupVersion.Version, Kind: "Partner"}

// installRecordCRD installs the copy of the Partner CRD and waits until
// the API server serves it.
func (s *scaleRun) installRecordCRD() {
	root, err := testcluster.RepoRoot()
	s.must(err)
	data, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", v1.GroupVersion.Group+"_partners.yaml"))
	s.must(err)
	crd := &apiextensionsv1.CustomResourceDefinition{}
	s.must(yaml.UnmarshalStrict(data, crd))
	crd.Name = "partners." + recordGVK.Group
	crd.Spec.Group = recordGVK.Group
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
	s.must(err)
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion("apiextensions.k8s.io/v1")
	u.SetKind("CustomResourceDefinition")
	s.must(k8s.Create(s.ctx, u))
	gvr := recordGVK.GroupVersion().WithResource("partners")
	s.must(testcluster.PollEvery(200*time.Millisecond, time.Minute, func() error {
		return cluster.CRDEstablished(s.ctx, gvr)
	}))
	// Warm up, outside the clock: the API server builds a new CRD's
	// handler (schema, CEL programs) and the client learns its mapping on
	// the first request, where the real Partner CRD was warmed by the
	// cluster's start (testcluster's finalizer-policy probe).
	attempt := 0
	s.must(testcluster.PollEvery(200*time.Millisecond, time.Minute, func() error {
		attempt++
		warm := recordPartner(fmt.Sprintf("record-warm-up-%d", attempt), []string{"warm"}, nil, "")
		warm.SetFinalizers(nil)
		if err := k8s.Create(s.ctx, warm); err != nil {
			return err
		}
		st := costStatus(warm.GetName(), 0, true)
		if err := k8s.Status().Update(s.ctx, recordPartner(warm.GetName(), []string{"warm"}, &st, warm.GetResourceVersion())); err != nil {
			return err
		}
		return k8s.Delete(s.ctx, warm)
	}))
}

// recordPartner is the bare client's Partner: the operator's shape in the
// copy's group.
func recordPartner(name string, contracts []string, status *v1.PartnerStatus, rv string) *unstructured.Unstructured {
	p := testenv.Partner(name, v1.TierReady, "DE", contracts, name)
	p.Finalizers = []string{v1.Finalizer}
	p.ResourceVersion = rv
	if status != nil {
		p.Status = *status
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	if err != nil {
		panic(err) // a typed Partner always converts
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetGroupVersionKind(recordGVK)
	return u
}

// recordGrant is the bare client's grant with the record: per partner the
// user's Partner create, the namespace, RoleBinding and quota creates of
// baselineGrant, and one status write saying Entitled with the
// namespace's UID. It returns how long that took and each Partner's
// resourceVersion, for the expiry's writes.
func (s *scaleRun) recordGrant(prefix string) (time.Duration, []string) {
	rvs := make([]string, s.n)
	start := time.Now()
	s.must(parallel(s.n, workers, func(i int) error {
		name := fmt.Sprintf("%s-%d", prefix, i)
		// The create's response carries the resourceVersion the status
		// write locks on, as the operator's write locks on its cache's.
		created := recordPartner(name, []string{s.first, s.second}, nil, "")
		if err := k8s.Create(s.ctx, created); err != nil {
			return err
		}
		ns, err := s.bareChildren(prefix, name)
		if err != nil {
			return err
		}
		st := costStatus(name, 0, true)
		st.Namespaces[0].UID = ns.UID
		u := recordPartner(name, []string{s.first, s.second}, &st, created.GetResourceVersion())
		if err := k8s.Status().Update(s.ctx, u); err != nil {
			return err
		}
		rvs[i] = u.GetResourceVersion()
		return nil
	}))
	return time.Since(start), rvs
}

// recordExpiry is the bare client's mass expiry with the record: the
// revoked (odd) half's RoleBinding delete and quota patch, as
// baselineExpiry, then every partner's status write — failed over for the
// even half, revoked for the odd.
func (s *scaleRun) recordExpiry(prefix string, rvs []string) time.Duration {
	start := time.Now()
	s.must(parallel(s.n, workers, func(i int) error {
		name := fmt.Sprintf("%s-%d", prefix, i)
		revoked := i%2 == 1
		if revoked {
			if err := s.bareRevoke(name); err != nil {
				return err
			}
		}
		st := costStatus(name, 1, !revoked)
		if !revoked {
			st.Contract, st.Next = s.second, nil
			st.History = append([]v1.HistoryEntry{{Time: metav1.Now(), Outcome: v1.HistoryFailedOver, Contract: s.second, PreviousContract: s.first,
				Message: "supplied by DistributorContract " + s.second + " after " + s.first + " ended"}}, st.History...)
		}
		return k8s.Status().Update(s.ctx, recordPartner(name, []string{s.first, s.second}, &st, rvs[i]))
	}))
	return time.Since(start)
}
