// Package argocd_test runs the shipped Argo CD health check
// (config/argocd/health.lua) on real Partner and DistributorContract status
// objects from the local control plane, the way Argo CD does (obj is the
// object, the script returns {status, message}).
package argocd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/controllers"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

func script(t *testing.T) string {
	t.Helper()
	root, err := testcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "argocd", "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// health runs the script on obj as Argo CD does.
func health(t *testing.T, src string, obj client.Object) (status, message string) {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, u))
	if err := L.DoString(src); err != nil {
		t.Fatalf("health.lua: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %v, want a table", L.Get(-1))
	}
	return ret.RawGetString("status").String(), ret.RawGetString("message").String()
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case map[string]any:
		tb := L.NewTable()
		for k, e := range x {
			tb.RawSetString(k, toLua(L, e))
		}
		return tb
	case []any:
		tb := L.NewTable()
		for i, e := range x {
			tb.RawSetInt(i+1, toLua(L, e))
		}
		return tb
	case string:
		return lua.LString(x)
	case bool:
		return lua.LBool(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case nil:
		return lua.LNil
	}
	panic(fmt.Sprintf("unexpected %T", v))
}

func TestGeneratedPatchCarriesTheScript(t *testing.T) {
	src := script(t)
	root, _ := testcluster.RepoRoot()
	b, err := os.ReadFile(filepath.Join(root, "config", "argocd", "argocd-cm-patch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var patch struct{ Data map[string]string }
	if err := yaml.UnmarshalStrict(b, &patch); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Partner", "DistributorContract"} {
		if got := patch.Data["resource.customizations.health.entitlements.partnerops.io_"+kind]; got != src {
			t.Errorf("argocd-cm-patch.yaml for %s differs from health.lua (run make generate)", kind)
		}
	}
}

func TestHealthOnRealObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local control plane")
	}
	cl := testcluster.StartForTest(t, testcluster.Options{})
	c, err := client.New(cl.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := script(t)
	for _, r := range testenv.TierRoles() {
		if err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	good := testenv.Contract("ah-c", "LXPN", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.AllTiers(3, 1)...)
	badRole := testenv.Contract("ah-badrole", "LXPN", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierReady, 3, 1))
	badRole.Spec.Entitlements[0].ClusterRole = "no-such-role"
	ok := testenv.Partner("ah-ok", v1.TierReady, "DE", []string{good.Name}, "ah-ok")
	revoked := testenv.Partner("ah-revoked", v1.TierReady, "DE", []string{"no-such-contract"}, "ah-revoked")
	for _, o := range []client.Object{good, badRole, ok, revoked} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	get := func(o client.Object) client.Object {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	// Before the operator ever ran: Progressing.
	if s, m := health(t, src, get(&v1.Partner{ObjectMeta: metav1.ObjectMeta{Name: ok.Name}})); s != "Progressing" {
		t.Errorf("Partner before the first reconcile: want Progressing, got %s (%s)", s, m)
	}
	m, err := testenv.StartManager(cl.Config, testenv.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	want := []struct {
		obj    client.Object
		status string
		says   string
	}{
		{&v1.Partner{ObjectMeta: metav1.ObjectMeta{Name: ok.Name}}, "Healthy", "phase Entitled"},
		{&v1.Partner{ObjectMeta: metav1.ObjectMeta{Name: revoked.Name}}, "Degraded", "ContractNotFound"},
		{&v1.DistributorContract{ObjectMeta: metav1.ObjectMeta{Name: good.Name}}, "Healthy", "phase Active"},
		{&v1.DistributorContract{ObjectMeta: metav1.ObjectMeta{Name: badRole.Name}}, "Degraded", "RoleNotBindable"},
	}
	for _, w := range want {
		if err := testcluster.Poll(30*time.Second, func() error {
			if s, msg := health(t, src, get(w.obj)); s != w.status || !strings.Contains(msg, w.says) {
				return fmt.Errorf("%s %q", s, msg)
			}
			return nil
		}); err != nil {
			t.Errorf("%T %s: want %s saying %q: %v", w.obj, w.obj.GetName(), w.status, w.says, err)
		}
	}
	// A spec edit the operator has not seen yet is Progressing: stop it,
	// edit, look.
	m.Stop()
	p := get(&v1.Partner{ObjectMeta: metav1.ObjectMeta{Name: ok.Name}}).(*v1.Partner)
	patch := client.MergeFrom(p.DeepCopy())
	p.Spec.DisplayName = "edited"
	if err := c.Patch(ctx, p, patch); err != nil {
		t.Fatal(err)
	}
	if s, msg := health(t, src, get(p)); s != "Progressing" || !strings.Contains(msg, "latest spec") {
		t.Errorf("Partner edited while the operator is down: want Progressing (latest spec not seen), got %s (%s)", s, msg)
	}
}
