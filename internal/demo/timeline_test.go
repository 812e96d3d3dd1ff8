package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTimelineLines(t *testing.T) {
	var buf bytes.Buffer
	t0 := time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC)
	tl := NewTimeline(&buf, t0, false)
	tl.LineAt(t0.Add(12300*time.Millisecond), Info, "Partner/acme-systems", "FailedOver: failed over from contract bytec-de to magirus-de (Magirus)")
	tl.LineAt(t0.Add(123*time.Second), Warning, "Partner/nordwind-it", "Revoked: entitlements revoked")
	tl.Verdict(false, "revocation: RoleBinding still there")
	want := "" +
		"  +12.3s  Partner/acme-systems               FailedOver: failed over from contract bytec-de to magirus-de (Magirus)\n" +
		" +123.0s  Partner/nordwind-it                Revoked: entitlements revoked\n" +
		"FAIL  revocation: RoleBinding still there\n"
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(buf.String(), "\x1b") {
		t.Error("colour without a terminal")
	}

	buf.Reset()
	NewTimeline(&buf, t0, true).LineAt(t0, Warning, "Partner/x", "Revoked: y")
	if !strings.Contains(buf.String(), "\x1b[33mRevoked: y\x1b[0m") {
		t.Errorf("no colour on a terminal: %q", buf.String())
	}
}
