package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/partnerops/entitlement-operator/internal/metrics"
)

// quietRetry wraps a reconciler so that an outage of the API server (it is
// unreachable, times out, answers 429 or 5xx) is logged once per cause per
// logEvery with how many retries it hid, not once per object per retry:
// such an error is retried with the same capped exponential backoff the
// workqueue would apply (retryBase … MaxRetryDelay, per object), counted
// in entitlements_reconcile_retries_total. Any other error is returned as
// it is, for controller-runtime to log and retry.
type quietRetry struct {
	inner      reconcile.Reconciler
	controller string
	clock      clock.PassiveClock

	mu       sync.Mutex
	failures map[reconcile.Request]int
	logged   map[string]time.Time
	hidden   map[string]int
}

const (
	retryBase = 5 * time.Millisecond
	logEvery  = 30 * time.Second
)

func newQuietRetry(controller string, inner reconcile.Reconciler, clk clock.PassiveClock) *quietRetry {
	return &quietRetry{inner: inner, controller: controller, clock: clk,
		failures: map[reconcile.Request]int{}, logged: map[string]time.Time{}, hidden: map[string]int{}}
}

func (q *quietRetry) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	res, err := q.inner.Reconcile(ctx, req)
	q.mu.Lock()
	defer q.mu.Unlock()
	if err == nil || !transient(err) {
		delete(q.failures, req)
		return res, err
	}
	n := q.failures[req]
	q.failures[req] = n + 1
	metrics.ReconcileRetries.WithLabelValues(q.controller).Inc()
	cause := causeOf(err)
	now := q.clock.Now()
	if last, seen := q.logged[cause]; !seen || now.Sub(last) >= logEvery {
		log.FromContext(ctx).Error(err, "API server unavailable; retrying with backoff (one line per cause every 30s)",
			"cause", cause, "retriesNotLogged", q.hidden[cause])
		q.logged[cause], q.hidden[cause] = now, 0
	} else {
		q.hidden[cause]++
	}
	return ctrl.Result{RequeueAfter: backoff(n)}, nil
}

// backoff is retryBase·2ⁿ, capped at MaxRetryDelay.
func backoff(n int) time.Duration {
	if n >= 16 {
		return MaxRetryDelay
	}
	return min(retryBase<<n, MaxRetryDelay)
}

// transient reports errors that say the API server cannot be reached or
// cannot answer now, not that the request or the object is wrong.
func transient(err error) bool {
	var netErr net.Error
	switch {
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &netErr):
		return true
	}
	return false
}

// causeOf names what went wrong without the object it happened to: the
// innermost error, or the API status code and reason.
func causeOf(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		return fmt.Sprintf("%d %s", s.Code, s.Reason)
	}
	for {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				if transient(e) {
					return causeOf(e)
				}
			}
			return err.Error()
		}
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
