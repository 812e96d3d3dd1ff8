package controllers

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestReconcileErrorsLoggedOncePerCause: while the API server cannot be
// reached, controller-runtime's "Reconciler error" line comes once per
// cause every logEvery, saying how many it left out; any other error is
// logged every time, and every other line passes.
func TestReconcileErrorsLoggedOncePerCause(t *testing.T) {
	refused := fmt.Errorf(`Get "https://127.0.0.1:6443/apis/x/partners/acme": %w`, &netOpError{syscall.ECONNREFUSED})
	invalid := apierrors.NewInvalid(schema.GroupKind{Kind: "ResourceQuota"}, "q", nil)
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	var lines []string
	base := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	logs := reconcileLogs(base, "partner", "Partner", clk)
	log := logs(&reconcile.Request{})

	for range 10 {
		log.Error(refused, "Reconciler error")
		clk.Step(time.Second)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "connection refused") || !strings.Contains(lines[0], `"controller"="partner"`) {
		t.Errorf("10 failures within 30s: want one line naming the cause and the controller, got %d: %q", len(lines), lines)
	}
	clk.Step(logEvery)
	log.Error(refused, "Reconciler error")
	if len(lines) != 2 || !strings.Contains(lines[1], `"notLogged"=9`) {
		t.Errorf("after 30s: want a second line counting the 9 left out, got %q", lines)
	}
	log.Error(invalid, "Reconciler error")
	log.Error(invalid, "Reconciler error")
	log.WithValues("k", "v").Info("something else")
	if len(lines) != 5 {
		t.Errorf("other errors and lines: want each logged, got %q", lines)
	}
}

// netOpError is a minimal net.Error wrapping a syscall error.
type netOpError struct{ err error }

func (e *netOpError) Error() string   { return "dial tcp 127.0.0.1:6443: connect: " + e.err.Error() }
func (e *netOpError) Unwrap() error   { return e.err }
func (e *netOpError) Timeout() bool   { return false }
func (e *netOpError) Temporary() bool { return false }
