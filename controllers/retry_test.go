package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type scripted struct{ errs []error }

func (s *scripted) Reconcile(context.Context, reconcile.Request) (reconcile.Result, error) {
	err := s.errs[0]
	s.errs = s.errs[1:]
	return reconcile.Result{}, err
}

func TestQuietRetryLogsOncePerCause(t *testing.T) {
	refused := fmt.Errorf(`Get "https://127.0.0.1:6443/apis/x/partners/acme": %w`, &netOpError{syscall.ECONNREFUSED})
	invalid := apierrors.NewInvalid(schema.GroupKind{Kind: "ResourceQuota"}, "q", nil)
	inner := &scripted{}
	for range 10 {
		inner.errs = append(inner.errs, refused)
	}
	inner.errs = append(inner.errs, nil, invalid)
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	q := newQuietRetry("partner", inner, clk)
	var lines []string
	ctx := log.IntoContext(context.Background(), funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{}))
	req := reconcile.Request{}
	var delays []time.Duration
	for i := range 10 {
		res, err := q.Reconcile(ctx, req)
		if err != nil {
			t.Fatalf("retry %d of an unreachable API server: want no error (retried quietly), got %v", i, err)
		}
		delays = append(delays, res.RequeueAfter)
		clk.Step(time.Second)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "connection refused") {
		t.Errorf("10 retries within 30s: want one log line naming the cause, got %d: %q", len(lines), lines)
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] <= delays[i-1] && delays[i] != MaxRetryDelay {
			t.Errorf("backoff: want growing delays up to %v, got %v", MaxRetryDelay, delays)
			break
		}
	}
	if delays[0] != retryBase {
		t.Errorf("first retry: want %v, got %v", retryBase, delays[0])
	}
	clk.Step(logEvery)
	inner.errs = append([]error{refused}, inner.errs...)
	if _, err := q.Reconcile(ctx, req); err != nil || len(lines) != 2 || !strings.Contains(lines[1], `"retriesNotLogged"=9`) {
		t.Errorf("after 30s: want a second line counting the 9 hidden retries, got %v, %q", err, lines)
	}
	if _, err := q.Reconcile(ctx, req); err != nil {
		t.Errorf("success: %v", err)
	}
	if _, err := q.Reconcile(ctx, req); !errors.Is(err, invalid) {
		t.Errorf("a non-transient error must reach controller-runtime as it is, got %v", err)
	}
	if n := q.failures[req]; n != 0 {
		t.Errorf("after a success the backoff starts again: failures %d", n)
	}
}

// netOpError is a minimal net.Error wrapping a syscall error.
type netOpError struct{ err error }

func (e *netOpError) Error() string   { return "dial tcp 127.0.0.1:6443: connect: " + e.err.Error() }
func (e *netOpError) Unwrap() error   { return e.err }
func (e *netOpError) Timeout() bool   { return false }
func (e *netOpError) Temporary() bool { return false }
