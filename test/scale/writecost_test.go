package scale

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// BenchmarkWriteCost measures what one write of each kind costs the
// control plane: n writes by 8 workers, wall time and the CPU of
// kube-apiserver and etcd per write. It is the floor under the month-end
// figures: a transition is a handful of these, and at a mass expiry the
// two cores are saturated, so the time is the sum of their costs.
func BenchmarkWriteCost(b *testing.B) {
	if strings.Contains(os.Getenv("SCALE_SKIP"), "writecost") {
		b.Skip("SCALE_SKIP has writecost")
	}
	n := setting("SCALE_WRITECOST_N", 1000)
	s := newScaleRun(b, n)
	prefix := fmt.Sprintf("wc%d", time.Now().Unix()%100000)
	ns := func(i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
	// apiCPU is kube-apiserver's and etcd's CPU per partner (ms) of what
	// do does.
	apiCPU := func(do func()) float64 {
		cpu := cpuTimes()
		do()
		after := cpuTimes()
		return 1000 * (after["kube-apiserver"] - cpu["kube-apiserver"] + after["etcd"] - cpu["etcd"]) / float64(n)
	}
	// The bare client's grant, as BenchmarkScale runs and times it: its
	// three creates. kube-controller-manager then counts each quota, at
	// its own client's pace (about 20 a second); that recount lands in
	// whichever clock is running, a constant background, and is waited
	// out here so that it stays out of the costs below.
	bareGrant := apiCPU(func() { s.baselineGrant(prefix) })
	s.quotasCounted(prefix)
	s.must(parallel(n, workers, func(i int) error {
		return k8s.Create(s.ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns(i), Name: "payload"},
			Data:       map[string]string{"payload": strings.Repeat("x", 1500)},
		})
	}))
	// What the operator's grant adds to the bare client's writes: the
	// user's Partner (the benchmark's clock includes its create), the
	// grant's event, and two status writes (measured below).
	partnerCreate := apiCPU(func() {
		s.must(parallel(n, workers, func(i int) error {
			return k8s.Create(s.ctx, testenv.Partner(ns(i), v1.TierReady, "DE", []string{"wc-first", "wc-second"}, ns(i)))
		}))
	})
	s.must(parallel(n, workers, func(i int) error {
		p := &v1.Partner{}
		if err := k8s.Get(s.ctx, client.ObjectKey{Name: ns(i)}, p); err != nil {
			return err
		}
		p.Status = costStatus(ns(i), 0, true)
		return k8s.Status().Update(s.ctx, p)
	}))
	eventCreate := apiCPU(func() {
		s.must(parallel(n, workers, func(i int) error {
			return k8s.Create(s.ctx, &eventsv1.Event{
				ObjectMeta:          metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: ns(i) + ".granted"},
				EventTime:           metav1.NowMicro(),
				ReportingController: "writecost", ReportingInstance: "writecost",
				Action: "Grant", Reason: "Granted", Type: corev1.EventTypeNormal,
				Note:      "entitled under DistributorContract wc-first",
				Regarding: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: "Partner", Name: ns(i)},
			})
		}))
	})

	// cost, when set, receives the kind's CPU per write for the floors.
	type write struct {
		name string
		do   func(i, round int) error
		cost *float64
	}
	var base, status, patched, apply, del float64
	// Partners are patched from a copy listed before the timed loop, as
	// the operator patches from its cache.
	cached := map[string]*v1.Partner{}
	relist := func() {
		list := &v1.PartnerList{}
		s.must(k8s.List(s.ctx, list))
		for i := range list.Items {
			cached[list.Items[i].Name] = &list.Items[i]
		}
	}
	writesOf := []write{
		{"ResourceQuota spec, merge patch (the bare client's write)", func(i, round int) error {
			patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"hard":{%q:"%d"}}}`, v1.SubscriptionQuotaResource, 10+round))
			return k8s.Patch(s.ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns(i), Name: v1.ResourceQuotaName}}, patch)
		}, &base},
		{"ResourceQuota, server-side apply (the operator's write)", func(i, round int) error {
			q := corev1ac.ResourceQuota(v1.ResourceQuotaName, ns(i)).
				WithLabels(map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: ns(i)}).
				WithSpec(corev1ac.ResourceQuotaSpec().WithHard(corev1.ResourceList{v1.SubscriptionQuotaResource: *resource.NewQuantity(int64(round), resource.DecimalSI)}))
			return k8s.Apply(s.ctx, q, client.FieldOwner("writecost"), client.ForceOwnership)
		}, &apply},
		{"RoleBinding, delete (the revocation's other write)", func(i, _ int) error {
			return k8s.Delete(s.ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns(i), Name: v1.RoleBindingName}})
		}, &del},
		{"ConfigMap of 1.5 KB, merge patch", func(i, round int) error {
			patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"data":{"round":"%d"}}`, round))
			return k8s.Patch(s.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns(i), Name: "payload"}}, patch)
		}, nil},
		{"Partner metadata, merge patch (as the finalizer's)", func(i, round int) error {
			cur := cached[ns(i)]
			next := cur.DeepCopy()
			next.Annotations = map[string]string{"writecost": fmt.Sprint(round)}
			return k8s.Patch(s.ctx, next, client.MergeFrom(cur))
		}, nil},
		{"Partner status, merge patch of a transition (optimistic lock; the operator's before the PUT)", func(i, round int) error {
			cur := cached[ns(i)]
			next := cur.DeepCopy()
			next.Status = costStatus(ns(i), round, round%2 == 0)
			return k8s.Status().Patch(s.ctx, next, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}))
		}, &patched},
		{"Partner status, update of a transition (PUT with the same lock: the operator's write)", func(i, round int) error {
			next := cached[ns(i)].DeepCopy()
			next.Status = costStatus(ns(i), round, true) // the shape the patch above wrote
			return k8s.Status().Update(s.ctx, next)
		}, &status},
	}
	r := &report{N: n, Date: time.Now().UTC().Format(time.DateOnly),
		Title: fmt.Sprintf("%d writes of each kind by 8 workers, no manager running; CPU of kube-apiserver and etcd", n)}
	// Each kind once (b.N is ignored, as in BenchmarkScale: a kind is n
	// writes and reports its own figures; the deletes cannot be repeated).
	for w, wr := range writesOf {
		relist()
		stop := profileAPIServer(b, fmt.Sprintf("writecost-%d", w))
		var took time.Duration
		ms := apiCPU(func() {
			from := time.Now()
			s.must(parallel(n, workers, func(i int) error { return wr.do(i, w+1) }))
			took = time.Since(from)
		})
		stop()
		if wr.cost != nil {
			*wr.cost = ms
		}
		r.add(wr.name+": API server + etcd CPU per write (ms)", ms, base)
		r.add(wr.name+": wall time for all (s)", took.Seconds(), 0)
	}
	r.add("the bare client's grant (namespace, RoleBinding and quota created): API server + etcd CPU per partner (ms)", bareGrant, base)
	r.add("Partner, create (the user's; the finalizer policy, if installed, adds the finalizer): API server + etcd CPU per write (ms)", partnerCreate, base)
	r.add("Event, create (the grant's): API server + etcd CPU per write (ms)", eventCreate, base)
	// The floors: each job's CPU at the API server with the operator's
	// write set, against the bare client's, from the costs above. The two
	// cores are saturated in both jobs, so time follows CPU.
	r.add("floor of the grant until Entitled: (bare grant + Partner create + 2 status writes + event) / bare grant", (bareGrant+partnerCreate+2*status+eventCreate)/bareGrant, 0)
	r.add("floor of the mass expiry: (status write + ½ (RoleBinding delete + quota apply)) / ½ (RoleBinding delete + quota merge patch), recounts left out", (status+(del+apply)/2)/((del+base)/2), 0)
	// The same write sets against the bare client with the record
	// (record_test.go): its grant adds the Partner create and one status
	// write, its expiry a status write for every partner.
	r.add("floor of the grant until Entitled against the bare client with the record: (bare grant + Partner create + 2 status writes + event) / (bare grant + Partner create + status write)", (bareGrant+partnerCreate+2*status+eventCreate)/(bareGrant+partnerCreate+status), 0)
	r.add("floor of the mass expiry against the bare client with the record: (status write + ½ (RoleBinding delete + quota apply)) / (status write + ½ (RoleBinding delete + quota merge patch))", (status+(del+apply)/2)/(status+(del+base)/2), 0)
	r.add("the status write as a PUT against as a merge patch (CPU ratio)", status/patched, 0)
	r.Notes = append(r.Notes, s.objectSize(ns(0)))
	fmt.Println(r.table())
}

// costStatus is a status like the operator writes: entitled on the first
// contract, or revoked after it ended.
func costStatus(name string, round int, entitled bool) v1.PartnerStatus {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	cond := func(t string, st metav1.ConditionStatus, reason, msg string) metav1.Condition {
		return metav1.Condition{Type: t, Status: st, Reason: reason, Message: msg, LastTransitionTime: now, ObservedGeneration: 1}
	}
	st := v1.PartnerStatus{
		Subscriptions:      v1.SubscriptionUsage{Used: 0, Hard: 10, Summary: "0/10"},
		Namespaces:         []v1.NamespaceStatus{{Name: name, State: v1.NamespaceGranted, UID: types.UID("0f8e3c1a-1111-2222-3333-444455556666"), SubscriptionsHard: 10}},
		ObservedGeneration: 1,
		History: []v1.HistoryEntry{
			{Time: now, Outcome: v1.HistoryGranted, Contract: "wc-first", Message: "supplied by DistributorContract wc-first"},
		},
	}
	if entitled {
		st.Phase, st.Contract, st.EntitledUntil = v1.PartnerEntitled, "wc-first", &now
		st.Next = &v1.NextChange{At: now, Outcome: v1.NextFailOver, Contract: "wc-second"}
		st.Performance = &v1.Performance{QualifiesFor: v1.TierReady, MeetsRequirements: true}
		st.Conditions = []metav1.Condition{
			cond(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonReconciled, "entitlements applied: Entitled"),
			cond(v1.ConditionEntitled, metav1.ConditionTrue, "Supplied", fmt.Sprintf("supplied by DistributorContract wc-first (round %d)", round)),
			cond(v1.ConditionContractExpiring, metav1.ConditionTrue, "ContractEnding", "DistributorContract wc-first ends at "+now.UTC().Format(time.RFC3339)+"; fails over to wc-second"),
			cond(v1.ConditionRequirementsMet, metav1.ConditionTrue, "NoRequirements", "the contract sets no requirements for tier Ready"),
		}
	} else {
		st.Phase = v1.PartnerRevoked
		st.Namespaces[0].State, st.Namespaces[0].SubscriptionsHard = v1.NamespaceRevoked, 0
		st.History = append([]v1.HistoryEntry{{Time: now, Outcome: v1.HistoryRevoked, PreviousContract: "wc-first",
			Message: fmt.Sprintf("no listed contract supplies the partner (round %d)", round)}}, st.History...)
		st.Conditions = []metav1.Condition{
			cond(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonReconciled, "entitlements applied: Revoked"),
			cond(v1.ConditionEntitled, metav1.ConditionFalse, "NoSupplyingContract", fmt.Sprintf("no listed contract supplies the partner (round %d)", round)),
		}
	}
	return st
}

// profileAPIServer records a CPU profile of kube-apiserver for 8 s from
// now, when SCALE_PROFILE names a directory; the returned function waits
// for it.
func profileAPIServer(b *testing.B, name string) func() {
	dir := os.Getenv("SCALE_PROFILE")
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		apiServerProfile(b, dir, name, 8*time.Second)
	}()
	return func() { <-done }
}
