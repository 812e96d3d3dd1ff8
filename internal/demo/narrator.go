package demo

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

var (
	gvrPartners  = v1.GroupVersion.WithResource("partners")
	gvrContracts = v1.GroupVersion.WithResource("distributorcontracts")
)

// ObservedEvent is an event about a Partner or DistributorContract as the
// narrator saw it.
type ObservedEvent struct {
	// Seen is when the watch delivered it; EventTime when the operator
	// emitted it.
	Seen, EventTime time.Time
	Kind, Name      string
	Type, Reason    string
	Note            string
}

// PhaseChange is a phase (and, for a partner, supplying contract) an
// object's status showed from Seen on.
type PhaseChange struct {
	Seen     time.Time
	Phase    string
	Contract string
}

// Narrator watches events (events.k8s.io/v1) and the status of Partners and
// DistributorContracts, prints each change on the timeline and keeps what
// it saw for the checks. It runs until its context ends.
type Narrator struct {
	tl *Timeline

	mu        sync.Mutex
	events    []ObservedEvent
	contracts map[string][]PhaseChange
	partners  map[string][]PhaseChange
}

// Watch starts narrating and returns once its watches are established, so
// nothing that happens afterwards is missed.
func Watch(ctx context.Context, cfg *rest.Config, tl *Timeline) (*Narrator, error) {
	n := &Narrator{tl: tl, contracts: map[string][]PhaseChange{}, partners: map[string][]PhaseChange{}}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kf := informers.NewSharedInformerFactory(cs, 0)
	df := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)

	evInf := kf.Events().V1().Events().Informer()
	if _, err := evInf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: n.onEvent}); err != nil {
		return nil, err
	}
	cInf := df.ForResource(gvrContracts).Informer()
	if _, err := cInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { n.onContract(nil, o) },
		UpdateFunc: n.onContract,
	}); err != nil {
		return nil, err
	}
	pInf := df.ForResource(gvrPartners).Informer()
	if _, err := pInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { n.onPartner(nil, o) },
		UpdateFunc: n.onPartner,
	}); err != nil {
		return nil, err
	}
	kf.Start(ctx.Done())
	df.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), evInf.HasSynced, cInf.HasSynced, pInf.HasSynced) {
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("watching events, partners and contracts: not synced within 30s")
	}
	return n, nil
}

func (n *Narrator) onEvent(o any) {
	ev, ok := o.(*eventsv1.Event)
	if !ok {
		return
	}
	gv, err := schema.ParseGroupVersion(ev.Regarding.APIVersion)
	if err != nil || gv.Group != v1.GroupVersion.Group {
		return
	}
	seen := time.Now()
	at := ev.EventTime.Time
	if at.IsZero() {
		at = ev.CreationTimestamp.Time
	}
	oe := ObservedEvent{Seen: seen, EventTime: at, Kind: ev.Regarding.Kind, Name: ev.Regarding.Name,
		Type: ev.Type, Reason: ev.Reason, Note: ev.Note}
	n.mu.Lock()
	n.events = append(n.events, oe)
	n.mu.Unlock()
	level := Info
	if ev.Type == "Warning" {
		level = Warning
	}
	n.tl.LineAt(seen, level, subject(ev.Regarding.Kind, ev.Regarding.Namespace, ev.Regarding.Name), ev.Reason+": "+ev.Note)
}

func (n *Narrator) onContract(oldObj, newObj any) {
	var old v1.DistributorContract
	cur, ok := convert[v1.DistributorContract](newObj)
	if !ok {
		return
	}
	if oldObj != nil {
		if o, ok := convert[v1.DistributorContract](oldObj); ok {
			old = *o
		}
	}
	if cur.Status.Phase == old.Status.Phase || cur.Status.Phase == "" {
		return
	}
	seen := time.Now()
	n.mu.Lock()
	n.contracts[cur.Name] = append(n.contracts[cur.Name], PhaseChange{Seen: seen, Phase: string(cur.Status.Phase)})
	n.mu.Unlock()
	text := "status: phase " + string(cur.Status.Phase)
	if old.Status.Phase != "" {
		text = fmt.Sprintf("status: phase %s -> %s", old.Status.Phase, cur.Status.Phase)
	}
	if t := cur.Status.NextTransitionAt; t != nil {
		text += ", next change at " + n.tl.Rel(t.Time)
	}
	n.tl.LineAt(seen, Info, subject("DistributorContract", "", cur.Name), text)
}

func (n *Narrator) onPartner(oldObj, newObj any) {
	var old v1.Partner
	cur, ok := convert[v1.Partner](newObj)
	if !ok {
		return
	}
	if oldObj != nil {
		if o, ok := convert[v1.Partner](oldObj); ok {
			old = *o
		}
	}
	seen := time.Now()
	subj := subject("Partner", "", cur.Name)
	if cur.Status.Phase != "" && (cur.Status.Phase != old.Status.Phase || cur.Status.Contract != old.Status.Contract) {
		n.mu.Lock()
		n.partners[cur.Name] = append(n.partners[cur.Name], PhaseChange{Seen: seen, Phase: string(cur.Status.Phase), Contract: cur.Status.Contract})
		n.mu.Unlock()
		text := "status: phase " + string(cur.Status.Phase)
		if cur.Status.Contract != "" {
			text += ", contract " + cur.Status.Contract
		}
		if t := cur.Status.EntitledUntil; t != nil {
			text += ", until " + n.tl.Rel(t.Time)
		}
		text += ", subscriptions " + usage(cur.Status.Subscriptions)
		level := Info
		if cur.Status.Phase != v1.PartnerEntitled {
			level = Warning
		}
		n.tl.LineAt(seen, level, subj, text)
	}
	// The partner's own warning that its supply is about to end.
	was := meta.FindStatusCondition(old.Status.Conditions, v1.ConditionContractExpiring)
	is := meta.FindStatusCondition(cur.Status.Conditions, v1.ConditionContractExpiring)
	if is != nil && is.Status == metav1.ConditionTrue && (was == nil || was.Status != metav1.ConditionTrue || was.Reason != is.Reason) {
		n.tl.LineAt(seen, Warning, subj, "condition "+v1.ConditionContractExpiring+" ("+is.Reason+"): "+is.Message)
	}
}

// Events returns the events seen so far.
func (n *Narrator) Events() []ObservedEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]ObservedEvent(nil), n.events...)
}

// ContractPhases returns the phases a contract's status went through.
func (n *Narrator) ContractPhases(name string) []PhaseChange {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]PhaseChange(nil), n.contracts[name]...)
}

// PartnerPhases returns the (phase, contract) states a partner's status
// went through.
func (n *Narrator) PartnerPhases(name string) []PhaseChange {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]PhaseChange(nil), n.partners[name]...)
}

// Event returns the first event of that reason about that object.
func (n *Narrator) Event(kind, name, reason string) (ObservedEvent, bool) {
	for _, e := range n.Events() {
		if e.Kind == kind && e.Name == name && e.Reason == reason {
			return e, true
		}
	}
	return ObservedEvent{}, false
}

func convert[T any](o any) (*T, bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil, false
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, false
	}
	return out, true
}

func subject(kind, namespace, name string) string {
	if namespace != "" {
		return kind + "/" + namespace + "/" + name
	}
	return kind + "/" + name
}

func usage(u v1.SubscriptionUsage) string {
	if u.Summary != "" {
		return u.Summary
	}
	return fmt.Sprintf("%d/%d", u.Used, u.Hard)
}

// oneLine folds an error message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
