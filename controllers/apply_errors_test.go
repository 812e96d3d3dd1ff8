package controllers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/entitlement"
)

// These tests run the controller layer against controller-runtime's fake
// client with API errors injected (403, 409, 422, 500): what apply, status
// and delete do when a write fails. What only the real API server shows
// (quota admission, RBAC escalation, namespace termination) is tested
// against it elsewhere.

var (
	errServer    = apierrors.NewInternalError(errors.New("etcd timeout"))
	errForbidden = apierrors.NewForbidden(schema.GroupResource{Resource: "resourcequotas"}, v1.ResourceQuotaName, errors.New("denied by a webhook"))
	errEscalate  = apierrors.NewForbidden(schema.GroupResource{Group: rbacv1.GroupName, Resource: "rolebindings"}, v1.RoleBindingName,
		errors.New("user cannot bind: attempting to grant RBAC permissions not currently held"))
	errConflict = apierrors.NewConflict(schema.GroupResource{Resource: "partners"}, "acme", errors.New("the object has been modified"))
	errRoleRef  = apierrors.NewInvalid(schema.GroupKind{Group: rbacv1.GroupName, Kind: "RoleBinding"}, v1.RoleBindingName, nil)
)

// recordedApplies collects what the reconciler applied, by kind and namespace.
type recordedApplies struct {
	mu   sync.Mutex
	seen []string
}

func (r *recordedApplies) add(s string) { r.mu.Lock(); r.seen = append(r.seen, s); r.mu.Unlock() }
func (r *recordedApplies) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}
func (r *recordedApplies) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.seen {
		if x == s {
			return true
		}
	}
	return false
}

// applyKey names an apply configuration: "ResourceQuota/ns", "RoleBinding/ns", "Namespace/name".
func applyKey(obj runtime.ApplyConfiguration) string {
	switch a := obj.(type) {
	case *corev1ac.ResourceQuotaApplyConfiguration:
		return "ResourceQuota/" + *a.Namespace
	case *rbacv1ac.RoleBindingApplyConfiguration:
		return "RoleBinding/" + *a.Namespace
	case *corev1ac.NamespaceApplyConfiguration:
		return "Namespace/" + *a.Name
	}
	return "?"
}

type faults struct {
	create, apply, patch, delete, statusWrite, get map[string]error // by kind/namespace key ("*" for any)
}

func pick(m map[string]error, key string) error {
	if err, ok := m[key]; ok {
		return err
	}
	return m["*"]
}

func kindKey(obj client.Object) string {
	switch obj.(type) {
	case *corev1.Namespace:
		return "Namespace/" + obj.GetName()
	case *corev1.ResourceQuota:
		return "ResourceQuota/" + obj.GetNamespace()
	case *rbacv1.RoleBinding:
		return "RoleBinding/" + obj.GetNamespace()
	case *v1.DistributorContract:
		return "DistributorContract/" + obj.GetName()
	case *v1.Partner:
		return "Partner/" + obj.GetName()
	}
	return "?"
}

// reconcilerWith returns a PartnerReconciler over a fake client holding
// objs, with the faults injected, and the applies it made.
func reconcilerWith(t *testing.T, f faults, objs ...client.Object) (*PartnerReconciler, *recordedApplies, client.Client) {
	t.Helper()
	applied := &recordedApplies{}
	funcs := interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := pick(f.create, kindKey(obj)); err != nil {
				return err
			}
			applied.add("create " + kindKey(obj))
			return c.Create(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if err := pick(f.delete, kindKey(obj)); err != nil {
				return err
			}
			applied.add("delete " + kindKey(obj))
			return c.Delete(ctx, obj, opts...)
		},
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := c.Get(ctx, key, obj, opts...); err != nil {
				return err
			}
			return pick(f.get, kindKey(obj))
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if err := pick(f.patch, kindKey(obj)); err != nil {
				return err
			}
			applied.add("patch " + kindKey(obj))
			return c.Patch(ctx, obj, patch, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			key := applyKey(obj)
			if err := pick(f.apply, key); err != nil {
				return err
			}
			applied.add("apply " + key)
			return nil // recorded, not stored: these tests look at the calls
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			if err := pick(f.statusWrite, kindKey(obj)); err != nil {
				return err
			}
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	}
	s := NewScheme()
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&v1.Partner{}).
		WithIndex(&v1.Partner{}, IndexPartnerContracts, func(o client.Object) []string { return o.(*v1.Partner).Spec.Contracts }).
		WithIndex(&v1.Partner{}, IndexPartnerNamespaces, func(o client.Object) []string {
			var out []string
			for _, n := range o.(*v1.Partner).Spec.Namespaces {
				out = append(out, string(n))
			}
			return out
		}).
		WithIndex(&corev1.Namespace{}, IndexChildPartner, partnerLabel).
		WithIndex(&rbacv1.RoleBinding{}, IndexChildPartner, partnerLabel).
		WithIndex(&corev1.ResourceQuota{}, IndexChildPartner, partnerLabel).
		WithInterceptorFuncs(funcs).Build()
	r := &PartnerReconciler{Client: c, APIReader: c, Clock: clocktesting.NewFakeClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)), Recorder: &nopRecorder{}}
	return r, applied, c
}

type nopRecorder struct{}

func (*nopRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}
func (*nopRecorder) AnnotatedEventf(runtime.Object, runtime.Object, map[string]string, string, string, string, string, ...any) {
}

func partner(namespaces ...v1.NamespaceName) *v1.Partner {
	return &v1.Partner{
		ObjectMeta: metav1.ObjectMeta{Name: "acme", UID: "p-uid", Generation: 1, Finalizers: []string{v1.Finalizer}},
		Spec: v1.PartnerSpec{Tier: v1.TierReady, Region: "DE", Contracts: []string{"c"}, Namespaces: namespaces,
			Access: []v1.Subject{{Kind: v1.SubjectGroup, Name: "acme-admins"}}},
	}
}

func grantPlan(ns string, create bool) *entitlement.PartnerPlan {
	return &entitlement.PartnerPlan{Phase: v1.PartnerEntitled, ClusterRole: "entitlements-partner-ready", Namespaces: []entitlement.NamespacePlan{
		{Name: ns, State: v1.NamespaceGranted, Manage: true, Bind: true, Create: create, SubscriptionsHard: 3},
	}}
}

func managedNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: "ns-uid", Labels: map[string]string{
		v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: "acme", v1.LabelState: "Granted"}}}
}

func ourQuota(ns string) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1.ResourceQuotaName,
		Labels: map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: "acme"}},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{v1.SubscriptionQuotaResource: resource.MustParse("3")}}}
}

func ourBinding(ns string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1.RoleBindingName,
		Labels: map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: "acme"}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "entitlements-partner-ready"},
		Subjects: []rbacv1.Subject{{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "acme-admins"}}}
}

func TestApplyUnderInjectedErrors(t *testing.T) {
	cases := []struct {
		name     string
		objs     []client.Object
		plan     *entitlement.PartnerPlan
		faults   faults
		wantErr  string   // substring; "" for none
		want     []string // calls that must happen, in this order
		wantNot  []string // calls that must not
		forbidde bool     // the refusal to bind is remembered
	}{
		{name: "namespace create fails (500): nothing applied into it",
			plan: grantPlan("a", true), faults: faults{create: map[string]error{"Namespace/a": errServer}},
			wantErr: "Namespace in namespace a", wantNot: []string{"apply ResourceQuota/a", "apply RoleBinding/a"}},
		{name: "quota refused (403) and none there: no binding",
			objs: []client.Object{managedNamespace("a")}, plan: grantPlan("a", false),
			faults: faults{apply: map[string]error{"ResourceQuota/a": errForbidden}}, wantErr: "denied by a webhook",
			wantNot: []string{"apply RoleBinding/a"}},
		{name: "quota refused (500) with one there: the binding is kept, not widened",
			objs: []client.Object{managedNamespace("a"), ourQuota("a"), func() client.Object { b := ourBinding("a"); b.Subjects = nil; return b }()},
			plan: func() *entitlement.PartnerPlan {
				p := grantPlan("a", false)
				p.Namespaces[0].SubscriptionsHard = 5
				return p
			}(),
			faults: faults{apply: map[string]error{"ResourceQuota/a": errServer}}, wantErr: "etcd timeout",
			wantNot: []string{"apply RoleBinding/a", "delete RoleBinding/a"}},
		{name: "quota unreadable (500): no new binding",
			objs: []client.Object{managedNamespace("a"), ourQuota("a")}, plan: grantPlan("a", false),
			faults: faults{get: map[string]error{"ResourceQuota/a": errServer}}, wantErr: "etcd timeout",
			wantNot: []string{"apply RoleBinding/a"}},
		{name: "grant, all writes succeed: quota then binding",
			objs: []client.Object{managedNamespace("a")}, plan: grantPlan("a", false),
			want: []string{"apply ResourceQuota/a", "apply RoleBinding/a"}},
		{name: "binding apply refused by the escalation check: remembered as forbidden",
			objs: []client.Object{managedNamespace("a")}, plan: grantPlan("a", false),
			faults: faults{apply: map[string]error{"RoleBinding/a": errEscalate}}, wantErr: "refused to let the operator bind ClusterRole", forbidde: true},
		{name: "grant: the view is written before the quota and the binding",
			objs: []client.Object{managedNamespace("a")}, plan: withView(grantPlan("a", false), "Entitled"),
			want: []string{"patch Namespace/a", "apply ResourceQuota/a", "apply RoleBinding/a"}},
		{name: "grant: the view cannot be written, so nothing is granted there",
			objs: []client.Object{managedNamespace("a")}, plan: withView(grantPlan("a", false), "Entitled"),
			faults: faults{patch: map[string]error{"Namespace/a": errServer}}, wantErr: "Namespace in namespace a",
			wantNot: []string{"apply ResourceQuota/a", "apply RoleBinding/a"}},
		{name: "revoke: the view cannot be written, the binding still goes and the quota is lowered",
			objs:   []client.Object{managedNamespace("a"), ourQuota("a"), ourBinding("a")},
			plan:   withView(&entitlement.PartnerPlan{Phase: v1.PartnerRevoked, Namespaces: []entitlement.NamespacePlan{{Name: "a", State: v1.NamespaceRevoked, Manage: true}}}, "Revoked"),
			faults: faults{patch: map[string]error{"Namespace/a": errServer}}, wantErr: "Namespace in namespace a",
			want: []string{"delete RoleBinding/a", "apply ResourceQuota/a"}},
		{name: "revoke: the view says Revoked before the binding goes and the quota is lowered",
			objs: []client.Object{managedNamespace("a"), ourQuota("a"), ourBinding("a")},
			plan: withView(&entitlement.PartnerPlan{Phase: v1.PartnerRevoked, Namespaces: []entitlement.NamespacePlan{{Name: "a", State: v1.NamespaceRevoked, Manage: true}}}, "Revoked"),
			want: []string{"patch Namespace/a", "delete RoleBinding/a", "apply ResourceQuota/a"}},
		{name: "create: the namespace is created with its view, then quota and binding",
			plan: grantPlan("a", true), want: []string{"create Namespace/a", "apply ResourceQuota/a", "apply RoleBinding/a"}},
		{name: "create: someone created it first (409): a conflict, nothing applied into it",
			objs: []client.Object{func() client.Object { n := managedNamespace("a"); n.UID = "forged"; return n }()}, plan: grantPlan("a", true),
			wantErr: "created by someone else while the operator was creating it", wantNot: []string{"apply ResourceQuota/a", "apply RoleBinding/a"}},
		{name: "binding apply fails (500): the error names the namespace, the quota is written",
			objs: []client.Object{managedNamespace("a")}, plan: grantPlan("a", false),
			faults: faults{apply: map[string]error{"RoleBinding/a": errServer}}, wantErr: "RoleBinding partner-access in namespace a",
			want: []string{"apply ResourceQuota/a"}},
		{name: "revoke: binding delete fails (500), the quota is still lowered",
			objs:   []client.Object{managedNamespace("a"), ourQuota("a"), ourBinding("a")},
			plan:   &entitlement.PartnerPlan{Phase: v1.PartnerRevoked, Namespaces: []entitlement.NamespacePlan{{Name: "a", State: v1.NamespaceRevoked, Manage: true}}},
			faults: faults{delete: map[string]error{"RoleBinding/a": errServer}}, wantErr: "etcd timeout",
			want: []string{"apply ResourceQuota/a"}},
		{name: "revoke: binding deleted before the quota is lowered",
			objs: []client.Object{managedNamespace("a"), ourQuota("a"), ourBinding("a")},
			plan: &entitlement.PartnerPlan{Phase: v1.PartnerRevoked, Namespaces: []entitlement.NamespacePlan{{Name: "a", State: v1.NamespaceRevoked, Manage: true}}},
			want: []string{"delete RoleBinding/a", "apply ResourceQuota/a"}},
		{name: "stray namespace: binding deleted, quota zeroed",
			objs: []client.Object{ourQuota("moved"), ourBinding("moved")},
			plan: &entitlement.PartnerPlan{Phase: v1.PartnerEntitled, Strays: []string{"moved"}},
			want: []string{"delete RoleBinding/moved", "apply ResourceQuota/moved"}},
		{name: "stray namespace whose quota another partner labelled: quota untouched",
			objs: []client.Object{func() client.Object { q := ourQuota("moved"); q.Labels[v1.LabelPartner] = "globex"; return q }(), ourBinding("moved")},
			plan: &entitlement.PartnerPlan{Phase: v1.PartnerEntitled, Strays: []string{"moved"}},
			want: []string{"delete RoleBinding/moved"}, wantNot: []string{"apply ResourceQuota/moved"}},
		{name: "one namespace failing does not stop the next",
			objs: []client.Object{managedNamespace("a"), managedNamespace("b")},
			plan: func() *entitlement.PartnerPlan {
				p := grantPlan("a", false)
				p.Namespaces = append(p.Namespaces, entitlement.NamespacePlan{Name: "b", State: v1.NamespaceGranted, Manage: true, Bind: true, SubscriptionsHard: 3})
				return p
			}(),
			faults: faults{apply: map[string]error{"ResourceQuota/a": errForbidden}}, wantErr: "namespace a",
			want: []string{"apply ResourceQuota/b", "apply RoleBinding/b"}, wantNot: []string{"apply RoleBinding/a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, applied, _ := reconcilerWith(t, tc.faults, tc.objs...)
			err := r.apply(context.Background(), partner("a"), tc.plan).Err
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("apply: want no error, got %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("apply: want an error containing %q, got %v", tc.wantErr, err)
			}
			if remembered := r.refusals.of("entitlements-partner-ready", r.Clock.Now(), time.Minute) != ""; remembered != tc.forbidde {
				t.Errorf("refusal remembered: want %v, got %v (%v)", tc.forbidde, remembered, err)
			}
			calls := applied.list()
			at := -1
			for _, w := range tc.want {
				i := slices.Index(calls, w)
				if i < 0 {
					t.Errorf("want %s; calls were %v", w, calls)
				} else if i < at {
					t.Errorf("want %s after %v; calls were %v", w, tc.want[:slices.Index(tc.want, w)], calls)
				}
				at = max(at, i)
			}
			for _, w := range tc.wantNot {
				if applied.has(w) {
					t.Errorf("want no %s; calls were %v", w, applied.seen)
				}
			}
		})
	}
}

func TestForeignBindingIsReplacedOnInvalid(t *testing.T) {
	foreign := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: v1.RoleBindingName, UID: "foreign"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}}
	calls := 0
	r, applied, c := reconcilerWith(t, faults{})
	if err := c.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	// The cache does not hold the foreign binding (no labels): the first
	// apply fails on the immutable roleRef, the second succeeds.
	r.Client = interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, cl client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*rbacv1.RoleBinding); ok {
				return apierrors.NewNotFound(schema.GroupResource{Resource: "rolebindings"}, key.Name)
			}
			return cl.Get(ctx, key, obj, opts...)
		},
		Apply: func(ctx context.Context, cl client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			calls++
			if calls == 1 {
				return errRoleRef
			}
			applied.add("apply " + applyKey(obj))
			return nil
		},
	})
	replaced, err := r.applyRoleBinding(context.Background(), partner("a"), grantPlan("a", false).Namespaces[0], "entitlements-partner-ready", entitlement.BindAsPlanned)
	if err != nil || !replaced || !applied.has("apply RoleBinding/a") {
		t.Fatalf("want the foreign binding replaced; got replaced %v, err %v, calls %v", replaced, err, applied.seen)
	}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(foreign), &rbacv1.RoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("foreign binding: want deleted, got %v", err)
	}
}

// withView gives the plan's namespaces a view that differs from what
// managedNamespace carries, so that the namespace step writes it.
func withView(p *entitlement.PartnerPlan, phase string) *entitlement.PartnerPlan {
	for i := range p.Namespaces {
		phase := phase
		p.Namespaces[i].Metadata = entitlement.MetadataPatch{Annotations: map[string]*string{v1.AnnotationPrefix + "phase": &phase}}
	}
	return p
}
