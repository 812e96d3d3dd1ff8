package demo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// Narrator is the demo's one voice: a timeline of what the demo does and of
// what the operator does as the API server shows it (events about Partners
// and DistributorContracts, the phase changes in their status), one line
// each, stamped with the time since the demo started:
//
//	+50.4s  Partner/acme-systems               FailedOver: failed over from contract bytec-de to magirus-de (Magirus)
//
// It keeps the partners' events for the checks. Safe for concurrent use.
type Narrator struct {
	mu     sync.Mutex
	w      io.Writer
	t0     time.Time
	events []event
}

// event is an event about a Partner as the narrator saw it.
type event struct {
	at                   time.Time // when the operator emitted it
	partner, reason, msg string
}

// NewNarrator narrates on w, counting time from now.
func NewNarrator(w io.Writer) *Narrator { return &Narrator{w: w, t0: time.Now()} }

// Elapsed is the time since the narrator started.
func (n *Narrator) Elapsed() time.Duration { return time.Since(n.t0) }

// rel formats an instant relative to the start, such as "+12.3s".
func (n *Narrator) rel(at time.Time) string { return fmt.Sprintf("%+.1fs", at.Sub(n.t0).Seconds()) }

// Say prints a line about what the demo itself does.
func (n *Narrator) Say(format string, args ...any) {
	n.line(time.Now(), "demo", fmt.Sprintf(format, args...))
}

// Printf prints free text (headings, tables, results) between the lines.
func (n *Narrator) Printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, format, args...)
}

// line prints one timeline line; the subject column fits
// "Subscription/kontor-prod/kontor-1".
func (n *Narrator) line(at time.Time, subject, text string) {
	n.Printf("%8s  %-33s  %s\n", n.rel(at), subject, text)
}

// watch narrates from now until ctx ends; it returns once its watches are
// established, so that nothing the story does afterwards is missed.
func (n *Narrator) watch(ctx context.Context, cfg *rest.Config) error {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme()})
	if err != nil {
		return err
	}
	for obj, h := range map[client.Object]toolscache.ResourceEventHandler{
		&eventsv1.Event{}: toolscache.ResourceEventHandlerFuncs{AddFunc: n.onEvent},
		// Status comes after a create, so updates are all there is to tell.
		&v1.DistributorContract{}: toolscache.ResourceEventHandlerFuncs{UpdateFunc: func(o, c any) {
			n.onContract(o.(*v1.DistributorContract), c.(*v1.DistributorContract))
		}},
		&v1.Partner{}: toolscache.ResourceEventHandlerFuncs{UpdateFunc: func(o, c any) { n.onPartner(o.(*v1.Partner), c.(*v1.Partner)) }},
	} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	go func() { _ = c.Start(ctx) }()
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !c.WaitForCacheSync(syncCtx) {
		return fmt.Errorf("watching events, partners and contracts: not synced within 30s: %w", context.Cause(syncCtx))
	}
	return nil
}

func (n *Narrator) onEvent(o any) {
	ev, ok := o.(*eventsv1.Event)
	if !ok {
		return
	}
	if gv, err := schema.ParseGroupVersion(ev.Regarding.APIVersion); err != nil || gv.Group != v1.GroupVersion.Group {
		return
	}
	at := ev.EventTime.Time
	if at.IsZero() {
		at = ev.CreationTimestamp.Time
	}
	if ev.Regarding.Kind == "Partner" {
		n.mu.Lock()
		n.events = append(n.events, event{at: at, partner: ev.Regarding.Name, reason: ev.Reason, msg: ev.Note})
		n.mu.Unlock()
	}
	n.line(time.Now(), ev.Regarding.Kind+"/"+ev.Regarding.Name, ev.Reason+": "+ev.Note)
}

func (n *Narrator) onContract(old, cur *v1.DistributorContract) {
	if cur.Status.Phase == old.Status.Phase || cur.Status.Phase == "" {
		return
	}
	text := "status: phase " + string(cur.Status.Phase)
	if old.Status.Phase != "" {
		text = fmt.Sprintf("status: phase %s -> %s", old.Status.Phase, cur.Status.Phase)
	}
	if t := cur.Status.NextTransitionAt; t != nil {
		text += ", next change at " + n.rel(t.Time)
	}
	n.line(time.Now(), "DistributorContract/"+cur.Name, text)
}

func (n *Narrator) onPartner(old, cur *v1.Partner) {
	subject := "Partner/" + cur.Name
	if st := cur.Status; st.Phase != "" && (st.Phase != old.Status.Phase || st.Contract != old.Status.Contract) {
		text := "status: phase " + string(st.Phase)
		if st.Contract != "" {
			text += ", contract " + st.Contract
		}
		if st.EntitledUntil != nil {
			text += ", until " + n.rel(st.EntitledUntil.Time)
		}
		n.line(time.Now(), subject, text+fmt.Sprintf(", subscriptions %d/%d", st.Subscriptions.Used, st.Subscriptions.Hard))
	}
	// The partner's own warning that its supply is about to end.
	was := meta.FindStatusCondition(old.Status.Conditions, v1.ConditionContractExpiring)
	is := meta.FindStatusCondition(cur.Status.Conditions, v1.ConditionContractExpiring)
	if is != nil && is.Status == metav1.ConditionTrue && (was == nil || was.Status != metav1.ConditionTrue || was.Reason != is.Reason) {
		n.line(time.Now(), subject, "condition "+v1.ConditionContractExpiring+" ("+is.Reason+"): "+is.Message)
	}
}

// event returns the first event of that reason about the partner.
func (n *Narrator) event(partner, reason string) (event, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.events {
		if e.partner == partner && e.reason == reason {
			return e, true
		}
	}
	return event{}, false
}

// oneLine folds a message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
