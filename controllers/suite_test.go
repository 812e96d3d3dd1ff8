package controllers_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
	"github.com/partnerops/entitlement-operator/internal/testcluster"
	"github.com/partnerops/entitlement-operator/internal/testenv"
)

var (
	cluster *testcluster.Cluster
	k8s     client.Client
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testcluster.RunTests(m, !testing.Short(), testcluster.Options{}, func(c *testcluster.Cluster) error {
		cluster = c
		var err error
		if k8s, err = testenv.AdminClient(c.Config); err != nil {
			return err
		}
		return nil
	}))
}

// The shared polling helpers: waits with a deadline, never sleeps.
var (
	eventually   = testenv.Eventually
	consistently = testenv.Consistently
)

func getPartner(t *testing.T, name string) *v1.Partner { return testenv.GetPartner(t, k8s, name) }

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the local control plane")
	}
}

func startManager(t *testing.T, o testenv.ManagerOptions) *testenv.Manager {
	t.Helper()
	m, err := testenv.StartManager(cluster.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8s.Create(ctx(t), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func partnerPhase(t *testing.T, name string, want v1.PartnerPhase, contract string) func() error {
	return func() error {
		p := &v1.Partner{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Name: name}, p); err != nil {
			return err
		}
		if p.Status.Phase != want || p.Status.Contract != contract || p.Status.ObservedGeneration != p.Generation {
			return fmt.Errorf("partner %s: phase %q contract %q (gen %d/%d), want %q %q",
				name, p.Status.Phase, p.Status.Contract, p.Status.ObservedGeneration, p.Generation, want, contract)
		}
		return nil
	}
}

// partnerReady is true once the partner's Ready condition is True for its
// current generation.
func partnerReady(name string) func() error {
	return func() error {
		p := &v1.Partner{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Name: name}, p); err != nil {
			return err
		}
		r := condition(p.Status.Conditions, v1.ConditionReady)
		if r == nil || r.Status != metav1.ConditionTrue || r.ObservedGeneration != p.Generation {
			return fmt.Errorf("Ready %+v", r)
		}
		return nil
	}
}

func condition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// eventReasons lists the reasons of events about an object, oldest first.
func eventReasons(t *testing.T, kind, name string) []string {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(ctx(t), list); err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		return list.Items[i].CreationTimestamp.Before(&list.Items[j].CreationTimestamp) ||
			(list.Items[i].CreationTimestamp.Equal(&list.Items[j].CreationTimestamp) && list.Items[i].EventTime.Before(&list.Items[j].EventTime))
	})
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

func hasEvent(kind, name, reason string) func() error {
	return func() error {
		list := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), list); err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind == kind && e.Regarding.Name == name {
				if e.Reason == reason {
					return nil
				}
				seen = append(seen, e.Reason)
			}
		}
		return fmt.Errorf("no %s event on %s %s (have %s)", reason, kind, name, strings.Join(seen, ","))
	}
}

// eventOccurrences says how often reason was emitted on the object,
// counting repeats the recorder folded into an event series.
func eventOccurrences(kind, name, reason string) (int, error) {
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range list.Items {
		if e.Regarding.Kind != kind || e.Regarding.Name != name || e.Reason != reason {
			continue
		}
		switch {
		case e.Series != nil:
			n += int(e.Series.Count)
		case e.DeprecatedCount > 1:
			n += int(e.DeprecatedCount)
		default:
			n++
		}
	}
	return n, nil
}

// emittedOnce fails when reason was emitted on the object more than once.
func emittedOnce(kind, name, reason string) func() error {
	return func() error {
		n, err := eventOccurrences(kind, name, reason)
		if err == nil && n != 1 {
			err = fmt.Errorf("%s on %s %s emitted %d times, want once", reason, kind, name, n)
		}
		return err
	}
}

func getNamespace(name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	err := k8s.Get(context.Background(), types.NamespacedName{Name: name}, ns)
	return ns, err
}

func notFound(obj client.Object, ns, name string) func() error {
	return func() error {
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%T %s/%s still exists (err %v)", obj, ns, name, err)
	}
}
