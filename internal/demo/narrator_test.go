package demo

import (
	"bytes"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

func TestNarratorLines(t *testing.T) {
	var buf bytes.Buffer
	n := NewNarrator(&buf)
	n.t0 = time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC)
	n.line(n.t0.Add(12300*time.Millisecond), "Partner/acme-systems", "FailedOver: failed over from contract bytec-de to magirus-de (Magirus)")
	n.line(n.t0.Add(-123*time.Second), "Partner/nordwind-it", "Revoked: entitlements revoked")
	want := "" +
		"  +12.3s  Partner/acme-systems               FailedOver: failed over from contract bytec-de to magirus-de (Magirus)\n" +
		" -123.0s  Partner/nordwind-it                Revoked: entitlements revoked\n"
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestNarratorKeepsThePartnersEvents: the checks find a partner's event by
// reason, stamped with when the operator emitted it; events of other API
// groups are not the story's.
func TestNarratorKeepsThePartnersEvents(t *testing.T) {
	var buf bytes.Buffer
	n := NewNarrator(&buf)
	emitted := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	n.onEvent(&eventsv1.Event{
		EventTime: metav1.NewMicroTime(emitted), Reason: v1.EventRevoked, Note: "entitlements revoked",
		Regarding: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: "Partner", Name: PartnerRevoked},
	})
	n.onEvent(&eventsv1.Event{
		Reason:    v1.EventRevoked,
		Regarding: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Name: PartnerRevoked},
	})
	e, ok := n.event(PartnerRevoked, v1.EventRevoked)
	if !ok || !e.at.Equal(emitted) || e.msg != "entitlements revoked" {
		t.Errorf("event(%s, Revoked) = %+v, %v", PartnerRevoked, e, ok)
	}
	if _, ok := n.event(PartnerRevoked, v1.EventFailedOver); ok {
		t.Error("an event that never came was found")
	}
	if got := bytes.Count(buf.Bytes(), []byte("\n")); got != 1 {
		t.Errorf("narrated %d lines, want the partner's event only:\n%s", got, buf.String())
	}
}
