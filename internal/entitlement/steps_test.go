package entitlement

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestDeferViews(t *testing.T) {
	entitled := func(contract string) PartnerPlan {
		return PartnerPlan{Phase: v1.PartnerEntitled, Supply: Supply{Contract: contract}}
	}
	cases := []struct {
		name string
		old  v1.PartnerStatus
		plan PartnerPlan
		want bool
	}{
		{"first decision: nothing to defer", v1.PartnerStatus{}, entitled("a"), false},
		{"unchanged", v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "a"}, entitled("a"), false},
		{"failover", v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "a"}, entitled("b"), true},
		{"revocation", v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "a"}, PartnerPlan{Phase: v1.PartnerRevoked}, true},
		{"restored", v1.PartnerStatus{Phase: v1.PartnerRevoked}, entitled("a"), true},
		{"still revoked", v1.PartnerStatus{Phase: v1.PartnerRevoked}, PartnerPlan{Phase: v1.PartnerRevoked}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.plan.DeferViews(&tc.old); got != tc.want {
				t.Errorf("DeferViews: want %v, got %v", tc.want, got)
			}
		})
	}
}

func TestStatusAfterAccess(t *testing.T) {
	entitledOn := v1.PartnerStatus{Phase: v1.PartnerEntitled, Contract: "a"}
	cases := []struct {
		name string
		old  v1.PartnerStatus
		plan PartnerPlan
		want bool
	}{
		{"revocation", entitledOn, PartnerPlan{Phase: v1.PartnerRevoked}, true},
		{"failover (with or without new role and limits)", entitledOn, PartnerPlan{Phase: v1.PartnerEntitled, Supply: Supply{Contract: "b"}}, true},
		{"suspension", entitledOn, PartnerPlan{Phase: v1.PartnerSuspended}, true},
		{"drift repaired, no transition", entitledOn, PartnerPlan{Phase: v1.PartnerEntitled, Supply: Supply{Contract: "a"}}, false},
		{"first grant", v1.PartnerStatus{}, PartnerPlan{Phase: v1.PartnerEntitled, Supply: Supply{Contract: "a"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.plan.StatusAfterAccess(&tc.old); got != tc.want {
				t.Errorf("StatusAfterAccess: want %v, got %v", tc.want, got)
			}
		})
	}
}

func TestSameWrites(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	base := func() PartnerPlan {
		return PartnerPlan{Phase: v1.PartnerRevoked, ClusterRole: "entitlements-partner-ready", Strays: []string{"x"},
			Namespaces: []NamespacePlan{{Name: "a", State: v1.NamespaceRevoked, Manage: true, UID: "u",
				Labels: map[string]string{"l": "1"}, View: map[string]string{"v": "1"}, Recount: at,
				ExtraQuota: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}, Used: 2, Message: "m"}}}
	}
	cases := []struct {
		name   string
		change func(*PartnerPlan)
		want   bool
	}{
		{"identical (with a recount time, which equality.Semantic cannot walk)", func(*PartnerPlan) {}, true},
		{"status-only fields differ", func(p *PartnerPlan) {
			p.Namespaces[0].Used, p.Namespaces[0].Message, p.Phase = 3, "other", v1.PartnerEntitled
		}, true},
		{"same recount instant, other location", func(p *PartnerPlan) { p.Namespaces[0].Recount = at.In(time.FixedZone("x", 3600)) }, true},
		{"same quantity, other form", func(p *PartnerPlan) {
			p.Namespaces[0].ExtraQuota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1e1")}
		}, true},
		{"role", func(p *PartnerPlan) { p.ClusterRole = "" }, false},
		{"strays", func(p *PartnerPlan) { p.Strays = nil }, false},
		{"bind", func(p *PartnerPlan) { p.Namespaces[0].Bind = true }, false},
		{"create", func(p *PartnerPlan) { p.Namespaces[0].Create = true }, false},
		{"quota", func(p *PartnerPlan) { p.Namespaces[0].SubscriptionsHard = 3 }, false},
		{"extra quota", func(p *PartnerPlan) { p.Namespaces[0].ExtraQuota = nil }, false},
		{"recount", func(p *PartnerPlan) { p.Namespaces[0].Recount = at.Add(time.Second) }, false},
		{"labels", func(p *PartnerPlan) { p.Namespaces[0].Labels = nil }, false},
		{"view", func(p *PartnerPlan) { p.Namespaces[0].View = map[string]string{"v": "2"} }, false},
		{"uid", func(p *PartnerPlan) { p.Namespaces[0].UID = "w" }, false},
		{"one more namespace", func(p *PartnerPlan) { p.Namespaces = append(p.Namespaces, NamespacePlan{Name: "b"}) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(&b)
			if got := a.SameWrites(&b); got != tc.want {
				t.Errorf("SameWrites: want %v, got %v", tc.want, got)
			}
			if kept := a.Writes(); kept.SameWrites(&b) != tc.want {
				t.Errorf("SameWrites of the plan's Writes: want %v, like the whole plan's", tc.want)
			}
		})
	}
}

// TestSameWritesCoversEveryField: a field added to NamespacePlan or
// PartnerPlan must be either compared by SameWrites or listed here as one
// only the status (or the requeue) uses; otherwise a status pass could reuse an access
// pass that wrote something else.
func TestSameWritesCoversEveryField(t *testing.T) {
	statusOnly := map[string]bool{"Used": true, "Message": true}
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	base := func() PartnerPlan {
		return PartnerPlan{Namespaces: []NamespacePlan{{Name: "a", Recount: at,
			Labels: map[string]string{"l": "1"}, View: map[string]string{"v": "1"}}}}
	}
	nsType := reflect.TypeFor[NamespacePlan]()
	for i := range nsType.NumField() {
		f := nsType.Field(i)
		a, b := base(), base()
		v := reflect.ValueOf(&b.Namespaces[0]).Elem().Field(i)
		switch {
		case f.Type == reflect.TypeFor[time.Time]():
			v.Set(reflect.ValueOf(at.Add(time.Second)))
		case v.Kind() == reflect.String:
			v.SetString(v.String() + "x")
		case v.Kind() == reflect.Bool:
			v.SetBool(!v.Bool())
		case v.Kind() == reflect.Int64:
			v.SetInt(v.Int() + 1)
		case v.Kind() == reflect.Map:
			m := reflect.MakeMap(f.Type)
			m.SetMapIndex(reflect.ValueOf("zz").Convert(f.Type.Key()), reflect.New(f.Type.Elem()).Elem())
			v.Set(m)
		default:
			t.Fatalf("NamespacePlan.%s (%s): teach this test to change it", f.Name, f.Type)
		}
		if got, want := a.SameWrites(&b), statusOnly[f.Name]; got != want {
			t.Errorf("NamespacePlan.%s changed: SameWrites = %v, want %v (compare it, or list it as status-only)", f.Name, got, want)
		}
	}

	writes := map[string]bool{"ClusterRole": true, "Namespaces": true, "Strays": true}
	// What the status shows, and when to look again: not written to children.
	notWrites := map[string]bool{"RequeueAt": true, "Phase": true, "Supply": true, "Successor": true, "Used": true, "Hard": true,
		"Conditions": true, "Remove": true, "Stalled": true, "Reconciling": true, "Performance": true,
		"Next": true, "History": true, "Events": true}
	for f := range reflect.TypeFor[PartnerPlan]().Fields() {
		if writes[f.Name] == notWrites[f.Name] {
			t.Errorf("PartnerPlan.%s: say whether SameWrites compares it (a write) or not (status or scheduling only)", f.Name)
		}
	}
}
