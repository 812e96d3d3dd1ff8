package adversarial_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

// slowNamespaceCreates holds the operator's namespace creates for a
// moment, so that an attacker who watches Partners wins every race into
// the window between the operator's record of a creation and its create.
// While blocked is set, a create is never sent: it waits until the
// manager stops (a crash between the record and the create).
type slowNamespaceCreates struct {
	hold    time.Duration
	mu      sync.Mutex
	blocked chan struct{}
}

func (s *slowNamespaceCreates) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTrip(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/api/v1/namespaces") {
			s.mu.Lock()
			blocked := s.blocked
			s.mu.Unlock()
			if blocked != nil {
				<-req.Context().Done()
				return nil, errors.New("not sent: the manager crashed before its create")
			}
			time.Sleep(s.hold) // the experiment's race window, not a synchronisation
		}
		return rt.RoundTrip(req)
	})
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// forge creates the namespace the way someone who watched the Partner
// would: every label and annotation the operator writes, a creation token
// of their own, and consent to hand it over to the partner.
func forge(t *testing.T, ns, partner string) error {
	return k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{v1.LabelManagedBy: v1.ManagedByValue, v1.LabelPartner: partner, v1.LabelState: "Granted"},
		Annotations: map[string]string{v1.AnnotationCreatedBy: partner, v1.AnnotationCreationToken: "guessed",
			v1.AnnotationHandOverTo: partner, v1.AnnotationPrefix + "phase": "Entitled"}}})
}

// raceOnRecord forges the namespace of each partner as soon as its status
// records that the operator is creating it (a Pending record, no UID). It
// returns the namespaces it created.
func raceOnRecord(t *testing.T, partners map[string]string) func() map[string]bool {
	won := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p, ns := range partners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				got := &v1.Partner{}
				if err := k8s.Get(context.Background(), client.ObjectKey{Name: p}, got); err == nil {
					if rec, ok := nsState(got, ns); ok && rec.State == v1.NamespacePending && rec.UID == "" {
						err := forge(t, ns, p)
						if err == nil {
							mu.Lock()
							won[ns] = true
							mu.Unlock()
							return
						}
						if apierrors.IsAlreadyExists(err) {
							return
						}
						t.Logf("forging %s: %v (trying again)", ns, err)
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return func() map[string]bool { wg.Wait(); return won }
}

// TestRacingTheCreateMakesNoNamespaceTheOperators: someone who watches
// Partners creates each partner's namespace, forged to look like the
// operator's, in the window between the operator's record of the creation
// and its create. Every forged namespace is a Conflict: never Granted,
// never bound, never recorded as created by the operator, and deletionPolicy
// Delete does not delete it. Then the same after a crash between the
// record and the create.
func TestRacingTheCreateMakesNoNamespaceTheOperators(t *testing.T) {
	needCluster(t)
	slow := &slowNamespaceCreates{hold: 300 * time.Millisecond}
	m := startManager(t, testenv.ManagerOptions{Wrap: slow.wrap})
	c := testenv.Contract("race-c", "Bytec", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierReady, 5, 1))
	create(t, c)
	targets := map[string]string{}
	for i := range setting("ADVERSARIAL_PARTNERS", 10) {
		targets[fmt.Sprintf("race-%d", i)] = fmt.Sprintf("race-%d-ns", i)
	}
	won := raceOnRecord(t, targets)
	for p, ns := range targets {
		pt := testenv.Partner(p, v1.TierReady, "DE", []string{c.Name}, ns)
		pt.Spec.DeletionPolicy = v1.DeletionDelete
		create(t, pt)
	}
	forged := won()
	t.Logf("the attacker created %d of %d namespaces in the window between the operator's record and its create", len(forged), len(targets))
	if len(forged) == 0 {
		t.Fatalf("the attacker won no race: the test proves nothing")
	}
	for p, ns := range targets {
		if !forged[ns] {
			// The operator's create came first: the namespace is its own.
			eventually(t, 30*time.Second, "Granted for "+p, func() error {
				rec, _ := nsState(getPartner(t, p), ns)
				live := &corev1.Namespace{}
				if err := k8s.Get(ctx(t), client.ObjectKey{Name: ns}, live); err != nil {
					return err
				}
				if rec.State != v1.NamespaceGranted || rec.UID != live.UID {
					return fmt.Errorf("namespace %s: %+v (live UID %s)", ns, rec, live.UID)
				}
				return nil
			})
			continue
		}
		eventually(t, 30*time.Second, "Conflict for "+p, func() error {
			got := getPartner(t, p)
			rec, _ := nsState(got, ns)
			if rec.State != v1.NamespaceConflict || rec.UID != "" || !strings.Contains(rec.Message, "created by someone else while the operator was creating it") {
				return fmt.Errorf("namespace %s: %+v", ns, rec)
			}
			return nil
		})
		consistently(t, 500*time.Millisecond, "no RoleBinding in the forged "+ns, notFound(&rbacv1.RoleBinding{}, ns, v1.RoleBindingName))
	}
	// deletionPolicy Delete: the forged namespaces stay.
	for p := range targets {
		if err := k8s.Delete(ctx(t), &v1.Partner{ObjectMeta: metav1.ObjectMeta{Name: p}}); err != nil {
			t.Fatal(err)
		}
	}
	for p, ns := range targets {
		eventually(t, 30*time.Second, "Partner "+p+" gone", notFound(&v1.Partner{}, "", p))
		if !forged[ns] {
			continue
		}
		got := &corev1.Namespace{}
		if err := k8s.Get(ctx(t), client.ObjectKey{Name: ns}, got); err != nil || !got.DeletionTimestamp.IsZero() {
			t.Errorf("forged namespace %s: want kept after its Partner's deletion (Delete), got %v, deleting %v", ns, err, !got.DeletionTimestamp.IsZero())
		}
	}

	// A crash between the record and the create: the record is written,
	// the create never sent; the attacker creates the namespace; a new
	// manager finds it.
	slow.mu.Lock()
	slow.blocked = make(chan struct{})
	slow.mu.Unlock()
	crashed := testenv.Partner("crash-p", v1.TierReady, "DE", []string{c.Name}, "crash-ns")
	create(t, crashed)
	eventually(t, 30*time.Second, "creation recorded", func() error {
		if rec, ok := nsState(getPartner(t, crashed.Name), "crash-ns"); !ok || rec.State != v1.NamespacePending || rec.CreationDigest == "" {
			return fmt.Errorf("record %+v", rec)
		}
		return nil
	})
	m.Stop()
	if err := forge(t, "crash-ns", crashed.Name); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	startManager(t, testenv.ManagerOptions{})
	eventually(t, 30*time.Second, "the forged namespace is a Conflict after the restart", func() error {
		rec, _ := nsState(getPartner(t, crashed.Name), "crash-ns")
		if rec.State != v1.NamespaceConflict {
			return fmt.Errorf("record %+v", rec)
		}
		return nil
	})
	consistently(t, time.Second, "no RoleBinding in crash-ns", notFound(&rbacv1.RoleBinding{}, "crash-ns", v1.RoleBindingName))
}

// TestPartnerEditorCannotClaimARetainedNamespace: a Partner deleted with
// deletionPolicy Retain leaves its namespace, Subscriptions and Secrets.
// Someone who may only edit Partners (the shipped partner-editor role)
// creates a Partner of the same name naming that namespace in its adopt
// annotation, with their own people in access: it is a Conflict and they
// get no access; they cannot write the namespace's consent either.
func TestPartnerEditorCannotClaimARetainedNamespace(t *testing.T) {
	needCluster(t)
	startManager(t, testenv.ManagerOptions{StalledRecheck: time.Second})
	c := testenv.Contract("claim-c", "Bytec", "DE", time.Now().Add(-time.Hour), time.Time{}, 0, 0, testenv.Tier(v1.TierReady, 5, 1))
	old := testenv.Partner("claim-p", v1.TierReady, "DE", []string{c.Name}, "claim-ns")
	create(t, c, old)
	eventually(t, 30*time.Second, "old partner granted", func() error {
		if rec, _ := nsState(getPartner(t, old.Name), "claim-ns"); rec.State != v1.NamespaceGranted {
			return fmt.Errorf("%+v", rec)
		}
		return nil
	})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "claim-ns", Name: "customer-keys"}, StringData: map[string]string{"k": "secret"}})
	if err := k8s.Delete(ctx(t), old); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "old Partner gone", notFound(&v1.Partner{}, "", old.Name))

	editorRole := shippedRole(t, "partner_editor_role.yaml")
	create(t, editorRole, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "claim-editor"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: editorRole.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"}}})
	mallory := as(t, "mallory")
	claim := testenv.Partner(old.Name, v1.TierReady, "DE", []string{c.Name}, "claim-ns")
	claim.Spec.Access = []v1.Subject{{Kind: v1.SubjectUser, Name: "mallory"}}
	claim.Annotations = map[string]string{v1.AnnotationAdopt: "claim-ns"}
	if err := mallory.Create(ctx(t), claim); err != nil {
		t.Fatalf("the partner editor creates the Partner: %v", err)
	}
	ns := &corev1.Namespace{}
	if err := mallory.Get(ctx(t), client.ObjectKey{Name: "claim-ns"}, ns); err == nil {
		patch := client.MergeFrom(ns.DeepCopy())
		ns.Annotations[v1.AnnotationHandOverTo] = claim.Name
		if err := mallory.Patch(ctx(t), ns, patch); !apierrors.IsForbidden(err) {
			t.Errorf("the partner editor writes the namespace's consent: want forbidden, got %v", err)
		}
	}
	eventually(t, 30*time.Second, "the claimed namespace is a Conflict", func() error {
		if rec, _ := nsState(getPartner(t, claim.Name), "claim-ns"); rec.State != v1.NamespaceConflict {
			return fmt.Errorf("%+v", rec)
		}
		return nil
	})
	consistently(t, 2*time.Second, "no access for mallory", func() error {
		if err := mallory.Get(context.Background(), client.ObjectKey{Namespace: "claim-ns", Name: "customer-keys"}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
			return fmt.Errorf("mallory reads the old partner's Secret: %v", err)
		}
		return notFound(&rbacv1.RoleBinding{}, "claim-ns", v1.RoleBindingName)()
	})
}

// shippedRole reads a ClusterRole of config/rbac.
func shippedRole(t *testing.T, file string) *rbacv1.ClusterRole {
	t.Helper()
	root, err := testcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	r := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(b, r); err != nil {
		t.Fatal(err)
	}
	return r
}
